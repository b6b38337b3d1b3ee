"""Build a study's report: collect the runs, run every analysis, draw every figure, write the HTML.

:func:`build_report` is what ``scalinglab report STUDY_DIR`` and ``scalinglab demo`` call. An
analysis the study has no data for (no batch scan, no shape scan...) becomes a visible "skipped"
note in the page, never an error; the headline numbers come back as a :class:`ReportResult`.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from scalinglab.atomic import os_errors
from scalinglab.constants import KAPLAN_TABLE2, KAPLAN_TABLE3, KAPLAN_TABLE5, PF_DAY
from scalinglab.errors import ConfigError, DataError, ScalinglabError
from scalinglab.laws.diagnostics import findings, warning
from scalinglab.laws.plan import Plan, plan_budget, planning_law
from scalinglab.report import analyses as an
from scalinglab.report import branches as br
from scalinglab.report import derived as dv
from scalinglab.report import families as fm
from scalinglab.report import figures as fg
from scalinglab.report import hparams as hp
from scalinglab.report import html
from scalinglab.report import repeat as rp
from scalinglab.report import scans as sc
from scalinglab.report.headline import headline_rows
from scalinglab.report.html import FLAG, Page, Table, fmt, pct, text, write
from scalinglab.study.noise import seed_noise
from scalinglab.study.selection import kinds

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
    flags: dict[str, list[str]] = field(default_factory=dict)
    """Why a headline number may not hold (its fit's warnings on it, :func:`headline_flags`), by its key."""
    sections: dict[str, bool] = field(default_factory=dict)
    """Every figure's anchor ('fig-1' ... 'fig-24', ...) -> whether any of its panels is drawn (else noted)."""
    transfer: dict[str, float] = field(default_factory=dict)
    """Offset (nats/token) of each extra eval set's loss over the validation loss, at the largest model."""
    allocations: list[dict[str, Any]] = field(default_factory=list)
    """The recommended runs of the allocation table (:func:`allocations`), with intervals and warnings."""
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    """Every analysis's result by name (None where skipped), for callers that report more (the demo)."""
    runs: pd.DataFrame | None = field(default=None, repr=False)
    """The runs table the analyses used (scalinglab.study.collect), so such callers need not collect again."""
    page: Page | None = field(default=None, repr=False)
    """The page as written, for callers that add to it (the demo's answer) and write it again."""

    def to_dict(self) -> dict[str, Any]:
        return {"report": str(self.path), "figures": {k: str(v) for k, v in self.figures.items()},
                "sections": self.sections, "skipped": self.skipped, "numbers": self.numbers, "flags": self.flags,
                "transfer": self.transfer, "allocations": self.allocations}


# --------------------------------------------------------------------------------------------------
# The figures of the paper, 1 to 24: a registry of panels


_EXAMPLES = {
    "ladder": "studies/ladder.toml", "lr_scan": "studies/lr_schedules.toml", "shape_scan": "studies/kaplan_fig5.toml",
    "isoflop": "studies/isoflop.toml", "eval_sets": "studies/books_transfer.toml", "context_scan": "studies/context_scan.toml",
    "repeat": "studies/repeat.toml", "wsd_ladder": "studies/wsd_ladder.toml",
}  # fmt: skip
"""A study file showing each design; the others are in the demo's study.toml (``scalinglab demo``)."""


def needs(design: str, what: str = "") -> str:
    """The note of a panel the study cannot draw: 'not drawn: add a <design> design (see ...)'."""
    where = _EXAMPLES.get(design, "the demo's study.toml and docs/figures.md")
    return f"not drawn: add a{'n' if design[0] in 'aeiou' else ''} {design} design (see {where}){what}"


@dataclass(frozen=True)
class Panel:
    """One panel of a paper figure: the analysis it draws, how, and a caption computed from that analysis."""

    stem: str
    """File stem of the PNG/SVG, e.g. 'fig1_loss_vs_n'."""
    analysis: str
    """Name of the analysis result it draws (see :func:`analyse`)."""
    design: str
    """The design that feeds the analysis, named in the note when it is missing."""
    draw: Callable[[Any], Any] | None = None
    """Figure function; None until the module that owns the analysis registers it (Figs 7, 17, 24)."""
    caption: Callable[[Any], str] = lambda a: ""
    """What the panel shows, from the numbers of the analysis (never written in advance)."""


@dataclass
class PaperFigure:
    """A figure of Kaplan et al. 2020 (or a follow-up) and its panels, in page order."""

    key: str
    """Anchor: 'fig-N' for Kaplan's figures."""
    title: str
    panels: list[Panel] = field(default_factory=list)


def _fit_range(x: Any) -> str:
    return f"{np.nanmin(x):.3g} to {np.nanmax(x):.3g}"


def _cap_loss_vs_n(a: an.LossVsN) -> str:
    return (f"Best run of each of {len(a.points)} sizes (N {_fit_range(a.points['N'])}); L(N) fitted with "
            f"α_N = {text(a.fit.params['alpha_N'])} (Kaplan 0.076). Solid over the data, dashed beyond. {a.selection}.")


def _cap_loss_vs_d(a: an.LossVsD) -> str:
    return (f"{len(a.points)} dataset sizes ({_fit_range(a.points['D'])} tokens) on N = {a.n_params:.3g}, early-stopped; "
            f"α_D = {text(a.fit.params['alpha_D'])} (Kaplan 0.095). {a.selection}.")


def _cap_frontier(a: an.ComputeFrontier) -> str:
    s = (f"{a.curves['run_id'].nunique()} learning curves against C = 6NBS; the envelope (running minimum) with "
         f"α_C = {text(a.fit.params['alpha_C'])} (Kaplan 0.057)")
    if a.fit_min is not None:
        s += f"; over C_min, α_C^min = {text(a.fit_min.params['alpha_C_min'])} (Kaplan 0.050)"
    return s + (f". {a.note}." if a.note else ".")


def _cap_allocation(a: an.ComputeFrontier) -> str:
    f = a.frontier
    s = (f"N_opt ∝ C^{text(f.a)} at fixed batch (Kaplan 0.88) over the {len(np.unique(f.n_opt))} sizes that win "
         "where the ladder brackets the optimum")
    if a.frontier_min is not None:
        s += f"; over C_min, N_opt ∝ C_min^{text(a.frontier_min.a)} (Kaplan 0.73)"
    return s + (". " + a.note + "; the shaded range is left out." if a.note else ".")


def _cap_speed(a: an.SampleEfficiency) -> str:
    return (f"Loss against tokens and against compute for {a.curves['run_id'].nunique()} sizes; at a shared loss the "
            f"smallest model needs {text(a.gain())}× the tokens of the largest.")


def _cap_steps(a: an.SampleEfficiency) -> str:
    return f"E_min and S_min (batch-adjusted when B_crit is known) to reach {a.reach['level'].nunique()} losses, per size."


def _cap_split(a: dv.ComputeSplit) -> str:
    return (f"From the study's laws: N ∝ C_min^{text(a.p_N)}, B_crit ∝ C_min^{text(a.p_B)}, S ∝ C_min^{text(a.p_S)} "
            f"(Kaplan 0.73, 0.24, 0.03); solid over the {a.compute_range:.2g}× span of the data, dashed beyond, "
            "crosses at Kaplan's 10^9× split.")


def _cap_nd(a: an.LossVsND) -> str:
    n = a.points.groupby("N").size()
    return (f"{len(a.points)} runs at {len(n)} sizes (from {n.min()} to {n.max()} dataset sizes each); one L(N, D) "
            f"curve per size, α_N = {text(a.fit.params['alpha_N'])}, α_D = {text(a.fit.params['alpha_D'])} "
            f"(Kaplan 0.076, 0.103). {a.selection}.")


def _cap_ns(a: an.LearningCurves) -> str:
    return (f"{a.points['run_id'].nunique()} learning curves after the transient; α_S = {text(a.fit.params['alpha_S'])} "
            f"(Kaplan 0.76), {'S_min from B_crit(L)' if a.adjusted else 'raw steps (no batch scan)'}.")


def _cap_overfit(a: an.LossVsND) -> str:
    lim = a.points[a.points["limited"]]
    if lim.empty:
        return "No data-limited runs: nothing overfits."
    resid = lim["delta"] - a.overfitting(lim["x"].to_numpy(float))
    return (f"{len(lim)} data-limited runs at {lim['N'].nunique()} sizes; their RMS distance from eq 4.3 is "
            f"{text(float(np.sqrt(np.mean(resid**2))))} in L/L(N,∞) − 1"
            + (" (one size: a collapse across sizes is not tested)." if lim["N"].nunique() < 2 else "."))


def _cap_per_d(a: an.LossVsND) -> str:
    return f"Early-stopped loss against N for {a.points[a.points['limited']]['D'].nunique()} dataset sizes and D = ∞."


def _cap_bcrit(a: an.CriticalBatchSize) -> str:
    lv = a.levels
    s = (f"{len(lv)} B_crit points from scans at {lv['N'].nunique()} sizes over training loss {_fit_range(lv['loss'])}; "
         f"B_crit ∝ L^-{text(1 / a.fit.params['alpha_B'])} (Kaplan 4.8), solid over the scans' losses, dashed beyond")
    if not a.noise.empty:
        s += f"; median B_simple / B_crit = {text(a.noise_ratio())}"
    return s + "."


def _cap_scan(a: an.CriticalBatchSize) -> str:
    return f"Steps and tokens to reach {a.levels.groupby('N').size().max()} losses across batch sizes, with eq 5.1 fitted per loss."


def _cap_fixed_c(a: an.LearningCurves) -> str:
    return "Points interpolate the runs' learning curves at 5 budgets; lines are L(N, S) at S = C/(6NB)."


def _cap_fixed_s(a: an.LearningCurves) -> str:
    return "Points interpolate the runs' learning curves at 4 step counts; lines are L(N, S_min(S)) (eqs 5.4, 5.6)."


def _cap_excess(a: dv.ExcessCompute) -> str:
    lo, hi = a.within_20pct
    return (f"From the study's L(N, S) and B_crit(L): sizes {text(lo)}× to {text(hi)}× the efficient one cost at most "
            "+20% compute (Kaplan 0.6× to 2.2×).")


def _cap_cross(a: dv.DataComputeIntersection) -> str:
    if not np.isfinite(a.crossing):
        return "L(C_min) and L(D(C_min)) do not cross within 10^12 times the study's compute."
    lo, hi = a.crossing_interval
    where = f"{text(a.crossing / PF_DAY)} PF-days, L = {text(a.crossing_loss)}"
    band = f" (95% interval {text(lo / PF_DAY)} to {text(hi / PF_DAY)} PF-days)" if np.isfinite(lo) else " (interval: too few bootstrap refits cross)"
    return (f"The laws cross at {where}{band}, {text(a.crossing / a.data_range[1])}× beyond the study's largest C_min "
            "(Kaplan: 10^4 PF-days, L ≈ 1.7, 'highly uncertain').")


def _cap_stop(a: dv.EarlyStopping) -> str:
    return (f"{len(a.points)} data-limited runs; {text(100 * a.fraction_above())}% stopped at or after the eq 5.7 lower "
            "bound. Right: train (dotted) and test loss of the largest swept model.")


def _cap_shape(a: an.ShapeInvariance) -> str:
    return f"Largest loss increase over the best shape: {text(100 * a.points['increase'].max())}% over {len(a.points)} runs."


def _cap_embed(a: an.EmbeddingCollapse) -> str:
    return (f"{len(a.points)} ladder shapes (no scan runs). Scatter about one power law: {text(100 * a.scatter_total)}% "
            f"against N_total, {text(100 * a.scatter_non_embedding)}% against non-embedding N.")


def _cap_transfer(a: an.Transfer) -> str:
    o = a.offsets
    return "Offsets over the validation loss: " + ", ".join(f"{r.set} {text(r.offset)} nats" for r in o.itertuples()) + "."


def _cap_pos(a: an.PerPosition) -> str:
    return f"Final per-token loss against position for {a.points['N'].nunique()} sizes; L(T) = a + b T^-c fitted per size."


def _cap_during(a: sc.ContextLoss) -> str:
    if a.during.empty:
        return ""
    return f"N = {a.largest:.3g}: per-token loss at {a.during['T'].nunique()} positions over {a.during['step'].nunique()} evaluations."


def _cap_pos_n(a: sc.ContextLoss) -> str:
    short = a.final[a.final["short"]]
    return (f"Final per-token loss at positions 1 to {a.n_ctx} against N ({a.final['N'].nunique()} sizes)"
            + (f"; dashed: {short['run_id'].nunique()} runs with n_ctx = {int(short['n_ctx'].min())}." if len(short) else
               "; no shorter-context runs (add a context_scan design)."))


def _cap_lr(a: sc.LearningRateScan) -> str:
    b = a.best()
    edge = " (at the end of its scan: widen it)"
    return (f"{len(a.points)} runs; best LR per size: "
            + ", ".join(f"N={r.N:.3g}: {text(r.lr)}{edge if r.edge else ''}" for r in b.itertuples()) + ".")


def _cap_log(a: dv.LogFit) -> str:
    better = "power law" if a.rms_power < a.rms_log else "logarithm"
    return (f"RMS relative residual: power law {text(100 * a.rms_power)}%, logarithm {text(100 * a.rms_log)}%; "
            f"the {better} fits better here (Kaplan: the power law).")


def _cap_approaches(a: an.Approaches) -> str:
    ex = a.exponents()
    s = "N_opt ∝ C^a: " + ", ".join(f"{k} {text(v)}" for k, v in ex.items())
    return s + (f". Approach 2 not drawn: {a.isoflop_note}." if a.isoflop is None else ".")


def _cap_backtest(a: an.Backtest) -> str:
    chosen = f" (--law auto chose {a.chosen()} by rollout cross-validation inside the fitted runs)" if a.chosen() else ""
    return ("Fitted on the cheapest runs, predicting the rest: " +
            ", ".join(f"{r.law} max error {pct(r.max_error).replace('%', '')}%" for r in a.errors.itertuples()) + chosen + ".")


def _fig(key: str, title: str, *panels: Panel) -> PaperFigure:
    return PaperFigure(key, title, list(panels))


FIGURES: list[PaperFigure] = [
    _fig("fig-1", "Fig 1: L(C), L(D), L(N)",
         Panel("fig1_compute_frontier", "L(C)", "ladder", fg.fig_compute_frontier, _cap_frontier),
         Panel("fig1_loss_vs_d", "L(D)", "dataset_size", fg.fig_loss_vs_d, _cap_loss_vs_d),
         Panel("fig1_loss_vs_n", "L(N)", "ladder", fg.fig_loss_vs_n, _cap_loss_vs_n)),
    _fig("fig-2", "Fig 2: larger models learn faster", Panel("fig2_learning_speed", "sample efficiency", "ladder",
                                                            fg.fig_learning_speed, _cap_speed)),
    _fig("fig-3", "Fig 3: how a compute increase splits between N, B and S",
         Panel("fig3_compute_split", "compute split", "batch_scan", fg.fig_compute_split, _cap_split)),
    _fig("fig-4", "Fig 4: L(N, D) and L(N, S)",
         Panel("fig4_loss_vs_nd", "L(N, D)", "dataset_size", fg.fig_loss_vs_nd, _cap_nd),
         Panel("fig4_learning_curves", "L(N, S)", "ladder", fg.fig_learning_curves, _cap_ns)),
    _fig("fig-5", "Fig 5: shape invariance", Panel("fig5_shape", "shape", "shape_scan", fg.fig_shape, _cap_shape)),
    _fig("fig-6", "Fig 6: embedding vs non-embedding parameters",
         Panel("fig6_embeddings", "embeddings", "ladder", fg.fig_embedding, _cap_embed)),
    _fig("fig-7", "Fig 7: LSTMs against Transformers",
         Panel("fig7_lstm", "families: LSTM", "ladder", fg.fig_lstm_vs_n, fm.caption_lstm),
         Panel("fig7_per_position", "families: LSTM", "ladder", fg.fig_lstm_positions, fm.caption_positions)),
    _fig("fig-8", "Fig 8: transfer to other distributions",
         Panel("fig8_transfer", "transfer", "eval_sets", fg.fig_transfer, _cap_transfer)),
    _fig("fig-9", "Fig 9: the data-size bottleneck and overfitting",
         Panel("fig9_loss_vs_n_per_d", "L(N, D)", "dataset_size", fg.fig_loss_vs_n_per_d, _cap_per_d),
         Panel("fig9_overfitting", "L(N, D)", "dataset_size", fg.fig_overfitting, _cap_overfit)),
    _fig("fig-10", "Fig 10: critical batch size",
         Panel("fig10_critical_batch", "B_crit", "batch_scan", fg.fig_critical_batch, _cap_bcrit)),
    _fig("fig-11", "Fig 11: loss against N at fixed compute and at fixed steps",
         Panel("fig11_fixed_compute", "L(N, S)", "ladder", fg.fig_loss_at_fixed_compute, _cap_fixed_c),
         Panel("fig11_fixed_steps", "L(N, S)", "ladder", fg.fig_loss_at_fixed_steps, _cap_fixed_s)),
    _fig("fig-12", "Fig 12: excess compute and steps off the optimal size",
         Panel("fig12_excess_compute", "excess compute", "batch_scan", fg.fig_excess_compute, _cap_excess)),
    _fig("fig-13", "Fig 13: the compute frontier, at fixed batch and over C_min",
         Panel("fig13_compute_frontier", "L(C)", "ladder", fg.fig_compute_frontier, _cap_frontier)),
    _fig("fig-14", "Fig 14: compute-optimal N(C) and S(C)",
         Panel("fig14_optimal_allocation", "L(C)", "ladder", fg.fig_optimal_allocation, _cap_allocation)),
    _fig("fig-15", "Fig 15: L(C_min) against L(D(C_min))",
         Panel("fig15_data_compute", "data vs compute", "dataset_size", fg.fig_data_compute, _cap_cross)),
    _fig("fig-16", "Fig 16: early stopping and train against test loss",
         Panel("fig16_early_stopping", "early stopping", "dataset_size", fg.fig_early_stopping, _cap_stop)),
    _fig("fig-17", "Fig 17: recurrent (parameter-reusing) Transformers",
         Panel("fig17_recurrent", "families: universal", "ladder", fg.fig_recurrent, fm.caption_recurrent)),
    _fig("fig-18", "Fig 18: batch-size scans", Panel("fig18_batch_scan", "B_crit", "batch_scan", fg.fig_batch_scan, _cap_scan)),
    _fig("fig-19", "Fig 19: steps and examples to reach a loss",
         Panel("fig19_steps_to_loss", "sample efficiency", "ladder", fg.fig_steps_to_loss, _cap_steps)),
    _fig("fig-20", "Fig 20: loss by position in the context",
         Panel("fig20_per_position", "per-position", "ladder", fg.fig_per_position, _cap_pos),
         Panel("fig20_during_training", "context", "ladder", fg.fig_position_during_training, _cap_during)),
    _fig("fig-21", "Fig 21: per-position loss against N, and short contexts",
         Panel("fig21_position_vs_n", "context", "context_scan", fg.fig_position_vs_n, _cap_pos_n)),
    _fig("fig-22", "Fig 22: learning-rate schedules", Panel("fig22_lr_scan", "LR scan", "lr_scan", fg.fig_lr_scan, _cap_lr)),
    _fig("fig-23", "Fig 23: power law against a logarithm", Panel("fig23_log_fit", "log fit", "ladder", fg.fig_log_fit, _cap_log)),
    _fig("fig-24", "Fig 24: depth against generalisation",
         Panel("fig24_depth", "families: depth", "ladder", fg.fig_depth, fm.caption_depth)),
    _fig("hparams", "Optimal learning rate and batch size as laws of N and D (Step Law, Li et al. 2025)",
         Panel("hparams_landscape", "hyper-parameters", "hp_grid", hp.fig_landscape, hp.caption_landscape),
         Panel("hparams_lr_opt", "hyper-parameters", "hp_grid", hp.fig_lr_opt, hp.caption_lr),
         Panel("hparams_batch_opt", "hyper-parameters", "hp_grid", hp.fig_batch_opt, hp.caption_batch)),
    _fig("repeat", "Data-constrained scaling: repeated data (Muennighoff et al. 2023)",
         Panel("repeat_loss_vs_epochs", "repetition", "repeat", rp.fig_epochs, rp.caption_epochs),
         Panel("repeat_fixed_compute", "repetition", "repeat", rp.fig_fixed_compute, rp.caption_fixed_compute),
         Panel("repeat_effective_tokens", "repetition", "repeat", rp.fig_effective, rp.caption_effective),
         Panel("repeat_returns", "repetition", "repeat", rp.fig_returns, rp.caption_returns)),
    _fig("branches", "Cooldown branches: several D from one WSD run per size (Hägele et al. 2024)",
         Panel("branches", "cooldown branches", "wsd_ladder", br.fig_branches, br.caption_branches)),
    _fig("chinchilla-approaches", "Chinchilla's approaches beside Kaplan's",
         Panel("chinchilla_approaches", "approaches", "isoflop", fg.fig_approaches, _cap_approaches)),
    _fig("backtest", "Backtest: predict the largest runs",
         Panel("backtest", "backtest", "nd_grid", fg.fig_backtest, _cap_backtest)),
]
"""Every figure of the page, in page order: Kaplan's 1-24, then Chinchilla's approaches and the backtest."""


def register(key: str, panel: Panel, analysis: Callable[[dict[str, Any], Tables], Any] | None = None) -> None:
    """Draw a panel of figure ``key`` (e.g. 'fig-24'): replaces the panel with the same stem, else appends it.

    ``analysis(results, tables)`` computes ``panel.analysis`` from the other results and the collected
    tables; a :class:`~scalinglab.errors.ScalinglabError` it raises becomes the panel's note.
    """
    fig = next((f for f in FIGURES if f.key == key), None)
    if fig is None:
        raise KeyError(f"no figure '{key}'; use one of {', '.join(f.key for f in FIGURES)}")
    fig.panels = [panel if p.stem == panel.stem else p for p in fig.panels]
    if panel not in fig.panels:
        fig.panels.append(panel)
    if analysis is not None:
        EXTRA_ANALYSES[panel.analysis] = analysis


@dataclass(frozen=True)
class Tables:
    """The collected tables of a study (scalinglab.study.collect): runs, evaluations, logged steps, positions."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    records: pd.DataFrame
    positions: pd.DataFrame


EXTRA_ANALYSES: dict[str, Callable[[dict[str, Any], Tables], Any]] = {}
"""Analyses registered by other modules with :func:`register` (run after the built-in ones)."""


def analyse(t: Tables, progress: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every analysis; returns ({name: result or None}, {name: why it was skipped})."""
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    runs, curves = t.runs, t.curves

    def need(name: str) -> Any:
        if results.get(name) is None:
            raise DataError(f"it needs {name}, which was skipped ({skipped.get(name, 'no data')})")
        return results[name]

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("L(N)", lambda: an.loss_vs_n(runs)),
        ("L(D)", lambda: an.loss_vs_d(runs)),
        ("L(N, D)", lambda: an.loss_vs_nd(runs)),
        ("backtest", lambda: an.backtest(runs)),
        ("B_crit", lambda: an.critical_batch(runs, t.records)),
        ("L(C)", lambda: an.compute_frontier(runs, curves, results["B_crit"])),
        ("L(N, S)", lambda: an.learning_curves(runs, curves, results["B_crit"])),
        ("sample efficiency", lambda: an.sample_efficiency(runs, curves, results["B_crit"])),
        ("shape", lambda: an.shape_invariance(runs, results["L(N)"])),
        ("embeddings", lambda: an.embedding_collapse(runs)),
        ("transfer", lambda: an.transfer(runs, curves)),
        ("seed noise", lambda: seed_noise(runs)),
        ("per-position", lambda: an.per_position(runs, t.positions[t.positions["final"]][["run_id", "T", "loss"]])),
        ("context", lambda: sc.context_loss(runs, t.positions)),
        ("LR scan", lambda: sc.lr_scan(runs, t.records)),
        ("approaches", lambda: an.approaches(runs, need("L(C)"), results["L(N, D)"])),
        ("compute split", lambda: dv.compute_split(need("L(C)"), need("B_crit"))),
        ("excess compute", lambda: dv.excess_compute(need("L(N, S)"), need("B_crit"))),
        ("data vs compute", lambda: dv.data_compute_intersection(need("L(C)"), need("L(D)"))),
        ("early stopping", lambda: dv.early_stopping(runs, curves, need("L(N, D)"), need("L(N, S)"), results["B_crit"])),
        ("log fit", lambda: dv.log_fit(need("L(N)"))),
        ("hyper-parameters", lambda: hp.hyper_parameters(runs, t.records, results["B_crit"])),
        ("families: LSTM", lambda: fm.lstm_comparison(runs, t.positions)),
        ("families: universal", lambda: fm.recurrent_comparison(runs, curves)),
        ("families: depth", lambda: fm.depth_generalisation(runs)),
        ("repetition", lambda: rp.repetition(runs)),
        ("cooldown branches", lambda: br.cooldown_branches(runs, curves)),
        *((name, lambda fn=fn: fn(results, t)) for name, fn in EXTRA_ANALYSES.items()),
    ]
    for name, fn in tqdm(steps, desc="analyses", unit="analysis", disable=not (progress and sys.stderr.isatty()), leave=False):
        try:
            results[name] = fn()
        except ScalinglabError as e:
            results[name] = None
            skipped[name] = str(e)
    return results, skipped


