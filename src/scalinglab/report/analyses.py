"""Kaplan et al. 2020's analyses of one collected study, one function per analysis.

Each function takes the tidy tables of ``scalinglab.study.collect`` (``runs``: one row per run;
``curves``: one row per evaluation; docs/contracts.md) and returns a plain frozen dataclass holding
the points it used and the laws it fitted, or raises :class:`~scalinglab.errors.DataError` saying what
the study lacks (the report turns that into a visible note). Fitting, frontiers and critical batches
come from :mod:`scalinglab.laws`; this module only chooses which runs answer which question
(spec §1, §4):

- which runs are "converged enough" for L(N), early-stopped for L(D) and L(N, D), on the infinite
  data frontier for L(C), and which are hyper-parameter scans left out of every law;
- the batch-size adjustment to C_min and S_min (Kaplan eqs 5.4, 5.5) once B_crit(L) is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.constants import (
    HOFFMANN_APPROACH3,
    KAPLAN_FIG14_FIXED_BATCH,
    KAPLAN_FIG20_LARGEST,
    KAPLAN_TABLE2,
    KAPLAN_TABLE3,
    KAPLAN_TABLE5,
    KAPLAN_TABLE6,
    PF_DAY,
)
from scalinglab.errors import DataError, FitError, ScalinglabError
from scalinglab.laws.auto import axis_steps
from scalinglab.laws.backtest import Split
from scalinglab.laws.backtest import backtest as laws_backtest
from scalinglab.laws.batch import (
    BcritLaw,
    CriticalBatch,
    adjusted_compute,
    adjusted_steps,
    bcrit_table,
    critical_batch_scan,
    fit_bcrit_law,
    noise_scale_by_loss,
    steps_to_loss,
)
from scalinglab.laws.diagnostics import warning
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.frontier import (
    Allocation,
    Frontier,
    IsoFlopResult,
    bracket_envelope,
    brackets_optimum,
    chinchilla_allocation,
    envelope_bootstrap,
    envelope_frontier,
    group_budgets,
    isoflop_frontier,
    resampled_runs,
    running_minimum,
)
from scalinglab.laws.tables import Table
from scalinglab.study.selection import (  # noqa: F401  (re-exported for the figures)
    MIN_LAYERS,
    SCAN_DESIGNS,
    curves_of,
    data_limited,
    dataset_size,
    envelope_curves,
    finished,
    groups_in,
    in_design,
    kind,
    kinds,
    law_runs,
    select_for_law,
)

BOOTSTRAP = 100
"""Bootstrap resamples for the intervals of the constants of one-variable laws (fast to refit)."""

JOINT_BOOTSTRAP = 100
"""Bootstrap resamples for the joint laws L(N, D) (both forms) and L(N, S). With 20 a 95% interval's ends
are next to the most extreme refits (the demo's approach-3 a = β/(α + β): [0.325, 0.909] from 20, [0.248,
0.912] from 100); 100 cost the demo's report about 2 s more."""

ENVELOPE_BOOTSTRAP = 200
"""Resamples of the runs for the interval of N_opt ∝ C^a by the envelope, the report's approach-1 answer."""


@dataclass(frozen=True)
class Constant:
    """One fitted constant beside the paper's value (Kaplan Tables 2, 3, 5, 6; Hoffmann §3)."""

    law: str
    name: str
    value: float
    low: float
    high: float
    paper: float | None
    source: str
    unit: str = ""
    flags: list[str] = field(default_factory=list)
    """Why the value cannot be taken at face value (the fit's warnings on this parameter), empty when fine."""


def _flags(fit: FitResult, name: str) -> list[str]:
    """The fit's warnings about ``name`` (laws.diagnostics), and why an interval is missing when it is."""
    flags = [w["message"] for w in getattr(fit, "warnings", []) or [] if w.get("param") == name]
    low, high = fit.intervals.get(name, (float("nan"), float("nan")))
    if not flags and not (np.isfinite(low) and np.isfinite(high)):
        flags.append("no interval: the fit was not bootstrapped" if fit.bootstrap is None
                     else "no interval: too few bootstrap refits converged")
    return flags


def _constants(law: str, fit: FitResult, paper: dict[str, tuple[float, str]], scale: dict[str, float] | None = None,
               unit: dict[str, str] | None = None) -> list[Constant]:
    """Rows for every parameter of ``fit`` (scaled for display, e.g. FLOPs -> PF-days) with the paper's values."""
    rows = []
    for name, value in fit.params.items():
        s = (scale or {}).get(name, 1.0)
        low, high = fit.intervals.get(name, (float("nan"), float("nan")))
        ref, source = paper.get(name, (None, ""))
        rows.append(Constant(law, name, value / s, low / s, high / s, ref, source, (unit or {}).get(name, ""),
                             _flags(fit, name)))
    return rows


def _paper(table: dict[str, float], source: str, *names: str) -> dict[str, tuple[float, str]]:
    """The published values of ``names`` (default: all) from a table of scalinglab.constants, with their source."""
    return {n: (table[n], source) for n in names or table}


# --------------------------------------------------------------------------------------------------
# Selecting runs


def _need(df: pd.DataFrame, n: int, what: str, fix: str) -> None:
    if len(df) < n:
        raise DataError(f"{what} needs at least {n} runs (has {len(df)}); {fix}")


# --------------------------------------------------------------------------------------------------
# L(N), L(D), L(N, D) and overfitting


@dataclass(frozen=True)
class LossVsN:
    """Kaplan eq 1.1 on the best (longest-trained) run of each model size: Fig 1 right."""

    points: pd.DataFrame
    """One row per model size: ``N``, ``N_total``, ``n_layer``, ``loss``, ``run_id``."""
    fit: FitResult
    selection: str = ""
    """Which runs the law fits and why (study.selection.select_for_law)."""

    def constants(self) -> list[Constant]:
        return _constants("L(N)", self.fit, _paper(KAPLAN_TABLE5, "Kaplan Table 5", "alpha_N", "N_c"),
                          unit={"N_c": "params"})


