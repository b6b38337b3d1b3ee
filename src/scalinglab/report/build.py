"""Build a study's report: collect the runs, run every analysis, draw every figure, write the HTML.

:func:`build_report` is what ``scalinglab report STUDY_DIR`` and ``scalinglab demo`` call. An
analysis the study has no data for (no batch scan, no shape scan...) becomes a visible "skipped"
note in the page, never an error; the headline numbers come back as a :class:`ReportResult`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from scalinglab.errors import DataError, ScalinglabError
from scalinglab.laws.frontier import PF_DAY
from scalinglab.report import analyses as an
from scalinglab.report import figures as fg
from scalinglab.report.html import Page, Section, Table, fmt, write

CONSTANTS_NOTE = (
    "Scale constants (N_c, D_c, C_c, B*, S_c, E, A, B) depend on the tokenizer, the vocabulary and the data "
    "(Kaplan §1.2: they 'do not have a fundamental meaning'); compare exponents, and compare scales only "
    "qualitatively. Kaplan used WebText2 with GPT-2's 50k BPE; Chinchilla MassiveText with total parameters. "
    "Intervals are 95% bootstrap percentiles over runs."
)


@dataclass
class ReportResult:
    """Where the report is and the headline numbers (nan when the study lacks the data)."""

    path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    transfer: dict[str, float] = field(default_factory=dict)
    """Offset (nats/token) of each extra eval set's loss over the validation loss, at the largest model."""

    def to_dict(self) -> dict[str, Any]:
        return {"report": str(self.path), "figures": {k: str(v) for k, v in self.figures.items()},
                "skipped": self.skipped, "numbers": self.numbers, "transfer": self.transfer}


# --------------------------------------------------------------------------------------------------
# Extra tables read from the run directories (beyond the collected runs and curves)


def _run_dirs(study_dir: Path) -> dict[str, Path]:
    """run_id -> run directory, for every directory of the study that has a summary.json."""
    out = {}
    for summary in study_dir.glob("*/summary.json"):
        d = summary.parent
        out[d.name] = d
        out[d.name.rsplit("-", 1)[-1]] = d  # run_id may be the identity alone
    return out