def _note(design: str, why: str, present: frozenset[str] = frozenset()) -> str:
    """'not drawn: ...': the analysis's own reason when it names the design to add or when the study has the
    panel's design (``present``: the design kinds of its runs), else the panel's design to add."""
    if "design" in why or (why and design in present):
        return f"not drawn: {why}"
    return needs(design, f": {why}" if why else "")


def _drawable(f: Panel, results: dict[str, Any]) -> bool:
    """Whether a panel has a figure function and its analysis ran (else it is a note)."""
    return f.draw is not None and results.get(f.analysis) is not None


def _panel(
    f: Panel, results: dict[str, Any], skipped: dict[str, str], out: Path, drawn: dict[str, Path],
    present: frozenset[str] = frozenset(),
) -> html.Panel:
    """Draw one panel, or its note: the design to add (when ``present``, the study's design kinds, lacks it) and,
    when an analysis ran and refused, its reason."""
    a = results.get(f.analysis)
    if not _drawable(f, results):
        return html.Panel("", None, _note(f.design, skipped.get(f.analysis, ""), present))
    try:
        caption = f.caption(a)
        fig = f.draw(a)
    except (ScalinglabError, ValueError, KeyError) as e:  # an analysis that ran but has nothing this panel can show
        return html.Panel("", None, _note(f.design, str(e), present))
    png, _ = fg.save(fig, out / "figures", f.stem)
    drawn[f.stem] = png
    return html.Panel(caption, png)