def loss_vs_n(runs: pd.DataFrame) -> LossVsN:
    """L(N) = (N_c/N)^α_N on runs with enough data: per size, the lowest final loss of an unlimited run.

    Kaplan fits converged models; a ladder at fixed tokens per parameter is not converged, so the
    lowest loss per N (the longest run of that size) is the closest this study has.
    """
    best, selection = select_for_law(runs, "kaplan_n")
    _need(best, 3, "L(N)", "train at least 3 model sizes with enough data (a ladder design).")
    points = best[["run_id", "N", "N_total", "n_layer", "loss"]].reset_index(drop=True)
    return LossVsN(points, fit_law("kaplan_n", points, bootstrap=BOOTSTRAP), selection)


@dataclass(frozen=True)
class LossVsD:
    """Kaplan eq 1.2 on early-stopped runs of one model over dataset sizes: Fig 1 middle."""

    points: pd.DataFrame
    """One row per dataset size: ``D`` (distinct tokens), ``loss`` (early-stopped), ``N``, ``epochs``."""
    fit: FitResult
    n_params: float
    selection: str = ""
    """Which runs the law fits and why (study.selection.select_for_law)."""

    def constants(self) -> list[Constant]:
        return _constants("L(D)", self.fit, _paper(KAPLAN_TABLE5, "Kaplan Table 5", "alpha_D", "D_c"),
                          unit={"D_c": "tokens"})


def loss_vs_d(runs: pd.DataFrame) -> LossVsD:
    """L(D) = (D_c/D)^α_D from the largest model of the dataset-size sweep, early-stopped (best) loss."""
    df, selection = select_for_law(runs, "kaplan_d")
    if df.empty:
        raise DataError("L(D) needs data-limited runs; add a dataset_size design to the study.")
    _need(df, 3, "L(D)", "sweep at least 3 dataset sizes on one model (a dataset_size design).")
    points = pd.DataFrame(
        {"run_id": df["run_id"], "D": df["D"], "loss": df["loss"], "N": df["N"], "epochs": df["epochs"]}
    ).reset_index(drop=True)
    return LossVsD(points, fit_law("kaplan_d", points, bootstrap=BOOTSTRAP), float(df["N"].iloc[0]), selection)


@dataclass(frozen=True)
class LossVsND:
    """Kaplan eq 1.5 (and Hoffmann's E + A/N^α + B/D^β) on early-stopped runs: Figs 4 left and 9."""

    points: pd.DataFrame
    """``N``, ``D`` (distinct tokens), ``C`` (compute spent), ``loss`` (early-stopped), ``limited``, ``delta`` = L/L(N,∞) - 1,
    ``x`` = N^(α_N/α_D)/D (Kaplan eq 4.3's collapse variable)."""
    fit: FitResult
    """Kaplan's L(N, D)."""
    chinchilla: FitResult | None
    """Hoffmann's parametric form on the same runs (None when it could not be fitted)."""
    selection: str = ""
    """Which runs the laws fit and why (study.selection.select_for_law)."""

    def overfitting(self, x: np.ndarray) -> np.ndarray:
        """Kaplan eq 4.3 as a function of x = N^(α_N/α_D)/D: δL = (1 + x D_c/N_c^(α_N/α_D))^α_D - 1."""
        p = self.fit.params
        ratio = p["alpha_N"] / p["alpha_D"]
        return (1 + np.asarray(x) * p["D_c"] / p["N_c"] ** ratio) ** p["alpha_D"] - 1

    def constants(self) -> list[Constant]:
        rows = _constants(
            "L(N, D)",
            self.fit,
            _paper(KAPLAN_TABLE2, "Kaplan Table 2"),
            unit={"N_c": "params", "D_c": "tokens"},
        )
        if self.chinchilla is not None:
            rows += _constants(
                "L(N, D) Chinchilla form",
                self.chinchilla,
                _paper(HOFFMANN_APPROACH3, "Hoffmann §3.3 (total params, MassiveText)"),
            )
        return rows


def _chinchilla(points: pd.DataFrame) -> FitResult | None:
    """Hoffmann's form on the same runs, or None when it degenerates (an exponent at 0: no D or N term)."""
    try:
        fit = fit_law("chinchilla", points, bootstrap=JOINT_BOOTSTRAP)
    except ScalinglabError:
        return None
    return fit if min(fit.params["alpha"], fit.params["beta"]) > 1e-3 else None


def loss_vs_nd(runs: pd.DataFrame) -> LossVsND:
    """L(N, D) on every run on the recipe, D = distinct tokens, loss = early-stopped (best) loss."""
    df, selection = select_for_law(runs, "kaplan_nd")  # D = distinct tokens, loss = early-stopped
    df = df.assign(limited=data_limited(runs).reindex(df.index))  # on the table's D: tokens processed
    points = df[["run_id", "N", "D", "C", "loss", "limited"]].reset_index(drop=True)
    _need(points, 5, "L(N, D)", "train a ladder plus a dataset_size sweep (or an nd_grid).")
    if points["N"].nunique() < 2 or points["D"].nunique() < 3:
        raise DataError("L(N, D) needs runs at 2 or more model sizes and 3 or more dataset sizes.")
    fit = fit_law("kaplan_nd", points, bootstrap=JOINT_BOOTSTRAP)
    chin = _chinchilla(points)
    p = fit.params
    converged = (p["N_c"] / points["N"]) ** p["alpha_N"]  # L(N, ∞) from the fit, eq 4.2's denominator
    points = points.assign(
        delta=points["loss"] / converged - 1, x=points["N"] ** (p["alpha_N"] / p["alpha_D"]) / points["D"]
    )
    return LossVsND(points, fit, chin, selection)


# --------------------------------------------------------------------------------------------------
# Critical batch size: batch scans and the online noise scale


