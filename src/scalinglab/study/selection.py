"""Which runs answer which question: the one place that selects runs from a collected study.

The report's analyses, and ``fit``/``backtest``/``collect``/``predict`` on a study directory, all pick
runs here, so the CLI and the report fit the same runs (spec §1, §4). Functions take the tidy runs
table of :mod:`scalinglab.study.collect` and return boolean masks or sub-tables.
"""

from __future__ import annotations

import pandas as pd

from scalinglab.errors import DataError

SCAN_DESIGNS = frozenset({"batch_scan", "lr_scan", "hp_grid", "shape_scan", "context_scan"})
"""Designs that move one hyper-parameter off the recipe: measured on their own, never in a law's fit."""

OVERFIT = 1e-3
"""A data_constrained run whose final loss exceeds its early-stopped loss by more than this fraction overfits."""

MIN_LAYERS = 2
"""Kaplan excludes 1-layer models from the L(N) and L(C) fits (§3.2, App D.7, Fig 13)."""


def other_family(runs: pd.DataFrame) -> pd.Series:
    """True for the runs of another model family than the Transformer (LSTM, universal; Kaplan Figs 7, 17):
    the laws are the Transformer's, and those families are compared with it on their own."""
    return runs["arch"].fillna("gpt") != "gpt" if "arch" in runs.columns else pd.Series(False, runs.index)

def kind(runs: pd.DataFrame) -> pd.Series:
    """The design kind of each run (``kind`` column; older tables only have ``design``)."""
    return runs["kind"] if "kind" in runs.columns else runs["design"] if "design" in runs.columns else pd.Series("", runs.index)


def kinds(runs: pd.DataFrame) -> pd.Series:
    """Every design kind each run belongs to: a run two designs share is trained once (study.store) and
    listed in ``designs`` (labels, ';'-separated); labels map to kinds through the runs that carry them."""
    primary = kind(runs)
    if "designs" not in runs.columns or "design" not in runs.columns:
        return primary.map(lambda k: frozenset({k}))
    label_kind = dict(zip(runs["design"], primary))
    return pd.Series(
        [frozenset({k}) | {label_kind.get(label, label) for label in str(d).split(";") if label}
         for k, d in zip(primary, runs["designs"].fillna(""))],
        index=runs.index,
    )


def in_design(runs: pd.DataFrame, design_kind: str) -> pd.Series:
    """True for the runs that belong to a design of ``design_kind`` (as their own or shared)."""
    return kinds(runs).map(lambda ks: design_kind in ks)


def groups_in(runs: pd.DataFrame, design_kind: str) -> pd.Series:
    """Per run, its groups in designs of ``design_kind`` (a list): its own group and those it is shared into."""
    primary = kind(runs)
    if "designs" not in runs.columns or "groups" not in runs.columns:
        return pd.Series([[g] if k == design_kind else [] for g, k in zip(runs["group"], primary)], index=runs.index)
    label_kind = dict(zip(runs["design"], primary))
    return pd.Series(
        [[g for d, g in zip(str(ds).split(";"), str(gs).split(";")) if label_kind.get(d, d) == design_kind]
         for ds, gs in zip(runs["designs"].fillna(""), runs["groups"].fillna(""))],
        index=runs.index,
    )


def is_branch(runs: pd.DataFrame) -> pd.Series:
    """True for the cooldown branches of a wsd_ladder: single-pass points, each at its own D (Hägele et al. 2024)."""
    return runs["branch_step"].fillna(0) > 0 if "branch_step" in runs.columns else pd.Series(False, runs.index)