def default_workers() -> int:
    """Processes that draw the figures: this process's CPUs, at most 4, on Linux (where forking is safe and
    cheap); one elsewhere."""
    if not sys.platform.startswith("linux"):
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def resolve_workers(workers: int | None) -> int:
    """``workers`` checked (at least 1), or :func:`default_workers` for None."""
    if workers is None:
        return default_workers()
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1 (1 draws the figures in this process).")
    return workers


_FORKED: dict[str, Any] = {}
"""What the drawing processes read (the analyses' results and where to write): set before they fork, so the
results are inherited, never pickled."""


def _draw_forked(job: tuple[int, int]) -> tuple[tuple[int, int], html.Panel, dict[str, Path], list[str]]:
    """Panel ``job`` = (figure, panel) drawn in a forked process: its panel, files and the warnings it raised."""
    figure, panel = job
    drawn: dict[str, Path] = {}
    with np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = _FORKED
        out = _panel(FIGURES[figure].panels[panel], c["results"], c["skipped"], c["out"], drawn, c["present"])
    return job, out, drawn, [str(w.message) for w in caught]


def draw_panels(
    results: dict[str, Any], skipped: dict[str, str], out: Path, present: frozenset[str], workers: int = 1,
    progress: bool = False,
) -> tuple[list[html.Section], dict[str, Path], list[str]]:
    """Every figure's panels, drawn or noted, in page order: (sections, {stem: png}, warnings the drawing raised).

    Rendering is most of a report's time (28 of the demo's figures, PNG and SVG each: about 16 s on one core)
    and each panel is independent, so with ``workers`` > 1 the panels with something to draw are drawn by that
    many forked processes; the files and the page are the same either way.
    """
    jobs = [(i, j) for i, f in enumerate(FIGURES) for j, p in enumerate(f.panels) if _drawable(p, results)]
    panels: dict[tuple[int, int], html.Panel] = {}
    drawn: dict[str, Path] = {}
    raised: list[str] = []
    bar = tqdm(total=len(jobs), desc="figures", unit="panel", disable=not (progress and sys.stderr.isatty()), leave=False)
    if workers > 1 and len(jobs) > 1:
        _FORKED.update(results=results, skipped=skipped, out=out, present=present)
        try:
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
                for done in as_completed([pool.submit(_draw_forked, job) for job in jobs]):
                    job, panels[job], files, messages = done.result()
                    drawn.update(files)
                    raised += messages
                    bar.update()
        except BrokenProcessPool as e:  # a drawing process was killed (out of memory): draw the rest here
            raised.append(f"a figure-drawing process died ({e}); the remaining panels were drawn in one process")
        finally:
            _FORKED.clear()
    for i, j in jobs:
        if (i, j) not in panels:  # all of them with one worker
            panels[i, j] = _panel(FIGURES[i].panels[j], results, skipped, out, drawn, present)
            bar.update()
    bar.close()
    sections = []
    for i, f in enumerate(FIGURES):
        section = [panels.get((i, j)) or _panel(p, results, skipped, out, drawn, present) for j, p in enumerate(f.panels)]
        sections.append(html.Section(f.key, f.title, section))
    in_order = {stem: drawn[stem] for stem in (FIGURES[i].panels[j].stem for i, j in jobs) if stem in drawn}
    return sections, in_order, raised