@dataclass(frozen=True)
class CriticalBatchSize:
    """Kaplan Fig 18 (steps vs tokens to reach each loss, eq 5.1) and Fig 10 (B_crit(L), eq 1.4)."""

    scan: pd.DataFrame
    """One row per (model, run, level): ``N``, ``batch_tokens``, ``level`` (smoothed training loss),
    ``steps``, ``tokens``."""
    levels: pd.DataFrame
    """One row per (model, level): ``N``, ``loss``, ``s_min``, ``e_min``, ``b_crit``, ``n_runs``."""
    fit: FitResult
    """Kaplan eq 1.4 fitted to ``levels`` (form ``bcrit``: target B_crit, input loss)."""
    noise: pd.DataFrame
    """The online B_simple per loss bin (``loss``, ``b_simple``, ``q25``, ``q75``, ``n``); may be empty."""
    noise_fit: FitResult | None = None
    """Eq 1.4's form fitted to the B_simple bins, to compare its exponent with the scans' (Kaplan Fig 10)."""

    @property
    def law(self) -> BcritLaw:
        return BcritLaw(B_star=self.fit.params["B_star"], alpha_B=self.fit.params["alpha_B"])

    def noise_ratio(self) -> float:
        """Median of B_simple / B_crit(L) over the noise-scale bins (nan without noise-scale data)."""
        if self.noise.empty:
            return float("nan")
        return float(np.median(self.noise["b_simple"] / self.law(self.noise["loss"])))

    def constants(self) -> list[Constant]:
        paper = _paper(KAPLAN_TABLE5, "Kaplan Table 5", "alpha_B", "B_star")
        rows = _constants("B_crit(L)", self.fit, paper, unit={"B_star": "tokens"})
        if self.noise_fit is not None:
            rows += _constants("B_simple(L), noise scale", self.noise_fit, paper, unit={"B_star": "tokens"})
        return rows


