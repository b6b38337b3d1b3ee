"""Kaplan's figures that follow from the fitted laws rather than from one set of runs: Figs 3, 12, 15, 16, 23.

Each function takes the analyses of :mod:`scalinglab.report.analyses` (the laws already fitted on
the runs each law needs) and returns a frozen dataclass the figures draw, or raises
:class:`~scalinglab.errors.DataError` naming the law that is missing. The equations are Kaplan's
(eqs 1.7, 5.7, 6.7, B.16, B.17; spec §1.4, §1.5); the frontier's App. B algebra is
:class:`scalinglab.laws.frontier.KaplanFrontier`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.laws.batch import adjusted_steps
from scalinglab.laws.frontier import KaplanFrontier
from scalinglab.report.analyses import (
    ComputeFrontier,
    CriticalBatchSize,
    LearningCurves,
    LossVsD,
    LossVsN,
    LossVsND,
)

# --------------------------------------------------------------------------------------------------
# Fig 3: how a compute increase splits between model size, batch and steps


@dataclass(frozen=True)
class ComputeSplit:
    """Exponents of N, B and S in C_min (Kaplan eq 1.7, Fig 3): C = 6·N·B·S, so they sum to 1."""

    p_N: float
    """N_opt ∝ C_min^p_N, the envelope over C_min where the ladder brackets the optimum (Fig 14)."""
    p_B: float
    """B_crit ∝ C_min^p_B = α_C^min/α_B: B_crit(L) (eq 1.4) along L(C_min) (eq 5.5)."""
    p_S: float
    """The rest, 1 - p_N - p_B: serial steps."""
    compute_range: float
    """How many times the study's largest C_min exceeds its smallest frontier point (the data's span)."""


def compute_split(frontier: ComputeFrontier, bcrit: CriticalBatchSize | None) -> ComputeSplit:
    """Fig 3 from the study's own laws: the measured N_opt(C_min) exponent and B_crit along L(C_min)."""
    if bcrit is None or frontier.frontier_min is None or frontier.fit_min is None:
        raise DataError("Fig 3 needs B_crit(L) to adjust compute to C_min; add a batch_scan design.")
    p_n = frontier.frontier_min.a
    p_b = frontier.fit_min.params["alpha_C_min"] / bcrit.fit.params["alpha_B"]
    c = frontier.frontier_min.compute
    return ComputeSplit(p_n, p_b, 1 - p_n - p_b, float(c.max() / c.min()))


# --------------------------------------------------------------------------------------------------
# Fig 12: the cost of a model off the optimal size


@dataclass(frozen=True)
class ExcessCompute:
    """Kaplan eqs B.16, B.17 from the study's L(N, S) and B_crit(L): extra compute and steps at N/N_eff."""

    ratio: np.ndarray
    """N / N_eff, log-spaced over 0.1 to 10."""
    compute: np.ndarray
    """C(N, N_eff) / C(N_eff, N_eff), the same loss reached (eq B.16)."""
    steps: np.ndarray
    """S(N, N_eff) / S(N_eff, N_eff) (eq B.17)."""
    within_20pct: tuple[float, float]
    """The N/N_eff range costing at most +20% compute (Kaplan: 0.6x to 2.2x)."""


def excess_compute(curves: LearningCurves, bcrit: CriticalBatchSize | None) -> ExcessCompute:
    """Fig 12 from L(N, S_min) (eq 1.6) and B_crit(L): eqs B.16-B.17, valid in the power-law region."""
    if bcrit is None or not curves.adjusted:
        raise DataError("Fig 12 needs L(N, S_min), whose S_min needs B_crit(L); add a batch_scan design.")
    law = KaplanFrontier.from_laws(curves.fit.params, bcrit.law)
    ratio = np.geomspace(0.1, 10, 401)
    with np.errstate(invalid="ignore", divide="ignore"):  # below N_eff's converged loss the cost is infinite
        c, s = np.asarray(law.excess_compute(ratio), float), np.asarray(law.excess_steps(ratio), float)
    ok = np.isfinite(c) & (c <= 1.2)
    within = (float(ratio[ok].min()), float(ratio[ok].max())) if ok.any() else (float("nan"), float("nan"))
    return ExcessCompute(ratio, c, s, within)


# --------------------------------------------------------------------------------------------------
# Fig 15: L(C_min) against L(D(C_min)), and where they meet