def build_report(
    study_dir: str | Path, out_dir: str | Path | None = None, progress: bool = True, workers: int | None = None,
    keep_tables: bool = False,
) -> ReportResult:
    """Analyse the study in ``study_dir`` and write ``<out_dir>/index.html`` (default ``<study_dir>/report``),
    drawing the figures in ``workers`` processes (default :func:`default_workers`); with ``keep_tables``,
    the runs and steps it collected are written into the study directory too (collected once, not twice)."""
    from scalinglab.study.collect import collect, collect_positions, collect_records, save_tables

    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise DataError(f"study directory '{study_dir}' does not exist; give the directory `scalinglab study run` wrote.")
    workers = resolve_workers(workers)  # before the collection: a bad count fails at once
    out = Path(out_dir) if out_dir else study_dir / "report"
    with os_errors(out):  # an out folder that cannot be made fails before the analyses, not after them
        (out / "figures").mkdir(parents=True, exist_ok=True)
    runs, curves = collect(study_dir)
    if runs.empty:
        raise DataError(f"no runs in '{study_dir}'; run the study first (scalinglab study run STUDY.toml).")
    if keep_tables:
        save_tables(runs, curves, study_dir)
    tables = Tables(runs, curves, collect_records(study_dir), collect_positions(study_dir))
    return report_from_tables(tables, out, study_dir.resolve().name, progress, workers)