def smooth_train_loss(metrics: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """Per run, the training loss smoothed by a centred rolling mean of ``window`` logged steps.

    Hoffmann et al. smooth learning curves with a window of 10 steps (App D.1); the raw per-step
    loss is too noisy to read off the step at which a loss is first reached.
    """
    return metrics.sort_values(["run_id", "step"]).assign(
        loss=lambda d: d.groupby("run_id")["train_loss"].transform(
            lambda x: x.rolling(window, center=True, min_periods=1).mean()
        )
    )


def _shared_levels(curves: pd.DataFrame, num: int = 8) -> np.ndarray:
    """Loss levels inside the range every run of a scan covers: below the lowest of the runs' highest
    losses (after warmup) and above the highest of their final ones.

    Runs of a scan process the same tokens in different numbers of steps, so "a tenth of the way in"
    means different losses for each; the shared range is what eq 5.1 can be fitted on.
    """
    per_run = curves.groupby("run_id")["loss"]
    hi, lo = float(per_run.max().min()), float(per_run.min().max())
    if hi <= lo:
        raise DataError("the batch sizes of the scan share no range of losses; train every batch size longer.")
    return np.geomspace(hi, lo, num + 2)[1:-1]


def critical_batch(runs: pd.DataFrame, metrics: pd.DataFrame) -> CriticalBatchSize:
    """B_crit at each training loss from every batch-size scan (one per model size), then B_crit(L).

    ``metrics`` holds the runs' metrics.jsonl records (``run_id``, ``step``, ``train_loss`` and, from
    the optional trainer callback, ``noise_b_simple``). The scans are read on the smoothed training
    loss, which is logged far more often than the validation loss (Kaplan Fig 10 plots the training
    loss too); the noise scale is summarised per loss bin for comparison (Kaplan footnote 5).
    """
    scans = finished(runs)
    scans = scans[in_design(scans, "batch_scan")]
    if scans.empty:
        raise DataError("no batch-size scan in this study; add a batch_scan design to measure B_crit.")
    curves = smooth_train_loss(metrics[metrics["run_id"].isin(scans["run_id"])])
    curves = curves.merge(scans[["run_id", "N", "batch_tokens"]], on="run_id")
    curves = curves[curves["step"] >= 0.02 * curves.groupby("run_id")["step"].transform("max")]  # warmup transient
    scan_rows, level_rows = [], []
    for n, group in curves.groupby("N"):
        found: list[CriticalBatch] = critical_batch_scan(group, levels=_shared_levels(group))
        level_rows.append(bcrit_table(found).assign(N=n, n_runs=[cb.n_runs for cb in found]))
        levels = np.array([cb.loss for cb in found])
        for run_id, rc in group.groupby("run_id"):
            b = float(rc["batch_tokens"].iloc[0])
            s = steps_to_loss(rc["step"].to_numpy(float), rc["loss"].to_numpy(float), levels)
            scan_rows += [{"N": n, "run_id": run_id, "batch_tokens": b, "level": lv, "steps": st, "tokens": st * b}
                          for lv, st in zip(levels, s) if np.isfinite(st)]
    levels = pd.concat(level_rows, ignore_index=True)
    # least squares (a Huber threshold far above the residuals): the scan's B_crit are noisy, and the
    # near-L1 loss of delta = 1e-3 pins a two-parameter line to two of the points
    fit = fit_bcrit_law(levels, bootstrap=BOOTSTRAP, delta=10.0)
    levels = levels.rename(columns={"B_crit": "b_crit", "S_min": "s_min", "E_min": "e_min"})
    try:
        noise = noise_scale_by_loss(metrics)
        noise_fit = fit_bcrit_law(noise.rename(columns={"b_simple": "B_crit"}), bootstrap=BOOTSTRAP, delta=10.0)
    except (DataError, FitError):
        noise, noise_fit = pd.DataFrame(), None
    return CriticalBatchSize(pd.DataFrame(scan_rows), levels, fit, noise, noise_fit)


def _bcrit_at(bcrit: CriticalBatchSize | None, loss: pd.Series) -> np.ndarray | None:
    return None if bcrit is None else bcrit.law(loss.to_numpy(float))


# --------------------------------------------------------------------------------------------------
# The compute frontier, L(C), L(C_min) and the compute-optimal allocation


@dataclass(frozen=True)
class ComputeFrontier:
    """Figs 1 left, 13 and 14: learning curves against compute, their envelope and the optimal N(C), S(C)."""

    curves: pd.DataFrame
    """Evaluation rows of the infinite-data runs: ``run_id``, ``N``, ``C``, ``loss``, ``step``, ``C_min``,
    ``S_min`` (the last two nan without B_crit)."""
    frontier: Frontier
    """Chinchilla approach 1 / Kaplan's envelope over fixed-batch compute C."""
    steps: np.ndarray
    """Steps at the frontier point (tokens over the winning run's batch), aligned with ``frontier.compute``."""
    fit: FitResult
    """L(C) = (C_c/C)^α_C through the frontier (C in FLOPs)."""
    frontier_min: Frontier | None = None
    """The envelope over C_min (eq 5.5), when B_crit(L) is known."""
    s_min: np.ndarray | None = None
    """S_min at the C_min frontier points (eq 5.4)."""
    fit_min: FitResult | None = None
    """L(C_min) = (C_c_min/C_min)^α_C_min."""
    envelope: Frontier | None = None
    """The whole envelope (running minimum over C) that ``frontier`` keeps the bracketed part of."""
    bracketed: np.ndarray | None = None
    """Per point of ``envelope``: True where a smaller and a larger size both reach that compute, so the
    optimum lies inside the ladder; outside it N_opt is only where the ladder starts or ends."""
    note: str = ""
    """What was left out of the N_opt(C) law and why (empty when every point is bracketed)."""
    interval: tuple[float, float] | None = None
    """Bootstrap interval (runs resampled, laws.frontier.envelope_bootstrap) of ``frontier.a``, the
    exponent of N_opt(C) as the frontier estimates it (approach 1's answer), or None when no resample can
    be fitted. Not a standard error: the envelope's 1500 points are neighbours on a few curves."""
    interval_note: str = ""
    """Why ``interval`` is None: the bootstrap's refusal, which names the data that would fix it."""
    interval_min: tuple[float, float] | None = None
    """The same interval for ``frontier_min.a``, the exponent of N_opt(C_min)."""

    @property
    def measured(self) -> bool:
        """True when the ladder brackets the optimum at 2 or more sizes, so N_opt ∝ C^a is a measurement."""
        if self.bracketed is None or self.envelope is None:
            return True
        return brackets_optimum(self.envelope, self.bracketed)

    def constants(self) -> list[Constant]:
        pf = {"C_c": PF_DAY, "C_c_min": PF_DAY}
        unit = {"C_c": "PF-days", "C_c_min": "PF-days"}
        rows = _constants("L(C)", self.fit, _paper(KAPLAN_TABLE5, "Kaplan Table 5", "alpha_C", "C_c"), pf, unit)
        if self.fit_min is not None:
            rows += _constants("L(C_min)", self.fit_min,
                               _paper(KAPLAN_TABLE5, "Kaplan Table 5", "alpha_C_min", "C_c_min"), pf, unit)
        f = self.frontier_min or self.frontier
        label = "N_opt ∝ C_min^p" if self.frontier_min is not None else "N_opt ∝ C^p"
        paper = KAPLAN_TABLE6["p_N"] if self.frontier_min is not None else KAPLAN_FIG14_FIXED_BATCH  # Kaplan Fig 14 left
        lo, hi = (self.interval_min if self.frontier_min is not None else self.interval) or (np.nan, np.nan)
        rows.append(Constant("allocation", label, f.a, lo, hi, paper, "Kaplan Fig 14"))
        return rows


def _sample(frontier: Frontier, num: int = 40) -> pd.DataFrame:
    """``num`` log-spaced points of an envelope (its 1500 points are strongly correlated)."""
    idx = np.unique(np.linspace(0, len(frontier.compute) - 1, num).round().astype(int))
    return pd.DataFrame({"C": frontier.compute[idx], "C_min": frontier.compute[idx], "loss": frontier.loss[idx]})


def compute_frontier(runs: pd.DataFrame, curves: pd.DataFrame, bcrit: CriticalBatchSize | None = None) -> ComputeFrontier:
    """The envelope of the learning curves of the infinite-data runs, L(C) through it, and N_opt(C), S(C).

    With B_crit(L) each evaluation is also moved to C_min = C/(1 + B/B_crit(L)) (eq 5.5) and
    S_min = S/(1 + B_crit(L)/B) (eq 5.4) and the envelope is taken again (Kaplan Figs 13, 14).
    """
    c = envelope_curves(runs, curves)
    if c["run_id"].nunique() < 3:
        raise DataError("the compute frontier needs learning curves of at least 3 model sizes (a ladder design).")
    frontier, envelope, ok, note = bracket_envelope(c, envelope_frontier(c))
    steps = _frontier_steps(c, frontier)
    fit = _envelope_law("kaplan_c", c, envelope)  # L(C) is the envelope: no bracketing needed
    interval, interval_note = _allocation_interval(c, brackets_optimum(envelope, ok), ENVELOPE_BOOTSTRAP)
    b = _bcrit_at(bcrit, c["loss"])
    if b is None:
        return ComputeFrontier(c.assign(C_min=np.nan, S_min=np.nan), frontier, steps, fit, envelope=envelope, bracketed=ok,
                               note=note, interval=interval, interval_note=interval_note)
    c = c.assign(C_min=adjusted_compute(c["C"], c["batch_tokens"], b), S_min=adjusted_steps(c["step"], c["batch_tokens"], b))
    cm = c.assign(C=c["C_min"], D=c["C_min"] / (6 * c["N"]))
    frontier_min, envelope_min, ok_min, _ = bracket_envelope(cm, envelope_frontier(cm))
    s_min = _frontier_steps(c.assign(C=c["C_min"], step=c["S_min"]), frontier_min)
    fit_min = _envelope_law("kaplan_cmin", cm, envelope_min)
    interval_min, _ = _allocation_interval(cm, brackets_optimum(envelope_min, ok_min), BOOTSTRAP)
    return ComputeFrontier(c, frontier, steps, fit, frontier_min, s_min, fit_min, envelope, ok, note,
                           interval, interval_note, interval_min)


def _envelope_law(name: str, curves: pd.DataFrame, envelope: Frontier) -> FitResult:
    """L(C) (or L(C_min)) through ``envelope``'s points, its intervals from refits on the envelopes of the
    runs resampled: the envelope's points are neighbours on a few curves, so resampling them as a table's
    rows gave intervals far too narrow (the demo's α_C: [0.0662, 0.0711] so, [0.0637, 0.0748] by run)."""
    fit = fit_law(name, _sample(envelope), bootstrap=0)
    refits, dropped = [], 0
    for sample in resampled_runs(curves, BOOTSTRAP):
        try:
            refit = fit_law(name, _sample(running_minimum(envelope_frontier(sample, 200))), calibrate=False)
        except ScalinglabError:
            dropped += 1
            continue
        if refit.converged:
            refits.append(refit.params)
        else:
            dropped += 1
    fit.add_bootstrap(BOOTSTRAP, dropped, Table({p: np.array([r[p] for r in refits]) for p in fit.form.params}))
    return fit


def _allocation_interval(curves: pd.DataFrame, bracketed: bool, k: int) -> tuple[tuple[float, float] | None, str]:
    """The bootstrap interval of an envelope's exponent as the frontier estimates it, or None and why not."""
    try:
        return envelope_bootstrap(curves, k=k, bracketed=bracketed), ""
    except FitError as err:
        return None, str(err)


def _frontier_steps(c: pd.DataFrame, frontier: Frontier) -> np.ndarray:
    """Steps of the winning curve at each frontier budget (interpolated in log C)."""
    out = np.full(len(frontier.compute), np.nan)
    for n, g in c.groupby("N"):
        g = g.sort_values("C")
        where = frontier.n_opt == n
        out[where] = np.interp(np.log(frontier.compute[where]), np.log(g["C"]), g["step"])
    return out


# --------------------------------------------------------------------------------------------------
# L(N, S): learning curves


@dataclass(frozen=True)
class LearningCurves:
    """Kaplan eq 1.6 on learning curves after warmup, S adjusted to S_min when B_crit is known: Figs 4, 11.

    Each run weighs 1 in the fit and the bootstrap resamples runs: its evaluations share its noise.
    """

    points: pd.DataFrame
    """``run_id``, ``step``, ``N``, ``S`` (S_min or raw steps), ``loss``, ``C``, ``batch_tokens``."""
    fit: FitResult
    bcrit: BcritLaw | None = None
    """B_crit(L) used to turn steps into S_min (eq 5.4); None when the study has no batch scan."""

    @property
    def adjusted(self) -> bool:
        """True when S is S_min (eq 5.4), False when raw steps (no batch scan)."""
        return self.bcrit is not None

    def loss_at(self, n: np.ndarray, steps: np.ndarray, batch: float) -> np.ndarray:
        """L(N, S_min) after ``steps`` steps at ``batch`` tokens per step.

        S_min = S/(1 + B_crit(L)/B) depends on the loss itself; L - L(N, S_min(L)) increases with L,
        so its root is found by bisection (in log L, between 0.1 and 100 nats).
        """
        n, steps = np.asarray(n, dtype=float), np.asarray(steps, dtype=float)
        if self.bcrit is None:
            return self.fit.predict(pd.DataFrame({"N": n, "S": steps}))
        lo, hi = np.full(n.shape, np.log(0.1)), np.full(n.shape, np.log(100.0))
        for _ in range(60):
            mid = (lo + hi) / 2
            s_min = adjusted_steps(steps, batch, self.bcrit(np.exp(mid)))
            above = np.exp(mid) > self.fit.predict(pd.DataFrame({"N": n, "S": s_min}))
            hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
        return np.exp((lo + hi) / 2)

    def constants(self) -> list[Constant]:
        return _constants("L(N, S)", self.fit,
                          _paper(KAPLAN_TABLE3, "Kaplan Table 3"),
                          unit={"N_c": "params", "S_c": "steps"})


def learning_curve_points(runs: pd.DataFrame, curves: pd.DataFrame, bcrit: BcritLaw | None = None,
                          skip_fraction: float = 0.1) -> pd.DataFrame:
    """The rows L(N, S) is fitted on: the evaluations of ``runs`` (selected for ``kaplan_ns``) past the first
    ``skip_fraction`` of each run's steps, S = S_min (eq 5.4) when ``bcrit`` is given, else the raw steps.

    Columns ``run_id``, ``step``, ``N``, ``S``, ``loss``, ``C``, ``batch_tokens``. Kaplan fits every step after
    warmup (§5.2); the early transient is dropped (spec §6 item 14). The report and ``scalinglab fit
    STUDY --law kaplan_ns`` both fit these rows.
    """
    c = curves_of(curves, runs)
    c = c[c["step"] >= skip_fraction * c.groupby("run_id")["step"].transform("max")]
    c = c[c["step"] > 0]
    if c["run_id"].nunique() < 2:
        raise DataError("L(N, S) needs the learning curves of at least 2 model sizes (a ladder design).")
    s = c["step"].to_numpy(float) if bcrit is None else adjusted_steps(c["step"], c["batch_tokens"], bcrit(c["loss"].to_numpy(float)))
    points = pd.DataFrame({"run_id": c["run_id"], "step": c["step"], "N": c["N"], "S": s, "loss": c["loss"], "C": c["C"],
                           "batch_tokens": c["batch_tokens"]}).reset_index(drop=True)
    if bcrit is None:  # Kaplan's S_c, alpha_S are of S_min: raw steps mix in each run's batch size; fit_law passes it on
        points.attrs["warnings"] = [warning(
            "steps_not_adjusted", "S_c",
            "S is the steps as trained, not S_min = S/(1 + B_crit(L)/B) (Kaplan eq 5.4): S_c and alpha_S depend on "
            "the runs' batch sizes and are not Kaplan's; add a batch_scan design to the study (and keep its run "
            "directories) to measure B_crit(L).",
        )]  # fmt: skip
    return points


def learning_curves(runs: pd.DataFrame, curves: pd.DataFrame, bcrit: CriticalBatchSize | None = None,
                    skip_fraction: float = 0.1) -> LearningCurves:
    """L(N, S) = (N_c/N)^α_N + (S_c/S_min)^α_S on the infinite-data curves (:func:`learning_curve_points`)."""
    df, _ = select_for_law(runs, "kaplan_ns")  # no cooldown branch: its curve is a decay only
    law = None if bcrit is None else bcrit.law
    points = learning_curve_points(df, curves, law, skip_fraction)
    # A run's points share its noise and its schedule: each run weighs 1 and the bootstrap resamples runs
    # (a row bootstrap treats one run's 3 correlated points as 3 independent ones).
    fit = fit_law("kaplan_ns", points, bootstrap=JOINT_BOOTSTRAP, runs="run_id")
    return LearningCurves(points, fit, law)


# --------------------------------------------------------------------------------------------------
# Sample efficiency


@dataclass(frozen=True)
class SampleEfficiency:
    """Kaplan Figs 2 and 19: tokens (and steps) each model size needs to reach fixed losses."""

    curves: pd.DataFrame
    """Evaluation rows of the infinite-data runs: ``run_id``, ``N``, ``tokens``, ``step``, ``loss``."""
    reach: pd.DataFrame
    """One row per (model, level): ``N``, ``level``, ``tokens``, ``steps``, ``e_min``, ``s_min``
    (the last two adjusted with B_crit, else equal to tokens and steps)."""

    def gain(self) -> float:
        """Smallest-to-largest model ratio of the tokens needed to reach the lowest level both reach."""
        r = self.reach.dropna(subset=["tokens"])
        for level in sorted(r["level"]):
            at = r[r["level"] == level].sort_values("N")
            if len(at) >= 2:
                return float(at["e_min"].iloc[0] / at["e_min"].iloc[-1])
        return float("nan")


def sample_efficiency(runs: pd.DataFrame, curves: pd.DataFrame, bcrit: CriticalBatchSize | None = None,
                      num_levels: int = 4) -> SampleEfficiency:
    """Tokens and steps to first reach ``num_levels`` losses, per model size (the best run of each size)."""
    df = law_runs(runs)
    df = df[~data_limited(df)]
    df = df.loc[df.groupby("N")["loss"].idxmin()]
    c = curves_of(curves, df)
    if c["run_id"].nunique() < 3:
        raise DataError("sample efficiency needs learning curves of at least 3 model sizes (a ladder design).")
    finals = df["loss"].to_numpy(float)
    hi = float(np.quantile(finals, 0.9)) * 1.05  # reached by nearly every size
    lo = float(np.sort(finals)[1])  # reached by at least the two largest
    levels = np.geomspace(hi, lo, num_levels)
    rows = []
    for run_id, g in c.groupby("run_id"):
        n, batch = float(g["N"].iloc[0]), float(g["batch_tokens"].iloc[0])
        s = steps_to_loss(g["step"].to_numpy(float), g["loss"].to_numpy(float), levels)
        for level, st in zip(levels, s):
            if not np.isfinite(st):
                continue
            b = None if bcrit is None else float(bcrit.law(level))
            s_min = st if b is None else float(adjusted_steps(st, batch, b))
            e_min = st * batch if b is None else float(adjusted_compute(st * batch, batch, b))
            rows.append({"N": n, "run_id": run_id, "level": level, "steps": st, "tokens": st * batch,
                         "s_min": s_min, "e_min": e_min})
    return SampleEfficiency(c[["run_id", "N", "tokens", "step", "loss"]], pd.DataFrame(rows))


# --------------------------------------------------------------------------------------------------
# Shape and embeddings


@dataclass(frozen=True)
class ShapeInvariance:
    """Kaplan Fig 5: the loss increase over the best shape at (nearly) fixed N, per varied dimension."""

    points: pd.DataFrame
    """``group`` ('aspect_ratio', 'ff_ratio' or 'head_dim'), ``size`` (the target N), ``value`` (the
    ratio), ``N``, ``loss``, ``increase`` (fraction over the group's best, after the L(N) correction)."""


_SHAPE_AXES = {"aspect_ratio": ("d_model", "n_layer"), "ff_ratio": ("d_ff", "d_model"), "head_dim": ("d_model", "n_head")}
"""The shape_scan groups (study.designs.ShapeScan) and the ratio each one varies."""


def shape_invariance(runs: pd.DataFrame, law_n: LossVsN | None = None) -> ShapeInvariance:
    """Per shape-scan group (and target size): each run's loss over the group's best shape.

    Small differences in N are corrected with the L(N) fit, as Kaplan did for Fig 5: the loss is
    multiplied by L(N_ref)/L(N), with N_ref the group's median N.
    """
    df = finished(runs)
    df = df.assign(group=groups_in(df, "shape_scan")).explode("group")  # the default shape counts in each group
    df = df[df["group"].isin(list(_SHAPE_AXES))]
    if df.empty:
        raise DataError("no shape scan in this study; add a shape_scan design to test shape invariance.")
    df = df.assign(d_ff=df["d_ff"].where(df["d_ff"] > 0, 4 * df["d_model"]), size=group_budgets(df["N"], rel_tol=0.5))
    rows = []
    for (group, size), g in df.groupby(["group", "size"]):
        num, den = _SHAPE_AXES[group]
        loss = g["loss"].to_numpy(float)
        if law_n is not None:
            ref = pd.DataFrame({"N": np.full(len(g), size)})
            loss = loss * law_n.fit.predict(ref) / law_n.fit.predict(g[["N"]])
        rows += [{"group": group, "size": float(size), "value": float(v), "N": float(n), "loss": float(lo),
                  "increase": float(lo / loss.min() - 1)} for v, n, lo in zip(g[num] / g[den], g["N"], loss)]
    return ShapeInvariance(pd.DataFrame(rows))


@dataclass(frozen=True)
class EmbeddingCollapse:
    """Kaplan Fig 6: loss against parameters with and without embeddings, by depth."""

    points: pd.DataFrame
    """``N``, ``N_total``, ``n_layer``, ``loss`` (every finished infinite-data run, 1-layer included)."""
    scatter_non_embedding: float
    """RMS relative residual about one power law in N (Kaplan: the trends collapse)."""
    scatter_total: float
    """The same about one power law in N_total (Kaplan: the trends separate by depth)."""


def _power_scatter(x: np.ndarray, y: np.ndarray) -> float:
    coef = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.sqrt(np.mean((np.log(y) - np.polyval(coef, np.log(x))) ** 2)))


