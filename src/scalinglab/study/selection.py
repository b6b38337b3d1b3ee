"""Which runs answer which question: the one place that selects runs from a collected study.

The report's analyses, and ``fit``/``backtest``/``collect``/``predict`` on a study directory, all pick
runs here, so the CLI and the report fit the same runs (spec §1, §4). Functions take the tidy runs
table of :mod:`scalinglab.study.collect` and return boolean masks or sub-tables.
"""

from __future__ import annotations

import pandas as pd

SCAN_DESIGNS = frozenset({"batch_scan", "lr_scan", "shape_scan", "context_scan"})
"""Designs that move one hyper-parameter off the recipe: measured on their own, never in a law's fit."""

MIN_LAYERS = 2
"""Kaplan excludes 1-layer models from the L(N) and L(C) fits (§3.2, App D.7, Fig 13)."""

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
    """Finished runs on the recipe (no hyper-parameter scans) with at least 2 layers."""
    df = finished(runs)
    df = df[~kinds(df).map(lambda ks: ks <= SCAN_DESIGNS)]  # a scan run shared with a law design stays
    return df[df["n_layer"] >= MIN_LAYERS] if "n_layer" in df.columns else df


def curves_of(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows of ``runs`` (matched on run_id), in step order."""
    return curves[curves["run_id"].isin(runs["run_id"])].sort_values(["run_id", "step"])