def report_from_tables(
    tables: Tables, out: Path, name: str, progress: bool = False, workers: int | None = None
) -> ReportResult:
    """The report of collected tables: every analysis, every figure 1-24 drawn or noted, ``<out>/index.html``."""
    runs = tables.runs
    workers = resolve_workers(workers)
    # tiny fits: threaded BLAS only contends; library warnings become notes on the page, never raw output
    with threadpool_limits(1), np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results, skipped = analyse(tables, progress)
        result = ReportResult(out / "index.html", skipped=dict(skipped))
        present = frozenset(k for ks in kinds(runs) for k in ks)  # a panel of a design the study has says why, not "add one"
        sections, result.figures, raised = draw_panels(results, skipped, out, present, workers, progress)
    messages = [str(w.message) for w in caught] + raised
    result.sections = {s.key: s.drawn for s in sections}
    result.numbers = headline_numbers(results)
    result.flags = headline_flags(results)
    result.results = results
    result.runs = runs
    planned, refused = allocations(results, runs)
    result.allocations = [a.to_dict() for a in planned]
    tr = results["transfer"]
    result.transfer = {} if tr is None else dict(zip(tr.offsets["set"], tr.offsets["offset_largest"]))
    finished = int((runs["status"] == "done").sum()) if "status" in runs.columns else len(runs)
    page = Page(
        title=f"Scaling laws of study '{name}'",
        subtitle=f"{len(runs)} runs ({finished} finished), training compute {fmt(runs['C'].min())} to "
        f"{fmt(runs['C'].max())} FLOPs (C = 6NBS, N non-embedding); analyses after Kaplan et al. 2020 "
        "and Hoffmann et al. 2022.",
        summary=[(k, v) for k, v, _ in headline_rows(result.numbers, result.flags)],
        tables=[t for t in (_constants_table(results), _backtest_table(results["backtest"]),
                            _allocation_table(planned, refused), _transfer_table(tr)) if t is not None],
        sections=sections,
        notes=[f"Skipped {k}: {v}" for k, v in skipped.items()]
        + [f"warning: {html_escape(m)}" for m in dict.fromkeys(m.splitlines()[0] for m in messages)],
    )
    write(page, result.path)
    result.page = page
    return result