def embedding_collapse(runs: pd.DataFrame) -> EmbeddingCollapse:
    """Scatter of the final loss about a power law in N versus in N_total, over the best run per shape."""
    df = finished(runs)
    df = df[~kinds(df).map(lambda ks: ks <= SCAN_DESIGNS)]  # a ladder figure: no scan runs (they move off the recipe)
    df = df[~data_limited(df)]
    df = df.loc[df.groupby(["n_layer", "d_model"])["loss"].idxmin()]
    _need(df, 3, "the embedding comparison", "train at least 3 model shapes with enough data.")
    pts = df[["run_id", "N", "N_total", "n_layer", "loss"]].reset_index(drop=True)
    y = pts["loss"].to_numpy(float)
    return EmbeddingCollapse(pts, _power_scatter(pts["N"].to_numpy(float), y), _power_scatter(pts["N_total"].to_numpy(float), y))


# --------------------------------------------------------------------------------------------------
# Transfer and per-position loss


@dataclass(frozen=True)
class Transfer:
    """Kaplan Fig 8: loss on other distributions against the in-distribution loss, and the offset."""

    points: pd.DataFrame
    """Final losses, one row per (run, set): ``run_id``, ``N``, ``set``, ``loss`` (valid), ``other``."""
    curve: pd.DataFrame
    """The largest model during training: ``step``, ``set``, ``loss``, ``other``."""
    offsets: pd.DataFrame
    """Per set: ``set``, ``offset`` (mean other - valid over the final losses), ``offset_largest``
    (at the largest N), ``slope``, ``intercept`` (other = slope * loss + intercept)."""


