"""The critical batch size: measured from batch-size scans and used to adjust steps and compute.

Kaplan et al. 2020 §5.1 (after McCandlish et al. 2018): runs that differ only in batch size B reach a
loss L after S steps and E = B·S examples with (S/S_min - 1)(E/E_min - 1) = 1 (eq 5.1), so
B_crit(L) = E_min/S_min (eq 5.2), and B_crit(L) ≈ B*/L^(1/α_B) (eq 1.4). A run at batch B is then
converted to the steps and compute it would have needed at the extremes (eqs 5.4, 5.5). The online
gradient-noise scale B_simple (metric ``noise_b_simple``) is summarised per loss to compare with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from scalinglab.constants import KAPLAN_TABLE5
from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.fit import FitResult, fit_law


@dataclass(frozen=True)
class BcritLaw:
    """Kaplan eq 1.4: B_crit(L) = B*/L^(1/α_B), in tokens (Table 5: B* = 2.1e8, α_B = 0.21)."""

    B_star: float = KAPLAN_TABLE5["B_star"]
    alpha_B: float = KAPLAN_TABLE5["alpha_B"]

    def __call__(self, loss: np.ndarray | float) -> np.ndarray:
        return self.B_star / np.asarray(loss, dtype=float) ** (1 / self.alpha_B)

    @classmethod
    def from_fit(cls, fit: FitResult) -> BcritLaw:
        """The law of a fit of the ``bcrit`` form (see :func:`fit_bcrit_law`)."""
        if fit.law != "bcrit":
            raise ConfigError(f"this is a fit of '{fit.law}', not 'bcrit'; fit B_crit(L) with --law bcrit.")
        return cls(B_star=float(fit.params["B_star"]), alpha_B=float(fit.params["alpha_B"]))


@dataclass(frozen=True)
class CriticalBatch:
    """Eq 5.1 fitted at one loss level across the runs of a batch-size scan."""

    loss: float
    s_min: float
    """Steps needed at B ≫ B_crit."""
    e_min: float
    """Examples (tokens) needed at B ≪ B_crit."""
    n_runs: int

    @property
    def b_crit(self) -> float:
        """Eq 5.2: B_crit = E_min/S_min."""
        return self.e_min / self.s_min


def steps_to_loss(steps: np.ndarray, loss: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The (interpolated) first step at which a curve reaches each loss level; nan if it never does.

    The running minimum of the loss is used, so eval noise cannot make a level reached twice.
    """
    steps, best = np.asarray(steps, dtype=float), np.minimum.accumulate(np.asarray(loss, dtype=float))
    out = np.full(len(levels), np.nan)
    for i, level in enumerate(levels):
        k = int(np.argmax(best <= level))
        if best[k] > level:
            continue
        if k == 0:
            out[i] = steps[0]
            continue
        # linear between the last eval above the level and the first at or below it
        frac = (best[k - 1] - level) / (best[k - 1] - best[k])
        out[i] = steps[k - 1] + frac * (steps[k] - steps[k - 1])
    return out