# --------------------------------------------------------------------------------------------------
# Headline numbers and tables


HEADLINE_EXPONENTS = (("L(N)", "alpha_N", "alpha_N"), ("L(D)", "alpha_D", "alpha_D"),
                      ("L(N, D)", "alpha_N", "alpha_N_joint"), ("L(N, D)", "alpha_D", "alpha_D_joint"),
                      ("B_crit", "B_star", "B_star"), ("B_crit", "alpha_B", "alpha_B"))
"""(analysis, parameter, headline key) of the constants the headline shows with their interval and flags."""


def headline_flags(results: dict[str, Any]) -> dict[str, list[str]]:
    """Each headline exponent's findings from its fit's warnings (at a bound, not identified) and the laws it
    disagrees with (:func:`disagreements`): the headline says them beside the number, as the constants table does."""
    flags = {}
    split = disagreements(results)
    for name, param, key in HEADLINE_EXPONENTS:
        fit = getattr(results.get(name), "fit", None)
        found = findings(getattr(fit, "warnings", None) or [], param, skip=()) + [d.flag(name) for d in split if d.involves(name, param)]
        if found:
            flags[key] = found
    return flags


SHARED_EXPONENTS = {
    "alpha_N": {"L(N)": KAPLAN_TABLE5["alpha_N"], "L(N, D)": KAPLAN_TABLE2["alpha_N"], "L(N, S)": KAPLAN_TABLE3["alpha_N"]},
    "alpha_D": {"L(D)": KAPLAN_TABLE5["alpha_D"], "L(N, D)": KAPLAN_TABLE2["alpha_D"]},
}
"""Exponents several laws measure: by the analyses that fit them, Kaplan's value in each. His fits agree on each
(α_N 0.076, 0.076, 0.077; α_D 0.095 and 0.103), so intervals here that do not overlap say the study does not
measure one exponent (a law fitted outside the regime it describes, or too few runs)."""