def transfer(runs: pd.DataFrame, curves: pd.DataFrame) -> Transfer:
    """Offsets and the linear relation between each extra eval set's loss and the validation loss."""
    sets = [c[len("loss_"):] for c in runs.columns if c.startswith("loss_") and c != "loss_valid" and runs[c].notna().any()]
    if not sets:
        raise DataError("no extra eval sets in this study; add data.eval_sets to measure transfer (Kaplan Fig 8).")
    df = finished(runs)
    df = df[~data_limited(df)]
    df = df[~kinds(df).map(lambda ks: ks <= SCAN_DESIGNS)]
    largest = df.loc[df["N"].idxmax(), "run_id"]
    lc = curves_of(curves, df[df["run_id"] == largest])
    pts, curve, offs = [], [], []
    for s in sets:
        col = f"loss_{s}"
        d = df[df[col].notna()]
        if len(d) < 2:
            continue
        pts.append(pd.DataFrame({"run_id": d["run_id"], "N": d["N"], "set": s, "loss": d["loss"], "other": d[col]}))
        if col in lc.columns:
            curve.append(pd.DataFrame({"step": lc["step"], "set": s, "loss": lc["loss"], "other": lc[col]}).dropna())
        slope, intercept = np.polyfit(d["loss"], d[col], 1)
        big = d.loc[d["N"].idxmax()]
        offs.append({"set": s, "offset": float((d[col] - d["loss"]).mean()), "offset_largest": float(big[col] - big["loss"]),
                     "slope": float(slope), "intercept": float(intercept)})
    if not offs:
        raise DataError("the extra eval sets have fewer than 2 finished runs each; finish more runs.")
    return Transfer(pd.concat(pts, ignore_index=True), pd.concat(curve, ignore_index=True) if curve else pd.DataFrame(),
                    pd.DataFrame(offs))