def stable_phase(runs: pd.DataFrame) -> pd.Series:
    """True for a wsd_ladder's stable-phase parents: their LR never decays, so their loss is no point of a law."""
    parents = runs["run_id"].isin(set(runs["parent"].dropna())) if "parent" in runs.columns else False
    return (in_design(runs, "wsd_ladder") & ~is_branch(runs)) | parents


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that ended normally (``status == 'done'``)."""
    return runs[runs["status"] == "done"] if "status" in runs.columns else runs


def data_limited(runs: pd.DataFrame) -> pd.Series:
    """True where a run trained on fewer distinct tokens than it processed (dataset-size sweeps)."""
    limit = runs["train_tokens_limit"].fillna(0) if "train_tokens_limit" in runs.columns else 0 * runs["D"]
    return (limit > 0) & (limit < runs["D"])


def dataset_size(runs: pd.DataFrame) -> pd.Series:
    """Kaplan's D: the distinct training tokens (the limit of a data-limited run, else the tokens processed)."""
    return runs["D"].where(~data_limited(runs), runs["train_tokens_limit"])


def law_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished Transformer runs on the recipe (no hyper-parameter scans, no other families, no wsd_ladder
    stable phases) with at least 2 layers."""
    df = finished(runs[~stable_phase(runs)])
    df = df[~kinds(df).map(lambda ks: ks <= SCAN_DESIGNS) & ~other_family(df)]  # a scan run shared with a law design stays
    return df[df["n_layer"] >= MIN_LAYERS] if "n_layer" in df.columns else df


def curves_of(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows of ``runs`` (matched on run_id), in step order."""
    return curves[curves["run_id"].isin(runs["run_id"])].sort_values(["run_id", "step"])


def isoflop_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of the study's isoflop designs on the recipe: Chinchilla's approach 2, as the report takes it."""
    df = law_runs(runs)
    return df[in_design(df, "isoflop")]


def envelope_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The evaluations of the single-pass runs on the recipe (approach 1's envelope, Kaplan's L(C)), with
    ``D`` the tokens seen so far."""
    df = law_runs(runs)
    c = curves_of(curves, df[~data_limited(df)])
    c = c[(c["C"] > 0) & c["loss"].notna()]
    return c.assign(D=c["tokens"])