@dataclass(frozen=True)
class DataComputeIntersection:
    """Kaplan §6.3, Fig 15: L(C_min) (eq 5.5) against L(D(C_min)), D = 2 C_min / (6 N_opt(C_min)) (eq 6.7)."""

    compute: np.ndarray
    """C_min grid (FLOPs) from the study's smallest frontier point to far beyond the crossing."""
    loss_compute: np.ndarray
    """L(C_min) = (C_c_min / C_min)^α_C^min."""
    loss_data: np.ndarray
    """L(D(C_min)) = (D_c / D)^α_D, with D the tokens compute-efficient training processes."""
    band_compute: tuple[np.ndarray, np.ndarray]
    """95% band of L(C_min) over the bootstrap refits."""
    band_data: tuple[np.ndarray, np.ndarray]
    """95% band of L(D(C_min))."""
    crossing: float
    """C_min (FLOPs) where the two laws meet; nan when they do not within the grid."""
    crossing_loss: float
    crossing_interval: tuple[float, float]
    """95% interval of the crossing over paired bootstrap refits (nan when too few cross)."""
    data_range: tuple[float, float]
    """The C_min span of the study's frontier: the laws are extrapolated beyond it."""


def _crossing(c: np.ndarray, lc: np.ndarray, ld: np.ndarray) -> tuple[float, float]:
    """First C where L(D(C)) rises above L(C_min), interpolated in log C (nan when none)."""
    gap = ld - lc
    idx = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0) | (gap[:-1] > 0) & (gap[1:] <= 0))
    if idx.size == 0:
        return float("nan"), float("nan")
    i = idx[0]
    t = gap[i] / (gap[i] - gap[i + 1])
    x = float(np.exp(np.log(c[i]) + t * (np.log(c[i + 1]) - np.log(c[i]))))
    return x, float(lc[i] + t * (lc[i + 1] - lc[i]))