def fit_steps_examples(batch: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    """(S_min, E_min) from eq 5.1 at one loss level, given each run's batch (tokens) and steps.

    Eq 5.1 with E = B·S is S = S_min + E_min/B; it is fitted by least squares on log S (step counts
    are noisy in ratio, not in difference), started from the linear regression of S on 1/B.
    """
    batch, steps = np.asarray(batch, dtype=float), np.asarray(steps, dtype=float)
    if len(np.unique(batch)) < 3:
        raise FitError(
            f"eq 5.1 needs runs at 3 or more batch sizes reaching the loss (got {len(np.unique(batch))}); "
            "add batch sizes to the scan or pick a loss level every run reaches."
        )
    slope, intercept = np.polyfit(1 / batch, steps, 1)
    x0 = np.log([max(intercept, 0.1 * steps.min()), max(slope, 0.1 * steps.min() * batch.min())])
    res = optimize.least_squares(
        lambda p: np.log(np.exp(p[0]) + np.exp(p[1]) / batch) - np.log(steps), x0, method="lm"
    )
    s_min, e_min = np.exp(res.x)
    return float(s_min), float(e_min)


def default_levels(curves: list[tuple[np.ndarray, np.ndarray]], num: int = 8) -> np.ndarray:
    """Loss levels every curve reaches, from its loss a tenth of the way in down to the last common loss."""
    lo = max(float(np.min(loss)) for _, loss in curves)
    hi = min(float(np.min(loss[: max(1, len(loss) // 10)])) for _, loss in curves)
    if hi <= lo:
        raise DataError("the scan's curves share no range of losses; train every batch size further.")
    return np.geomspace(hi, lo, num + 1)[1:]  # strictly below hi so every run has a step before it


def critical_batch_scan(
    curves: pd.DataFrame,
    levels: np.ndarray | None = None,
    batch_col: str = "batch_tokens",
    run_col: str = "run_id",
    loss_col: str = "loss",
) -> list[CriticalBatch]:
    """Kaplan Fig 18: S_min, E_min and B_crit at each loss level of a batch-size scan.

    ``curves`` has one row per evaluation with ``run_col``, ``batch_col`` (tokens per step), ``step``
    and ``loss_col``, for runs that differ only in batch size. Levels default to
    :func:`default_levels`; a level reached by fewer than 3 batch sizes is skipped.
    """
    missing = [c for c in (run_col, batch_col, "step", loss_col) if c not in curves.columns]
    if missing:
        raise DataError(f"a batch-size scan needs columns {missing} (one row per evaluation of each run).")
    runs = [(float(g[batch_col].iloc[0]), g.sort_values("step")) for _, g in curves.groupby(run_col)]
    series = [(g["step"].to_numpy(float), g[loss_col].to_numpy(float)) for _, g in runs]
    levels = default_levels(series) if levels is None else np.asarray(levels, dtype=float)
    batch = np.array([b for b, _ in runs])
    steps = np.array([steps_to_loss(s, loss, levels) for s, loss in series])  # (runs, levels)
    out = []
    for j, level in enumerate(levels):
        ok = np.isfinite(steps[:, j]) & (steps[:, j] > 0)
        if len(np.unique(batch[ok])) >= 3:
            s_min, e_min = fit_steps_examples(batch[ok], steps[ok, j])
            out.append(CriticalBatch(float(level), s_min, e_min, int(ok.sum())))
    if not out:
        raise FitError("no loss level is reached by 3 or more batch sizes; extend the runs or pass levels.")
    return out


def bcrit_table(points: list[CriticalBatch]) -> pd.DataFrame:
    """The scan's critical batch sizes as a table (``loss``, ``B_crit``, ``S_min``, ``E_min``) for the fitter."""
    return pd.DataFrame(
        {
            "loss": [p.loss for p in points],
            "B_crit": [p.b_crit for p in points],
            "S_min": [p.s_min for p in points],
            "E_min": [p.e_min for p in points],
        }
    )


def fit_bcrit_law(points: list[CriticalBatch] | pd.DataFrame, **fit_options: Any) -> FitResult:
    """Eq 1.4 fitted to a scan's critical batch sizes with the project's fitter (law ``bcrit``).

    ``points`` come from :func:`critical_batch_scan` or a table with ``loss`` and ``B_crit`` columns;
    ``fit_options`` go to :func:`scalinglab.laws.fit.fit_law` (e.g. ``bootstrap=200``). Use
    :meth:`BcritLaw.from_fit` to plan with the result, or save it with ``.to_json`` for ``--bcrit``.
    """
    table = points if isinstance(points, pd.DataFrame) else bcrit_table(points)
    return fit_law("bcrit", table, **fit_options)


def adjusted_steps(steps: np.ndarray | float, batch: np.ndarray | float, b_crit: np.ndarray | float) -> np.ndarray:
    """Eq 5.4: S_min = S / (1 + B_crit(L)/B), the steps needed at B ≫ B_crit."""
    return np.asarray(steps, dtype=float) / (1 + np.asarray(b_crit, dtype=float) / np.asarray(batch, dtype=float))


def adjusted_compute(compute: np.ndarray | float, batch: np.ndarray | float, b_crit: np.ndarray | float) -> np.ndarray:
    """Eq 5.5: C_min = C / (1 + B/B_crit(L)), the compute needed at B ≪ B_crit."""
    return np.asarray(compute, dtype=float) / (1 + np.asarray(batch, dtype=float) / np.asarray(b_crit, dtype=float))


def noise_scale_by_loss(
    metrics: pd.DataFrame, bins: int = 10, loss_col: str = "train_loss", noise_col: str = "noise_b_simple"
) -> pd.DataFrame:
    """The online noise scale B_simple (McCandlish et al. 2018) summarised per loss bin, as in Kaplan Fig 10.

    ``metrics`` holds ``metrics.jsonl`` records (one run or several). Returns one row per non-empty
    log-spaced loss bin: ``loss`` (geometric centre), ``b_simple`` (median), ``q25``, ``q75``, ``n``.
    The median, because the ratio estimator is heavy-tailed.
    """
    if noise_col not in metrics.columns or loss_col not in metrics.columns:
        raise DataError(
            f"no '{noise_col}' with '{loss_col}' in these metrics; train with the noise-scale callback on."
        )
    df = metrics[[loss_col, noise_col]].dropna()
    df = df[(df[loss_col] > 0) & (df[noise_col] > 0)]
    if df.empty:
        raise DataError(f"'{noise_col}' has no positive values yet; it needs a few hundred steps to settle.")
    edges = np.geomspace(df[loss_col].min(), df[loss_col].max() * (1 + 1e-9), bins + 1)
    which = np.digitize(df[loss_col], edges) - 1
    rows = []
    for k in np.unique(which):
        vals = df[noise_col].to_numpy()[which == k]
        rows.append(
            {
                "loss": float(np.sqrt(edges[k] * edges[k + 1])),
                "b_simple": float(np.median(vals)),
                "q25": float(np.quantile(vals, 0.25)),
                "q75": float(np.quantile(vals, 0.75)),
                "n": len(vals),
            }
        )
    return pd.DataFrame(rows)