def select_for_frontier(runs: pd.DataFrame, approach: str, curves: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
    """The rows of a collected study that each of Chinchilla's approaches uses, as the report does, and one
    line saying which: envelope the learning curves (``curves``, the steps table) of the single-pass runs,
    isoflop the isoflop designs' runs, parametric L(N, D)'s runs (:func:`select_for_law`)."""
    if approach == "parametric":
        return select_for_law(runs, "chinchilla")
    if approach == "isoflop":
        kept = isoflop_runs(runs)
        if kept.empty:
            raise DataError("the study has no finished isoflop runs; add an isoflop design (see studies/isoflop.toml) "
                            "or pass --approach envelope or parametric.")  # fmt: skip
        return kept, f"IsoFLOP profiles: {len(kept)} of {len(runs)} runs, the isoflop designs' finished runs on the recipe"
    if curves is None:
        raise DataError("the envelope needs the study's learning curves (steps.parquet); run `scalinglab collect` on it first.")
    kept = envelope_curves(runs, curves)
    return kept, (f"envelope: {len(kept)} evaluations of {kept['run_id'].nunique()} runs, the learning curves of the "
                  "single-pass runs on the recipe")


LAW_QUESTIONS = {
    "kaplan_n": "L(N)",
    "kaplan_d": "L(D)",
    "kaplan_nd": "L(N, D)",
    "chinchilla": "L(N, D), Chinchilla form",
    "kaplan_c": "L(C)",
    "kaplan_ns": "L(N, S)",
    "data_constrained": "L(N, D, U), repeated data",
}
"""What each law answers, for the line that says which runs it used."""


def in_label(runs: pd.DataFrame, label: str) -> pd.Series:
    """True for the runs of the design called ``label`` (as their own design or shared into it)."""
    if "designs" in runs.columns:
        return runs["designs"].fillna("").map(lambda d: label in str(d).split(";"))
    if "design" in runs.columns:
        return runs["design"] == label
    return pd.Series(False, runs.index)


def match_design(runs: pd.DataFrame, design: str) -> tuple[pd.Series, list[str]]:
    """The runs of the design called ``design`` or of every design of that kind (the demo splits its IsoFLOP
    design into three), and the design labels matched; an unknown name is an error listing names and kinds."""
    primary = kind(runs)
    label_kind = dict(zip(runs["design"], primary)) if "design" in runs.columns else {}
    listed = runs["designs"] if "designs" in runs.columns else runs.get("design", pd.Series("", runs.index))
    labels = sorted({x for d in listed.fillna("") for x in str(d).split(";") if x})
    matched = [label for label in labels if label == design or label_kind.get(label) == design]
    if not matched:
        known = sorted({k for k in primary if isinstance(k, str) and k})
        raise DataError(f"no run belongs to a design named or of kind '{design}'; designs in this study: {', '.join(labels) or 'none'}"
                        f" (kinds: {', '.join(known) or 'none'}); pass one of them to --design.")  # fmt: skip
    mine = pd.Series(False, runs.index)
    for label in matched:
        mine |= in_label(runs, label)
    return mine, matched


def designs_phrase(design: str, matched: list[str]) -> str:
    """How a line names what ``--design`` matched: one design, or the designs of one kind."""
    if matched == [design]:
        return f"design '{design}'"
    return f"designs {', '.join(matched)} (kind '{design}')"


def _pool(runs: pd.DataFrame, design: str | None) -> tuple[pd.DataFrame, list[str], str]:
    """The finished runs a law may use, what was left out (scans unless asked for, 1-layer models), and
    whose runs they are."""
    left: list[str] = []
    where = "on the recipe"
    stable = stable_phase(runs)
    if stable.any():
        left.append(f"{int(stable.sum())} stable-phase runs of a wsd_ladder (their LR never decays)")
    df = finished(runs[~stable])
    if len(df) < len(runs) - int(stable.sum()):
        left.append(f"{len(runs) - int(stable.sum()) - len(df)} unfinished")
    if design is not None:
        mine, matched = match_design(df, design)
        where = f"of {designs_phrase(design, matched)}"
        if (~mine).any():
            left.append(f"{int((~mine).sum())} of other designs")
        df = df[mine]
    else:
        scan = kinds(df).map(lambda ks: ks <= SCAN_DESIGNS)  # a scan run shared with a law design stays
        if scan.any():
            left.append(f"{int(scan.sum())} hyper-parameter scan runs")
        df = df[~scan]
        family = other_family(df)  # a design asked for by name keeps its family
        if family.any():
            left.append(f"{int(family.sum())} of other model families (LSTM, universal Transformer)")
        df = df[~family]
    if "n_layer" in df.columns:
        shallow = df["n_layer"] < MIN_LAYERS
        if shallow.any():
            left.append(f"{int(shallow.sum())} with fewer than {MIN_LAYERS} layers")
        df = df[~shallow]
    return df, left, where


def select_for_law(runs: pd.DataFrame, law: str, design: str | None = None) -> tuple[pd.DataFrame, str]:
    """The rows of a collected study that fit ``law``, and one line saying what was kept and why.

    The rules are the report's (spec §1, §4): L(N) takes, per model size, the lowest final loss of
    the single-pass runs (the longest-trained: Kaplan fits converged models); L(D) the early-stopped
    loss of the largest model of the data-limited (nested subset) runs, D = distinct tokens (Kaplan
    §3.3); L(N, D) and Hoffmann's form every run, D = distinct tokens and the early-stopped loss; the
    data-constrained law the runs on a nested subset (a repeat design's), U = the subset, final loss; L(N, S)
    the single-pass runs' curves less the cooldown branches' (they start at the branch step); any other law
    the single-pass runs with their final loss. Hyper-parameter scans, other model families
    and 1-layer models are left out (Kaplan §3.2); ``design`` restricts the runs to one design (by
    name) or to every design of one kind (:func:`match_design`), scans and their family included.
    The rows keep every column of ``runs``; ``D`` and ``loss`` hold what the law fits.
    """
    df, left, where = _pool(runs, design)
    question = LAW_QUESTIONS.get(law, law)
    limited = data_limited(df) if "D" in df.columns else pd.Series(False, df.index)
    if law == "kaplan_n":
        if limited.any():
            left.append(f"{int(limited.sum())} data-limited")
        df = df[~limited]
        kept = df.loc[df.groupby("N")["loss"].idxmin()].sort_values("N") if len(df) else df
        if len(kept) < len(df):
            left.append(f"{len(df) - len(kept)} runs of a size already kept with a lower loss")
        rule = "per model size the lowest final loss of the single-pass runs"
    elif law == "kaplan_d":
        branch = is_branch(df)  # a branch is the loss at its D of a run trained (and decayed) to D
        points = limited | branch
        if (~points).any():
            left.append(f"{int((~points).sum())} single-pass")
        df = df[points]
        df = df.assign(D=dataset_size(df), loss=df["best_loss"].where(~is_branch(df), df["loss"]))
        largest = df[df["N"] == df["N"].max()] if len(df) else df
        if len(largest) < len(df):
            left.append(f"{len(df) - len(largest)} of smaller models")
        kept = largest.loc[largest.groupby("D")["loss"].idxmin()].sort_values("D") if len(largest) else largest
        if len(kept) < len(largest):
            left.append(f"{len(largest) - len(kept)} repeats of a dataset size")
        rule = "the largest model's data-limited runs, early-stopped loss over D = distinct tokens"
        if branch.any():
            rule += ", and its cooldown branches, final loss over D"
    elif law == "data_constrained":
        subset = df["train_tokens_limit"].fillna(0) > 0 if "train_tokens_limit" in df.columns else pd.Series(False, df.index)
        if (~subset).any():  # their unique tokens are the corpus's, which the runs table does not record
            left.append(f"{int((~subset).sum())} on the whole corpus")
        # A final loss above the run's own early-stopped one is overfitting, which the law (monotone in D) has no term for.
        rising = subset & (df["loss"] > df["best_loss"] * (1 + OVERFIT)) if "best_loss" in df.columns else subset & False
        if rising.any():
            left.append(f"{int(rising.sum())} whose loss rose past its early-stopped value (overfitting)")
        keep = subset & ~rising
        kept = df[keep].assign(U=df.loc[keep, "train_tokens_limit"].astype(float))
        rule = "the runs on a nested subset, final loss, U = the subset's tokens (Muennighoff et al. 2023)"
    elif law in ("kaplan_nd", "chinchilla"):
        branch = is_branch(df)  # its best loss may be its parent's, from before its own decay
        kept = df.assign(D=dataset_size(df), loss=df["best_loss"].where(~branch, df["loss"])) if "best_loss" in df.columns else df
        rule = "every run, early-stopped loss over D = distinct tokens"
        if branch.any():
            rule += f" ({int(branch.sum())} cooldown branches: final loss)"
    elif law == "kaplan_ns":
        branch = is_branch(df)  # its curve starts at the branch step: a decay without the steps before it
        if limited.any():
            left.append(f"{int(limited.sum())} data-limited")
        if branch.any():
            left.append(f"{int(branch.sum())} cooldown branches (their curves start at the branch step: a decay only)")
        kept = df[~limited & ~branch]
        rule = "the learning curves of the single-pass runs that train from step 0"
    else:
        if limited.any():
            left.append(f"{int(limited.sum())} data-limited")
        kept = df[~limited]
        rule = "the single-pass runs, final loss"
    text = f"{question}: {len(kept)} of {len(runs)} runs {where}: {rule}"
    branch = is_branch(kept)
    if branch.any() and not branch.all():  # measured: a WSD decay beat a cosine to the same D by far more than the seed noise
        text += (f"; mixes {int(branch.sum())} cooldown branches (a WSD decay) with {int((~branch).sum())} runs of their own "
                 "schedules, whose losses at one D can differ by more than the run-to-run noise (benchmarks/branch_honesty.py); "
                 "--design keeps one design's runs")  # fmt: skip
    return kept, text + (f"; left out {', '.join(left)}" if left else "")
