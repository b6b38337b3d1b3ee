"""Uncertainty of a fitted law: bootstrap over runs, parameter intervals, prediction intervals.

The bootstrap resamples runs (rows) with replacement, expressed as integer weights, and refits all
replicates together, warm-started from the point estimate (:func:`minimize_batch` on a batch whose
members differ only in their weights). A replicate that has not converged is finished with L-BFGS-B
or, failing that, dropped and counted.

A prediction interval for a *new* run adds run-to-run noise to the parameter spread: in log space,
sd² = var(bootstrap log-predictions) + s², where s is a robust (MAD) scale of the fit's log
residuals, inflated by n/(n-p) for the degrees of freedom the fit used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy.stats import norm
from tqdm import tqdm

from scalinglab.laws.forms import Form
from scalinglab.laws.objective import Problem, expected_decrease, minimize_batch, polish

CONVERGED_RTOL = 1e-10
"""A fit has converged when a Gauss-Newton step would lower the objective by at most this fraction."""


def is_converged(objective: np.ndarray, decrease: np.ndarray) -> np.ndarray:
    """Convergence test shared by point fits and bootstrap replicates (see :data:`CONVERGED_RTOL`)."""
    return np.isfinite(objective) & (decrease <= CONVERGED_RTOL * objective + 1e-20)


def robust_scale(residuals: np.ndarray, n_params: int) -> float:
    """Run-to-run noise in log space: 1.4826·MAD of the residuals, scaled by sqrt(n/(n-p))."""
    r = np.asarray(residuals, dtype=float)
    n = r.size
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))  # = sd for normal noise, robust to outliers
    return float(mad * np.sqrt(n / max(n - n_params, 1)))


def bootstrap(
    problem: Problem, theta_hat: np.ndarray, n: int, *, seed: int = 0, chunk: int = 250, progress: bool = False
) -> tuple[np.ndarray, int]:
    """Refit ``n`` resamples of the runs; returns converged replicates' theta ``(n_ok, P)`` and n dropped."""
    rng = np.random.default_rng(seed)
    n_points = problem.logy.size
    counts = rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=n)  # (n, n_points)
    weights = counts * problem.weights  # (n, n_points): a resample as integer weights
    thetas, dropped = [], 0
    for start in tqdm(range(0, n, chunk), desc="bootstrap", unit="chunk", disable=not progress, leave=False):
        pb = dataclasses.replace(problem, weights=weights[start : start + chunk])
        theta0 = np.repeat(theta_hat[None, :], pb.weights.shape[0], axis=0)
        theta, _ = minimize_batch(pb, theta0, max_iter=300, ftol=1e-14)
        f, dec = expected_decrease(pb, theta)
        for k in np.flatnonzero(~is_converged(f, dec)):  # rare: finish these one by one
            one = dataclasses.replace(problem, weights=pb.weights[k])
            res = polish(one, theta[k])
            f1, dec1 = expected_decrease(one, res.x[None, :])
            if is_converged(f1, dec1)[0]:
                theta[k] = res.x
            else:
                theta[k] = np.nan
                dropped += 1
        thetas.append(theta[np.isfinite(theta).all(axis=1)])
    return np.concatenate(thetas), dropped


def percentile_intervals(samples: Mapping[str, np.ndarray], level: float) -> dict[str, list[float]]:
    """Equal-tailed ``level`` percentile interval ``[lo, hi]`` of each named sample."""
    tail = 100 * (1 - level) / 2
    return {k: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] for k, v in samples.items()}


def prediction_interval(
    form: Form,
    params: np.ndarray,
    samples: np.ndarray | None,
    noise: float,
    X,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` for the target of a new run at each row of ``X``.

    ``params`` is the public point estimate ``(P,)``, ``samples`` bootstrap public parameters
    ``(B, P)`` (None: noise only), ``noise`` the log-space run-to-run scale.
    """
    center = np.log(form.predict(params, X))  # (n,)
    var = np.full_like(center, noise**2)
    if samples is not None and len(samples) > 1:
        var = var + np.var(np.log(form.predict(samples, X)), axis=0, ddof=1)
    half = norm.ppf(0.5 + level / 2) * np.sqrt(var)
    return np.exp(center - half), np.exp(center + half)