def data_compute_intersection(frontier: ComputeFrontier, law_d: LossVsD, num: int = 400) -> DataComputeIntersection:
    """Both laws over C_min from the study's frontier to 10^12 times beyond it, the crossing and its interval."""
    if frontier.frontier_min is None or frontier.fit_min is None:
        raise DataError("Fig 15 needs L(C_min), whose C_min needs B_crit(L); add a batch_scan design.")
    fm, n_law = frontier.fit_min, frontier.frontier_min.n_law
    lo, hi = float(frontier.frontier_min.compute.min()), float(frontier.frontier_min.compute.max())
    c = np.geomspace(lo, hi * 1e12, num)
    d = 2 * c / (6 * n_law(c))  # eq 6.7: training at B_crit spends 2 C_min

    def laws(pc: dict, pd_: dict) -> tuple[np.ndarray, np.ndarray]:
        return (fm.form.predict(pc, pd.DataFrame({"C_min": c})), law_d.fit.form.predict(pd_, pd.DataFrame({"D": d})))

    lc, ld = laws(fm.params, law_d.fit.params)
    cross, cross_loss = _crossing(c, lc, ld)
    bc, bd = fm.bootstrap, law_d.fit.bootstrap
    band_c = band_d = (lc, lc)
    interval = (float("nan"), float("nan"))
    if bc is not None and bd is not None and len(bc) and len(bd):
        k = min(len(bc), len(bd))
        pairs = [laws(bc.iloc[i][list(fm.params)].to_dict(), bd.iloc[i][list(law_d.fit.params)].to_dict()) for i in range(k)]
        lcs, lds = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        band_c = (np.quantile(lcs, 0.025, axis=0), np.quantile(lcs, 0.975, axis=0))
        band_d = (np.quantile(lds, 0.025, axis=0), np.quantile(lds, 0.975, axis=0))
        crosses = np.array([_crossing(c, a, b)[0] for a, b in pairs])
        crosses = crosses[np.isfinite(crosses)]
        if len(crosses) >= max(3, k // 2):
            interval = (float(np.quantile(crosses, 0.025)), float(np.quantile(crosses, 0.975)))
    else:
        band_d = (ld, ld)
    return DataComputeIntersection(c, lc, ld, band_c, band_d, cross, cross_loss, interval, (lo, hi))


# --------------------------------------------------------------------------------------------------
# Fig 16: early stopping against the eq 5.7 bound, and train against test loss


@dataclass(frozen=True)
class EarlyStopping:
    """Kaplan §5.3, Fig 16: each data-limited run's early-stopping step against eq 5.7's lower bound."""

    points: pd.DataFrame
    """One row per data-limited run: ``run_id``, ``N``, ``D``, ``s_stop`` (the best step, as S_min), ``bound``
    (S_c / (L(N, D) - L(N, ∞))^(1/α_S))."""
    curves: pd.DataFrame
    """Train and validation loss against step of the data-limited runs of the largest swept model:
    ``run_id``, ``D``, ``step``, ``train_loss``, ``loss``."""

    def fraction_above(self) -> float:
        """Share of runs that stopped at or after the bound (eq 5.7 is a lower bound)."""
        p = self.points[np.isfinite(self.points["bound"])]
        return float((p["s_stop"] >= p["bound"]).mean()) if len(p) else float("nan")


def early_stopping(runs: pd.DataFrame, curves: pd.DataFrame, nd: LossVsND, lc: LearningCurves,
                   bcrit: CriticalBatchSize | None) -> EarlyStopping:
    """Eq 5.7 with L(N, D) and L(N, ∞) from the joint fit and S_c, α_S from L(N, S); S_stop moved to S_min."""
    from scalinglab.study.selection import data_limited, dataset_size, law_runs

    df = law_runs(runs)
    df = df[data_limited(df)]
    if df.empty or "best_step" not in df.columns:
        raise DataError("Fig 16 needs data-limited runs with early stopping; add a dataset_size design.")
    df = df.assign(D_data=dataset_size(df))
    frontier = KaplanFrontier(N_c=lc.fit.params["N_c"], alpha_N=lc.fit.params["alpha_N"], S_c=lc.fit.params["S_c"],
                              alpha_S=lc.fit.params["alpha_S"])
    loss_nd = nd.fit.predict(pd.DataFrame({"N": df["N"], "D": df["D_data"]}))
    p = nd.fit.params
    converged = (p["N_c"] / df["N"].to_numpy(float)) ** p["alpha_N"]  # L(N, ∞) of the same fit (eq 4.2)
    bound = frontier.early_stopping_steps(loss_nd, converged)
    s = df["best_step"].to_numpy(float)
    if bcrit is not None:
        s = adjusted_steps(s, df["batch_tokens"].to_numpy(float), bcrit.law(df["best_loss"].to_numpy(float)))
    points = pd.DataFrame({"run_id": df["run_id"], "N": df["N"], "D": df["D_data"], "s_stop": s, "bound": bound})
    big = df[df["N"] == df["N"].max()]
    c = curves[curves["run_id"].isin(big["run_id"])].merge(big[["run_id", "D_data"]], on="run_id")
    cols = ["run_id", "D_data", "step", "loss"] + (["train_loss"] if "train_loss" in c.columns else [])
    return EarlyStopping(points.reset_index(drop=True), c[cols].rename(columns={"D_data": "D"}).sort_values(["D", "step"]))


# --------------------------------------------------------------------------------------------------
# Fig 23: a power law against a logarithm


@dataclass(frozen=True)
class LogFit:
    """Kaplan App D.7, Fig 23: L(N) as a power law against L = a - b·ln N on the same points."""

    points: pd.DataFrame
    """``N``, ``loss`` (the L(N) points)."""
    power: LossVsN
    a: float
    b: float
    rms_power: float
    """RMS relative residual of the power law."""
    rms_log: float
    """RMS relative residual of the logarithm (Kaplan: worse)."""

    def log_law(self, n: np.ndarray) -> np.ndarray:
        return self.a - self.b * np.log(np.asarray(n, dtype=float))


def log_fit(law_n: LossVsN) -> LogFit:
    """Least squares of loss on ln N, beside the fitted power law (both scored on relative residuals)."""
    p = law_n.points
    n, y = p["N"].to_numpy(float), p["loss"].to_numpy(float)
    slope, a = np.polyfit(np.log(n), y, 1)
    rms = lambda pred: float(np.sqrt(np.mean((pred / y - 1) ** 2)))  # noqa: E731
    return LogFit(p[["N", "loss"]], law_n, float(a), float(-slope), rms(law_n.fit.predict(p[["N"]])),
                  rms(a + slope * np.log(n)))