REGIMES = {"L(N)": "sizes trained to convergence", "L(D)": "early-stopped runs of one size on limited data",
           "L(N, D)": "early-stopped runs over sizes and dataset sizes", "L(N, S)": "learning curves of runs not limited by data"}
"""The runs each law describes (Kaplan §3, §4, §5), named when two laws disagree."""


@dataclass(frozen=True)
class Disagreement:
    """Two laws whose bootstrap intervals on one exponent they share do not overlap."""

    param: str
    laws: tuple[str, str]
    """The analyses (``L(N)``, ``L(N, S)``, ...)."""
    values: tuple[tuple[float, float, float], tuple[float, float, float]]
    """(value, low, high) of the exponent in each."""

    def involves(self, law: str, param: str) -> bool:
        return param == self.param and law in self.laws

    def _text(self, i: int) -> str:
        value, low, high = self.values[i]
        return f"{text(value)} [{text(low)}, {text(high)}]"

    def flag(self, law: str) -> str:
        """What a number of ``law`` says beside it: the other law and its estimate."""
        other = 1 - self.laws.index(law)
        return f"disagrees with {self.laws[other]}'s {self._text(other)}"

    def warning(self) -> dict[str, Any]:
        (a, b), p = self.laws, self.param
        paper = SHARED_EXPONENTS[p]
        return warning(
            "candidates_disagree", p,
            f"{p} of {a}, {self._text(0)}, and of {b}, {self._text(1)}, do not overlap, where Kaplan's agree "
            f"({paper[a]:g} and {paper[b]:g}): these runs do not measure one {p}; trust neither alone: read each law's "
            f"other warnings, and give each the runs it describes ({a}: {REGIMES[a]}; {b}: {REGIMES[b]}).",
        )  # fmt: skip


def disagreements(results: dict[str, Any]) -> list[Disagreement]:
    """Every pair of laws whose intervals on an exponent of :data:`SHARED_EXPONENTS` do not overlap."""
    out = []
    for param, names in SHARED_EXPONENTS.items():
        measured = []
        for name in names:
            fit = getattr(results.get(name), "fit", None)
            if fit is None or param not in fit.params:
                continue
            low, high = fit.intervals.get(param, (np.nan, np.nan))
            if np.isfinite(low) and np.isfinite(high):
                measured.append((name, (float(fit.params[param]), float(low), float(high))))
        for (a, va), (b, vb) in itertools.combinations(measured, 2):
            if va[1] > vb[2] or vb[1] > va[2]:
                out.append(Disagreement(param, (a, b), (va, vb)))
    return out


def headline_numbers(results: dict[str, Any]) -> dict[str, float]:
    """α_N, α_D, the compute-optimal exponents, B_crit's law, and the backtest error (nan where missing)."""
    nan = float("nan")
    out = {k: nan for k in ("alpha_N", "alpha_D", "alpha_N_joint", "alpha_D_joint", "alpha_C", "alpha_C_min",
                            "a_envelope", "a_envelope_min", "a_parametric", "B_star", "alpha_B", "alpha_B_noise", "noise_to_bcrit",
                            "backtest_max_error", "backtest_mean_error", "backtest_max_error_kaplan_nd",
                            "backtest_max_error_chinchilla",
                            "sample_efficiency_gain", "noise_sd_log")}
    for name, param, key in HEADLINE_EXPONENTS:
        if fit := getattr(results.get(name), "fit", None):
            out[key] = fit.params[param]
            lo, hi = fit.intervals.get(param, (nan, nan))  # bootstrap over runs (report.analyses.BOOTSTRAP refits)
            out[f"{key}_low"], out[f"{key}_high"] = float(lo), float(hi)
    if fr := results.get("L(C)"):
        out["alpha_C"] = fr.fit.params["alpha_C"]
        out["a_envelope"] = fr.frontier.a if fr.measured else nan  # unbracketed: where the ladder starts, not N_opt
        if fr.fit_min is not None:
            out["alpha_C_min"] = fr.fit_min.params["alpha_C_min"]
            out["a_envelope_min"] = fr.frontier_min.a if fr.measured else nan
    if (ap := results.get("approaches")) and ap.parametric is not None:
        out["a_parametric"] = ap.exponents()["approach 3: parametric"]
    if bc := results.get("B_crit"):
        out["noise_to_bcrit"] = bc.noise_ratio()
        if bc.noise_fit is not None:
            out["alpha_B_noise"] = bc.noise_fit.params["alpha_B"]
    if bt := results.get("backtest"):
        e = bt.errors.set_index("law")
        # The headline is the product's own method, the law chosen inside the cheaper runs; Kaplan's form where too
        # few runs lie below the largest steps for a rollout to score any candidate.
        head = "auto" if "auto" in e.index else "kaplan_nd" if "kaplan_nd" in e.index else None
        if head is not None:
            out["backtest_max_error"] = float(e.loc[head, "max_error"])
            out["backtest_mean_error"] = float(e.loc[head, "mean_error"])
        if "kaplan_nd" in e.index:
            out["backtest_max_error_kaplan_nd"] = float(e.loc["kaplan_nd", "max_error"])
        if "chinchilla" in e.index:
            out["backtest_max_error_chinchilla"] = float(e.loc["chinchilla", "max_error"])
    if se := results.get("sample efficiency"):
        out["sample_efficiency_gain"] = se.gain()
    if sn := results.get("seed noise"):  # run-to-run spread of a seeds design (study.noise)
        out["noise_sd_log"] = sn.sd_log
    return out


def _flagged(value: str, reasons: list[str]) -> str:
    """A table cell: the value, or the value marked with why it cannot be trusted (the laws' warnings)."""
    short = findings({"message": r} for r in reasons)  # the finding; the fix is in fit.json and the CLI
    return value if not reasons else FLAG + f"{value} ⚠ " + "; ".join(html_escape(r) for r in short)