def per_position_table(runs: pd.DataFrame, dirs: dict[str, Path]) -> pd.DataFrame:
    """Long table ``run_id, T, loss`` of each run's final per-position validation loss (summary.json)."""
    rows = []
    for run_id in runs["run_id"]:
        d = dirs.get(str(run_id))
        if d is None:
            continue
        losses = (json.loads((d / "summary.json").read_text()).get("per_position_loss") or {}).get("valid")
        if losses:
            rows.append(pd.DataFrame({"run_id": run_id, "T": np.arange(1, len(losses) + 1), "loss": losses}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["run_id", "T", "loss"])


def metrics_table(runs: pd.DataFrame, dirs: dict[str, Path]) -> pd.DataFrame:
    """Every logged step of every run (metrics.jsonl): ``run_id``, ``step``, ``train_loss``, ``noise_b_simple``."""
    from scalinglab.train.rundir import read_metrics

    frames = []
    for run_id in runs["run_id"]:
        d = dirs.get(str(run_id))
        records = read_metrics(d) if d is not None else []
        if records:
            df = pd.DataFrame(records)
            frames.append(df.reindex(columns=["step", "train_loss", "noise_b_simple"]).assign(run_id=run_id))
    if not frames:
        return pd.DataFrame(columns=["run_id", "step", "train_loss", "noise_b_simple"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class _Fig:
    """One figure of the page: its anchor, title, caption, the analysis it draws and how."""

    key: str
    title: str
    caption: str
    analysis: str
    draw: Callable[[Any], Any]


FIGURES = [
    _Fig("fig1_loss_vs_n", "Fig 1 (right): L(N)", "Final loss of the best run of each size against "
         "non-embedding parameters, with Kaplan eq 1.1 fitted.", "L(N)", fg.fig_loss_vs_n),
    _Fig("fig1_loss_vs_d", "Fig 1 (middle): L(D)", "Early-stopped loss of one model trained on nested "
         "subsets of the data, with Kaplan eq 1.2 fitted.", "L(D)", fg.fig_loss_vs_d),
    _Fig("fig13_compute_frontier", "Figs 1 (left) and 13: L(C)", "Every learning curve against compute "
         "C = 6NBS, their lower envelope, L(C) fitted to it and, with B_crit known, L(C_min) (eq 5.5).",
         "L(C)", fg.fig_compute_frontier),
    _Fig("fig14_optimal_allocation", "Fig 14: compute-optimal N(C) and S(C)", "The model size and the "
         "number of steps on the frontier, at fixed batch and adjusted to C_min and S_min.",
         "L(C)", fg.fig_optimal_allocation),
    _Fig("fig4_loss_vs_nd", "Figs 4 (left) and 9 (left): L(N, D)", "Early-stopped loss against dataset "
         "size per model size, with Kaplan eq 1.5 fitted jointly.", "L(N, D)", fg.fig_loss_vs_nd),
    _Fig("fig9_overfitting", "Fig 9 (right): overfitting collapse", "L/L(N, ∞) − 1 against "
         "N^(α_N/α_D)/D: runs of every size fall on eq 4.3.", "L(N, D)", fg.fig_overfitting),
    _Fig("fig4_learning_curves", "Fig 4 (right): L(N, S)", "Learning curves against S_min after the "
         "early transient, with Kaplan eq 1.6 fitted jointly.", "L(N, S)", fg.fig_learning_curves),
    _Fig("fig11_fixed_compute", "Fig 11 (left): loss against N at fixed compute", "Points interpolate "
         "the runs' learning curves at each budget; lines are L(N, S) at S = C/(6NB).",
         "L(N, S)", fg.fig_loss_at_fixed_compute),
    _Fig("fig18_batch_scan", "Fig 18: batch-size scans", "Steps and tokens each batch size needs to "
         "reach a loss, with (S/S_min − 1)(E/E_min − 1) = 1 fitted per loss.", "B_crit", fg.fig_batch_scan),
    _Fig("fig10_critical_batch", "Fig 10: critical batch size", "B_crit = E_min/S_min from the scans "
         "against the loss, eq 1.4 fitted, and the online noise scale B_simple where measured.",
         "B_crit", fg.fig_critical_batch),
    _Fig("fig2_sample_efficiency", "Figs 2 and 19: sample efficiency", "Left: loss against tokens "
         "per size. Right: tokens (E_min) and steps (S_min) to reach fixed losses against N.",
         "sample efficiency", fg.fig_sample_efficiency),
    _Fig("fig5_shape", "Fig 5: shape invariance", "Loss increase over the best shape at fixed N, "
         "corrected for small differences in N with L(N).", "shape", fg.fig_shape),
    _Fig("fig6_embeddings", "Fig 6: embedding vs non-embedding parameters", "The same runs against "
         "total and non-embedding parameters, by depth; the scatter about one power law is in the titles.",
         "embeddings", fg.fig_embedding),
    _Fig("fig8_transfer", "Fig 8: transfer to other distributions", "Final loss on each extra eval "
         "set against the validation loss (points) and the largest model during training (dashed).",
         "transfer", fg.fig_transfer),
    _Fig("fig20_per_position", "Fig 20: loss by position in the context", "Per-token loss at each "
         "position per model size, with L(T) = a + b T^−c fitted.", "per-position", fg.fig_per_position),
    _Fig("chinchilla_approaches", "Chinchilla's three approaches beside Kaplan's", "Compute-optimal N "
         "from the envelope (1), IsoFLOP parabolas (2), the parametric fit (3) and Kaplan's C_min envelope.",
         "approaches", fg.fig_approaches),
    _Fig("backtest", "Backtest: predict the largest runs", "Laws of N and D fitted on the runs with the "
         "smallest two thirds of compute (D = tokens processed, final loss), predicting the rest (filled markers).",
         "backtest", fg.fig_backtest),
]
"""Every figure of the report, in page order."""


def analyse(runs: pd.DataFrame, curves: pd.DataFrame, dirs: dict[str, Path], progress: bool = False
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every analysis; returns ({name: result or None}, {name: why it was skipped})."""
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}

    def need(name: str) -> Any:
        if results.get(name) is None:
            raise DataError(f"it needs {name}, which was skipped")
        return results[name]

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("L(N)", lambda: an.loss_vs_n(runs)),
        ("L(D)", lambda: an.loss_vs_d(runs)),
        ("L(N, D)", lambda: an.loss_vs_nd(runs)),
        ("backtest", lambda: an.backtest(runs)),
        ("B_crit", lambda: an.critical_batch(runs, metrics_table(runs, dirs))),
        ("L(C)", lambda: an.compute_frontier(runs, curves, results["B_crit"])),
        ("L(N, S)", lambda: an.learning_curves(runs, curves, results["B_crit"])),
        ("sample efficiency", lambda: an.sample_efficiency(runs, curves, results["B_crit"])),
        ("shape", lambda: an.shape_invariance(runs, results["L(N)"])),
        ("embeddings", lambda: an.embedding_collapse(runs)),
        ("transfer", lambda: an.transfer(runs, curves)),
        ("per-position", lambda: an.per_position(runs, per_position_table(runs, dirs))),
        ("approaches", lambda: an.approaches(runs, need("L(C)"), results["L(N, D)"])),
    ]
    for name, fn in tqdm(steps, desc="analyses", unit="analysis", disable=not (progress and sys.stderr.isatty()), leave=False):
        try:
            results[name] = fn()
        except ScalinglabError as e:
            results[name] = None
            skipped[name] = str(e)
    return results, skipped


def build_report(study_dir: str | Path, out_dir: str | Path | None = None, progress: bool = True) -> ReportResult:
    """Analyse the study in ``study_dir`` and write ``<out_dir>/index.html`` (default ``<study_dir>/report``)."""
    from scalinglab.study import collect

    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise DataError(f"study directory '{study_dir}' does not exist; give the directory `scalinglab study run` wrote.")
    out = Path(out_dir) if out_dir else study_dir / "report"
    runs, curves = collect(study_dir)
    if runs.empty:
        raise DataError(f"no runs in '{study_dir}'; run the study first (scalinglab study run STUDY.toml).")
    with threadpool_limits(1):  # the fits are tiny: threaded BLAS only contends (9x slower on a busy machine)
        results, skipped = analyse(runs, curves, _run_dirs(study_dir), progress)
    result = ReportResult(out / "index.html", skipped=dict(skipped))

    sections = []
    for f in tqdm(FIGURES, desc="figures", unit="figure", disable=not (progress and sys.stderr.isatty()), leave=False):
        a = results.get(f.analysis)
        if a is None:
            sections.append(Section(f.key, f.title, f.caption, None, skipped.get(f.analysis, "no data")))
            continue
        png, _ = fg.save(f.draw(a), out / "figures", f.key)
        result.figures[f.key] = png
        sections.append(Section(f.key, f.title, f.caption, png))

    result.numbers = headline_numbers(results)
    tr = results["transfer"]
    result.transfer = {} if tr is None else dict(zip(tr.offsets["set"], tr.offsets["offset_largest"]))
    finished = int((runs["status"] == "done").sum()) if "status" in runs.columns else len(runs)
    page = Page(
        title=f"Scaling laws of study '{study_dir.resolve().name}'",
        subtitle=f"{len(runs)} runs ({finished} finished), training compute {runs['C'].min():.3g} to "
        f"{runs['C'].max():.3g} FLOPs (C = 6NBS, N non-embedding); analyses after Kaplan et al. 2020 "
        "and Hoffmann et al. 2022.",
        summary=_summary_rows(result.numbers),
        tables=[t for t in (_constants_table(results), _backtest_table(results["backtest"]),
                            _allocation_table(results, runs), _transfer_table(tr)) if t is not None],
        sections=sections,
        notes=[f"Skipped {k}: {v}" for k, v in skipped.items()],
    )
    write(page, result.path)
    return result


# --------------------------------------------------------------------------------------------------
# Headline numbers and tables


def headline_numbers(results: dict[str, Any]) -> dict[str, float]:
    """α_N, α_D, the compute-optimal exponents, B_crit's law, and the backtest error (nan where missing)."""
    nan = float("nan")
    out = {k: nan for k in ("alpha_N", "alpha_D", "alpha_N_joint", "alpha_D_joint", "alpha_C", "alpha_C_min",
                            "a_envelope", "a_envelope_min", "a_parametric", "B_star", "alpha_B", "alpha_B_noise", "noise_to_bcrit",
                            "backtest_max_error", "backtest_mean_error", "backtest_max_error_chinchilla",
                            "sample_efficiency_gain")}
    if results.get("L(N)"):
        out["alpha_N"] = results["L(N)"].fit.params["alpha_N"]
    if results.get("L(D)"):
        out["alpha_D"] = results["L(D)"].fit.params["alpha_D"]
    if results.get("L(N, D)"):
        out["alpha_N_joint"] = results["L(N, D)"].fit.params["alpha_N"]
        out["alpha_D_joint"] = results["L(N, D)"].fit.params["alpha_D"]
    if fr := results.get("L(C)"):
        out["alpha_C"] = fr.fit.params["alpha_C"]
        out["a_envelope"] = fr.frontier.a
        if fr.fit_min is not None:
            out["alpha_C_min"] = fr.fit_min.params["alpha_C_min"]
            out["a_envelope_min"] = fr.frontier_min.a
    if (ap := results.get("approaches")) and ap.parametric is not None:
        out["a_parametric"] = ap.exponents()["approach 3: parametric"]
    if bc := results.get("B_crit"):
        out["B_star"], out["alpha_B"] = bc.fit.params["B_star"], bc.fit.params["alpha_B"]
        out["noise_to_bcrit"] = bc.noise_ratio()
        if bc.noise_fit is not None:
            out["alpha_B_noise"] = bc.noise_fit.params["alpha_B"]
    if bt := results.get("backtest"):
        e = bt.errors.set_index("law")
        if "kaplan_nd" in e.index:
            out["backtest_max_error"] = float(e.loc["kaplan_nd", "max_error"])
            out["backtest_mean_error"] = float(e.loc["kaplan_nd", "mean_error"])
        if "chinchilla" in e.index:
            out["backtest_max_error_chinchilla"] = float(e.loc["chinchilla", "max_error"])
    if se := results.get("sample efficiency"):
        out["sample_efficiency_gain"] = se.gain()
    return out


def _summary_rows(n: dict[str, float]) -> list[tuple[str, str]]:
    def pct(x: float) -> str:
        return "—" if not math.isfinite(x) else f"{100 * x:.2f}%"

    return [
        ("α_N (L(N), Kaplan 0.076)", fmt(n["alpha_N"])),
        ("α_D (L(D), Kaplan 0.095)", fmt(n["alpha_D"])),
        ("α_N, α_D (joint L(N, D), Kaplan 0.076, 0.103)", f"{fmt(n['alpha_N_joint'])}, {fmt(n['alpha_D_joint'])}"),
        ("compute-optimal N ∝ C^a: envelope / over C_min / parametric (Kaplan 0.73, Chinchilla 0.46-0.50)",
         f"{fmt(n['a_envelope'])} / {fmt(n['a_envelope_min'])} / {fmt(n['a_parametric'])}"),
        ("B_crit(L) = B*/L^(1/α_B) (Kaplan B* = 2.1e8 tokens, α_B = 0.21)",
         f"B* = {fmt(n['B_star'])} tokens, α_B = {fmt(n['alpha_B'])}"),
        ("noise scale: α_B of B_simple(L); median B_simple / B_crit", f"{fmt(n['alpha_B_noise'])}; {fmt(n['noise_to_bcrit'])}"),
        ("backtest: L(N, D) on the cheapest 2/3 of runs, max error on the rest (Kaplan form / Chinchilla form)",
         f"{pct(n['backtest_max_error'])} / {pct(n['backtest_max_error_chinchilla'])}"),
    ]


def _constants_table(results: dict[str, Any]) -> Table | None:
    rows = []
    for name in ("L(N)", "L(D)", "L(N, D)", "L(C)", "L(N, S)", "B_crit", "per-position"):
        a = results.get(name)
        if a is None:
            continue
        for c in a.constants():
            rows.append([c.law, c.name, fmt(c.value), f"[{fmt(c.low)}, {fmt(c.high)}]",
                         fmt(c.paper), c.source, c.unit])
    if not rows:
        return None
    return Table("Fitted constants beside the papers'", ["law", "constant", "fitted", "95% interval", "paper",
                                                        "paper source", "unit"], rows, CONSTANTS_NOTE)


def _backtest_table(bt: an.Backtest | None) -> Table | None:
    if bt is None:
        return None
    rows = [[r.law, str(r.n_train), str(r.n_test), f"{100 * r.max_error:.2f}%", f"{100 * r.mean_error:.2f}%"]
            for r in bt.errors.itertuples()]
    return Table("Backtest: fit on the cheapest two thirds of runs, predict the rest",
                 ["law", "runs fitted", "runs predicted", "max |error|", "mean |error|"], rows,
                 "Runs are ordered by training compute C; D = tokens processed; errors are relative to the observed "
                 "final loss.")


MIN_TOKENS_PER_PARAM = 0.1
"""An allocation with fewer tokens per parameter than this is not a training run: the law is extrapolating."""


def _allocation_table(results: dict[str, Any], runs: pd.DataFrame) -> Table | None:
    """The recommended run at the largest budget of the study and at 10x and 100x it."""
    from scalinglab.laws.plan import PlanningLaw, plan_budget

    bc = results.get("B_crit")
    bcrit = bc.law if bc is not None else None
    laws = []
    if (nd := results.get("L(N, D)")) is not None:
        if nd.chinchilla is not None:
            laws.append(("Chinchilla approach 3 (E + A/N^α + B/D^β)", PlanningLaw("chinchilla", nd.chinchilla.params, "this study", bcrit=bcrit)))
        laws.append(("Kaplan L(N, D)", PlanningLaw("kaplan_nd", nd.fit.params, "this study", bcrit=bcrit)))
    if (lc := results.get("L(N, S)")) is not None and bcrit is not None and lc.adjusted:
        laws.append(("Kaplan App. B (L(N, S) + B_crit)", PlanningLaw("kaplan_ns", lc.fit.params, "this study", bcrit=bcrit)))
    if not laws:
        return None
    top = float(runs["C"].max())
    rows, dropped = [], []
    for budget in (top, 10 * top, 100 * top):
        for label, law in laws:
            try:
                p = plan_budget(law, budget)
            except ScalinglabError:
                continue
            if p.tokens_per_param is not None and p.tokens_per_param < MIN_TOKENS_PER_PARAM:
                dropped.append(label)
                continue
            rows.append([fmt(budget), fmt(budget / PF_DAY), label, fmt(p.n_params), fmt(p.tokens), fmt(p.tokens_per_param),
                         fmt(p.batch_tokens), fmt(p.steps), fmt(p.loss)])
    return Table("Recommended allocation", ["C (FLOPs)", "C (PF-days)", "law", "N (non-embedding)", "tokens D",
                                            "D/N", "batch (tokens)", "steps", "predicted loss"], rows,
                 "Budgets: the study's largest run, 10x and 100x it. Batch = B_crit at the predicted loss when "
                 "B_crit was measured. Kaplan's App. B trains at B_crit, spending C = 2 C_min."
                 + (f" Left out as implausible (fewer than {MIN_TOKENS_PER_PARAM} tokens per parameter, a sign "
                    f"that the fit is not identified on these runs): {', '.join(sorted(set(dropped)))}." if dropped else ""))


def _transfer_table(tr: an.Transfer | None) -> Table | None:
    if tr is None:
        return None
    rows = [[r.set, f"{r.offset:+.3f}", f"{r.offset_largest:+.3f}", f"{r.slope:.3f}", f"{r.intercept:+.3f}"]
            for r in tr.offsets.itertuples()]
    return Table("Transfer: loss on other distributions", ["eval set", "mean offset (nats)", "offset at largest N",
                                                           "slope", "intercept"], rows,
                 "other loss ≈ slope × validation loss + intercept over the finished runs (Kaplan Fig 8: "
                 "a nearly constant offset, slowly growing).")