@dataclass(frozen=True)
class PerPosition:
    """Kaplan Fig 20 / App D.5: loss at each context position T, L(T) = a + b T^-c, per model size."""

    points: pd.DataFrame
    """``N``, ``T`` (1-based position), ``loss``."""
    fits: dict[float, FitResult] = field(default_factory=dict)
    """The ``position`` law per model size N."""

    def constants(self) -> list[Constant]:
        if not self.fits:
            return []
        n = max(self.fits)
        return _constants(f"L(T), N={n:.3g}", self.fits[n],
                          _paper(KAPLAN_FIG20_LARGEST, "Kaplan Fig 20 (largest)"))


def per_position(runs: pd.DataFrame, positions: pd.DataFrame) -> PerPosition:
    """Fit L(T) to the final per-position validation loss of the best run of each size.

    ``positions`` is long: ``run_id``, ``T`` (1-based), ``loss`` (from each run's summary.json).
    """
    df = law_runs(runs)
    df = df[~data_limited(df)]
    df = df.loc[df.groupby("N")["loss"].idxmin()]
    p = positions[positions["run_id"].isin(df["run_id"])].merge(df[["run_id", "N"]], on="run_id")
    if p["run_id"].nunique() < 1:
        raise DataError("no per-position losses; train with eval.per_position = true (Kaplan Fig 20).")
    fits = {}
    for n, g in p.groupby("N"):
        try:
            fits[float(n)] = fit_law("position", g[["T", "loss"]])
        except FitError:
            continue
    return PerPosition(p[["N", "T", "loss"]].reset_index(drop=True), fits)


# --------------------------------------------------------------------------------------------------
# Chinchilla's three approaches beside Kaplan's allocation