def _constants_table(results: dict[str, Any]) -> Table | None:
    rows = []
    split = disagreements(results)
    for name in ("L(N)", "L(D)", "L(N, D)", "L(C)", "L(N, S)", "B_crit", "per-position"):
        a = results.get(name)
        if a is None:
            continue
        for c in a.constants():
            flags = c.flags + [d.flag(name) for d in split if d.involves(name, c.name) and c.law == name]
            rows.append([c.law, c.name, _flagged(fmt(c.value), flags), f"[{fmt(c.low)}, {fmt(c.high)}]",
                         fmt(c.paper), c.source, c.unit])
    if not rows:
        return None
    return Table("Fitted constants beside the papers'", ["law", "constant", "fitted", "95% interval", "paper",
                                                        "paper source", "unit"], rows,
                 CONSTANTS_NOTE + " A flagged value (⚠) carries the fit's warning: an interval at a bound, an "
                 "unidentified parameter, or a constant the data cannot support.")


def _backtest_table(bt: an.Backtest | None) -> Table | None:
    if bt is None:
        return None
    rows = [[f"auto ({bt.chosen()})" if r.law == "auto" and bt.chosen() else r.law, str(r.n_train), str(r.n_test),
             pct(r.max_error), pct(r.mean_error)] for r in bt.errors.itertuples()]
    return Table("Backtest: fit on the cheapest two thirds of runs, predict the rest",
                 ["law", "runs fitted", "runs predicted", "max |error|", "mean |error|"], rows,
                 "Runs are ordered by training compute C (an IsoFLOP budget's runs all on one side); D = tokens "
                 "processed; errors are relative to the observed final loss. auto: the law --law auto chose by rollout "
                 "cross-validation inside the fitted runs only.")


@dataclass(frozen=True)
class Allocation:
    """One recommended run of the report's allocation table: a law's plan at one budget, and its doubts."""

    law: str
    """Which law planned it (Chinchilla approach 3, Kaplan L(N, D), Kaplan App. B)."""
    plan: Plan
    flags: list[str]
    """Why its predicted loss may not hold: its fit's findings, and how far the plan extrapolates past a decade."""

    def to_dict(self) -> dict[str, Any]:
        p = self.plan
        return {"C": p.budget, "law": self.law, "N": p.n_params, "D": p.tokens, "tokens_per_param": p.tokens_per_param,
                "batch_tokens": p.batch_tokens, "steps": p.steps, "loss": p.loss, "loss_interval": p.loss_interval,
                "N_interval": p.n_params_interval, "decades_beyond": p.decades_beyond, "warnings": p.warnings}


def allocations(results: dict[str, Any], runs: pd.DataFrame) -> tuple[list[Allocation], dict[str, str]]:
    """The compute-optimal run by each of the study's planning laws at its largest budget and at 10x and 100x it,
    with the plan's interval on the loss and its warnings (laws.plan); and the plans refused, by law, with why."""
    bc = results.get("B_crit")
    bcrit = bc.law if bc is not None else None
    fits = []  # (label, fit)
    if (nd := results.get("L(N, D)")) is not None:
        if nd.chinchilla is not None:
            fits.append(("Chinchilla approach 3 (E + A/N^α + B/D^β)", nd.chinchilla))
        fits.append(("Kaplan L(N, D)", nd.fit))
    if (lc := results.get("L(N, S)")) is not None and bcrit is not None and lc.adjusted:
        fits.append(("Kaplan App. B (L(N, S) + B_crit)", lc.fit))
    laws = [(label, fit, planning_law(fit, "this study", bcrit)) for label, fit in fits]
    top = float(runs["C"].max())
    out, refused = [], {}
    for budget in (top, 10 * top, 100 * top):
        for label, fit, law in laws:
            try:
                p = plan_budget(law, budget)
            except ScalinglabError as e:  # nonsense (fewer than 0.1 tokens per parameter, a batch above the tokens)
                refused.setdefault(label, str(e))
                continue
            own = [w for w in p.warnings if w["kind"] == "extrapolation"]  # the rest relays the fit's, said from it
            out.append(Allocation(label, p, findings(fit.warnings) + findings(own)))
    return out, refused


def _allocation_table(rows: list[Allocation], refused: dict[str, str]) -> Table | None:
    """The recommended runs of :func:`allocations` and the plans it refused."""
    if not rows and not refused:
        return None

    def loss(p: Plan) -> str:
        return fmt(p.loss) + (f" [{fmt(p.loss_interval[0])}, {fmt(p.loss_interval[1])}]" if p.loss_interval else "")

    cells = [[fmt(a.plan.budget), fmt(a.plan.budget / PF_DAY), a.law, fmt(a.plan.n_params), fmt(a.plan.tokens),
              fmt(a.plan.tokens_per_param), fmt(a.plan.batch_tokens), fmt(a.plan.steps), _flagged(loss(a.plan), a.flags)]
             for a in rows]
    return Table("Recommended allocation", ["C (FLOPs)", "C (PF-days)", "law", "N (non-embedding)", "tokens D",
                                            "D/N", "batch (tokens)", "steps", "predicted loss [95% interval]"], cells,
                 "Budgets: the study's largest run, 10x and 100x it. Batch = B_crit at the predicted loss when "
                 "B_crit was measured. Kaplan's App. B trains at B_crit, spending C = 2 C_min. A predicted loss "
                 "carries what its law's fit warned and how far past the fitted runs the plan reaches (⚠): a plan "
                 "rests on those parameters. `scalinglab report --json` gives these rows under \"allocations\"."
                 + "".join(f" Not planned by {law}: {html_escape(why)}" for law, why in refused.items()))


def _transfer_table(tr: an.Transfer | None) -> Table | None:
    if tr is None:
        return None
    rows = [[r.set, fmt(r.offset), fmt(r.offset_largest), fmt(r.slope), fmt(r.intercept)]
            for r in tr.offsets.itertuples()]
    return Table("Transfer: loss on other distributions", ["eval set", "mean offset (nats)", "offset at largest N",
                                                           "slope", "intercept"], rows,
                 "other loss ≈ slope × validation loss + intercept over the finished runs (Kaplan Fig 8: "
                 "a nearly constant offset, slowly growing).")