@dataclass(frozen=True)
class Approaches:
    """N_opt ∝ C^a three ways (Hoffmann §3) plus Kaplan's, on the same study."""

    envelope: Frontier
    """Approach 1 (also Kaplan's own method, Fig 14)."""
    isoflop: IsoFlopResult | None
    """Approach 2, when the study has IsoFLOP budgets with bracketed minima."""
    parametric: FitResult | None
    """Approach 3: E + A/N^α + B/D^β on every final loss."""
    kaplan_min: Frontier | None
    """Kaplan's batch-adjusted frontier over C_min (Fig 14 left), when B_crit is known."""
    isoflop_note: str = ""

    def exponents(self) -> dict[str, float]:
        """The exponent a of N_opt ∝ C^a per method (Chinchilla: 0.50, 0.49, 0.46; Kaplan 0.73)."""
        out = {"approach 1: envelope": self.envelope.a}
        if self.isoflop is not None:
            out["approach 2: IsoFLOP"] = self.isoflop.frontier.a
        if self.parametric is not None:
            p = self.parametric.params
            out["approach 3: parametric"] = p["beta"] / (p["alpha"] + p["beta"])
        if self.kaplan_min is not None:
            out["Kaplan: envelope over C_min"] = self.kaplan_min.a
        return out

    def allocation(self, compute: np.ndarray) -> Allocation | None:
        """Approach 3's closed-form allocation (Hoffmann eq 4) at ``compute`` FLOPs."""
        if self.parametric is None:
            return None
        return chinchilla_allocation(**self.parametric.params, compute=compute)


def approaches(runs: pd.DataFrame, frontier: ComputeFrontier, nd: LossVsND | None) -> Approaches:
    """Approach 1 from the frontier, approach 2 from IsoFLOP runs (if any), approach 3 from the L(N, D) runs."""
    iso, note = None, ""
    df = law_runs(runs)
    iso_runs = df[in_design(df, "isoflop")]
    if iso_runs.empty:
        note = "no isoflop design in this study"
    else:
        try:
            iso = isoflop_frontier(iso_runs, strict=False)
        except ScalinglabError as e:
            note = str(e)
    return Approaches(frontier.frontier, iso, nd.chinchilla if nd else None, frontier.frontier_min, note)


# --------------------------------------------------------------------------------------------------
# Backtest: fit on the cheaper runs, predict the most expensive


@dataclass(frozen=True)
class Backtest:
    """Laws of N and D fitted on the runs with the smallest ``train_fraction`` of compute, scored on the rest."""

    points: pd.DataFrame
    """``run_id``, ``N``, ``D`` (tokens processed), ``C``, ``loss`` (final), ``train`` (used in the fit),
    ``pred_<law>`` per law."""
    errors: pd.DataFrame
    """Per law: ``law``, ``max_error``, ``mean_error`` (relative, over the held-out runs), ``n_train``, ``n_test``."""
    fits: dict[str, FitResult]

    def max_error(self, law: str = "auto") -> float:
        return float(self.errors.set_index("law").loc[law, "max_error"])

    def chosen(self) -> str | None:
        """The candidate ``--law auto`` chose inside the cheaper runs (None without an auto fit)."""
        fit = self.fits.get("auto")
        return next((c["name"] for c in fit.candidates if c.get("chosen")), None) if fit is not None else None


def backtest(runs: pd.DataFrame, laws: tuple[str, ...] = ("auto", "kaplan_nd", "chinchilla"), train_fraction: float = 2 / 3
             ) -> Backtest:
    """Fit each law of N and D on the cheapest ``train_fraction`` of the runs, predict the final loss of the rest.

    The runs are those on the recipe with enough data (ladders, grids, IsoFLOPs: no data-limited
    sweeps), D = tokens processed and the loss the final one, as in Hoffmann's approach 3. The
    held-out runs are the most expensive, so the error measures extrapolation in compute, the
    question a scaling law exists to answer (spec §6 item 13). The cut falls at the step of compute
    (:func:`scalinglab.laws.auto.axis_steps`) nearest the fraction: an IsoFLOP budget's runs, equal in C
    but for rounding, are all fitted or all predicted. ``"auto"`` selects the law by rollout
    cross-validation inside the cheaper runs only (the headline number: the product's own method).
    """
    df = law_runs(runs)
    df = df[~data_limited(df)]
    p = df[["run_id", "N", "D", "C", "loss"]].sort_values("C", kind="stable").reset_index(drop=True)
    if p.empty:  # no compute steps to cut at; a few runs get the count check below
        raise DataError("a backtest needs at least 8 runs with enough data (has 0); add sizes or budgets.")
    steps = axis_steps(np.log(p["C"].to_numpy(dtype=float)))
    ends = np.flatnonzero(np.diff(steps, append=steps[-1] + 1))[:-1] + 1  # run counts at each step boundary
    n_train = int(np.floor(train_fraction * len(p)))
    if len(ends):  # the step boundary nearest the count (itself when no two runs share a step), ties to the larger
        n_train = int(ends[np.lexsort((-ends, np.abs(ends - n_train)))[0]])
    if n_train < 5 or len(p) - n_train < 1:
        raise DataError(f"a backtest needs at least 8 runs with enough data (has {len(p)}); add sizes or budgets.")
    if p.loc[: n_train - 1, "N"].nunique() < 2 or p.loc[: n_train - 1, "D"].nunique() < 2:
        raise DataError("the cheaper runs of the backtest cover one N or one D; add an nd_grid or isoflop design.")
    split = Split("C", "<=", float(p.loc[n_train - 1, "C"]))  # the cheapest runs, ordered by compute
    p = p.assign(train=split.train_mask(p))
    rows, fits = [], {}
    for law in laws:
        try:
            r = laws_backtest(law, p[["N", "D", "C", "loss"]], split, bootstrap=0)  # scores only: no intervals needed
        except ScalinglabError:
            continue
        fits[law] = r.fit
        p[f"pred_{law}"] = r.fit.predict(p)
        err = np.abs(r.table["rel_error"].to_numpy(float))
        rows.append({"law": law, "max_error": float(err.max()), "mean_error": float(err.mean()),
                     "n_train": r.n_train, "n_test": r.n_test})
    if not rows:
        raise FitError("no law of N and D could be fitted on the cheaper runs; train more sizes.")
    return Backtest(p, pd.DataFrame(rows), fits)
