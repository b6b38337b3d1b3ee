"""Uncertainty of a fitted law: bootstrap over runs, parameter intervals, prediction intervals.

The bootstrap resamples runs (rows, or the groups of rows of a checkpoint table) with replacement, expressed as integer weights, and refits all
replicates together, warm-started from the point estimate (:func:`minimize_batch` on a batch whose
members differ only in their weights). A replicate that has not converged is finished with L-BFGS-B
or, failing that, dropped and counted.

A prediction interval for a *new* run adds run-to-run noise and extrapolation error to the
parameter spread. In log space, sd² = var(bootstrap log-predictions) + s0² + (slope·d)² + (spread·u)² + (cross·d·u)²,
where d is how far the run lies beyond the fitted runs along an axis (log C, or the log of a chosen
column) and u how far its inputs lie from the fitted runs' median across the form's own axis (for a
law of N and D: how far its tokens per parameter are from the typical run's; the ends of IsoFLOP
profiles are where such a law fits worst; far beyond the data the ends miss most, hence the d·u term).
``s0``, ``slope``, ``spread`` and ``cross`` are calibrated by forward-chaining cross-validation inside the
data (:func:`calibrate_noise`): fit the smaller runs, predict the larger ones, and regress the squared
errors on d², u² and (d·u)², since in-sample residuals understate a law's error out of sample. A term the
errors do not support comes out zero.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalinglab.errors import DataError
from scalinglab.laws.forms import Form
from scalinglab.laws.objective import Problem, expected_decrease, finish, minimize_batch, polish, progress_bar

CONVERGED_RTOL = 1e-10
"""A fit has converged when a Gauss-Newton step would lower the objective by at most this fraction."""


POLISH_ITER = 2000
"""L-BFGS-B iterations for a bootstrap replicate the batch left unconverged (a flat valley takes thousands)."""


CALIBRATION_FRACTIONS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Forward-chaining folds of the noise calibration: fit the runs below each quantile of the axis. Starting
at 0.3 gives folds that extrapolate as far as real use does (from 0.5 on, Epoch N<1e9 covered 109/122)."""


def is_converged(objective: np.ndarray, decrease: np.ndarray) -> np.ndarray:
    """Convergence test shared by point fits and bootstrap replicates (see :data:`CONVERGED_RTOL`)."""
    return np.isfinite(objective) & (decrease <= CONVERGED_RTOL * objective + 1e-20)


def robust_scale(residuals: np.ndarray, n_params: int) -> float:
    """Run-to-run noise in log space: 1.4826·MAD of the residuals, the ``n_params`` smallest deviations left out.

    A Huber fit with delta below the noise is a least-absolute-deviations fit, which passes through about one run
    per parameter: those residuals are ~0 and say nothing of the noise (with 9 runs and 5 parameters the plain MAD,
    even scaled by sqrt(n/(n-p)), gave 0.0017 for a true 0.01; without them, 0.0113; 18 runs: 0.0064 -> 0.0091).
    """
    r = np.asarray(residuals, dtype=float)
    deviations = np.sort(np.abs(r - np.median(r)))
    kept = deviations[min(max(n_params, 0), max(r.size - 1, 0)):]
    return float(1.4826 * np.median(kept)) if kept.size else 0.0  # = sd for normal noise, robust to outliers


def bootstrap(
    problem: Problem,
    theta_hat: np.ndarray,
    n: int,
    *,
    seed: int = 0,
    chunk: int = 250,
    progress: bool = False,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Refit ``n`` resamples of the runs; returns converged replicates' theta ``(n_ok, P)`` and n dropped.

    ``groups`` (each row's run number) resamples whole runs: a run's checkpoints are not independent.
    A resample is a count per run (``Problem.counts``), never a copy of the rows or a weight per row.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(problem.logy.size)  # each row its own run
    n_runs = int(groups.max()) + 1
    counts = rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n).astype(float)  # (n, n_runs)
    thetas, dropped = [], 0
    for start in progress_bar(range(0, n, chunk), "bootstrap", progress):
        pb = dataclasses.replace(problem, groups=groups, counts=counts[start : start + chunk])
        theta0 = np.repeat(theta_hat[None, :], pb.counts.shape[0], axis=0)
        theta, _ = minimize_batch(pb, theta0, max_iter=300, ftol=1e-14, newton=True)
        f, dec = expected_decrease(pb, theta)
        for k in np.flatnonzero(~is_converged(f, dec)):  # rare: finish these one by one
            one = dataclasses.replace(problem, weights=pb.counts[k, groups] * problem.weights)
            x = finish(one, theta[k])  # projected Gauss-Newton first: cheap, and it reaches held bounds
            f1, dec1 = expected_decrease(one, x[None, :])
            if not is_converged(f1, dec1)[0]:
                x = finish(one, polish(one, x, max_iter=POLISH_ITER).x)
                f1, dec1 = expected_decrease(one, x[None, :])
            if is_converged(f1, dec1)[0]:
                theta[k] = x
            else:
                theta[k] = np.nan
                dropped += 1
        thetas.append(theta[np.isfinite(theta).all(axis=1)])
    return np.concatenate(thetas), dropped


def percentile_intervals(samples: Mapping[str, np.ndarray], level: float) -> dict[str, list[float]]:
    """Equal-tailed ``level`` percentile interval ``[lo, hi]`` of each named sample."""
    tail = 100 * (1 - level) / 2
    return {k: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] for k, v in samples.items()}


@dataclass(frozen=True)
class NoiseModel:
    """Log-space sd of a new run around the law: sqrt(s0² + (slope·d)² + (spread·u)²).

    d is the distance outside the data along the axis; u the distance from the data's median across the
    form's own axis (tokens per parameter, for a law of N and D).
    """

    s0: float
    """Out-of-sample error scale next to the data (run-to-run noise included)."""
    slope: float
    """Growth of the error scale per unit of distance along the axis (natural-log units)."""
    axis_min: float
    axis_max: float
    """Range of the fitted runs along the axis."""
    axis: str | None = None
    """Column whose log is the axis (e.g. ``"N"``); None: the form's own axis (e.g. log N + log D)."""
    spread: float = 0.0
    """Growth of the error scale per unit of distance across the axis (natural-log units)."""
    center: tuple[float, ...] = ()
    """Median log inputs of the fitted runs (in the form's input order)."""
    along: tuple[float, ...] = ()
    """Unit direction of the form's own axis (log C for a law of N and D) in log-input space; u is the
    length of the part of (log x - center) orthogonal to it."""
    cross: float = 0.0
    """Growth of the error scale per unit of d·u: a run both beyond the data and far across the axis."""
    dof: float = float("inf")
    """Residual degrees of freedom behind ``s0`` (runs fitted less parameters): intervals use Student's t with
    these, since an sd from 9 runs and 5 parameters is itself uncertain (t = 2.78 where the normal gives 1.96)."""

    def across(self, form: Form, X) -> np.ndarray:
        """u: distance of each row from the fitted runs' median across the form's axis (0 for a one-input law)."""
        if not self.center:
            return np.zeros(len(np.atleast_1d(self.axis_values(form, X))))
        logx = form.log_inputs(X)
        return _distance_across(np.column_stack([logx[name] for name in form.inputs]), self.center, self.along)

    def axis_values(self, form: Form, X) -> np.ndarray:
        if self.axis is None:
            return form.axis_values(form.log_inputs(X))
        if self.axis not in X:
            raise DataError(f"this fit's intervals extrapolate along '{self.axis}'; give that column too.")
        return np.log(np.asarray(X[self.axis], dtype=float))

    def sd(self, form: Form, X) -> np.ndarray:
        """The sd at each row of ``X``."""
        axis = self.axis_values(form, X)
        d = np.maximum(0.0, np.maximum(axis - self.axis_max, self.axis_min - axis))
        u = self.across(form, X) if self.spread > 0 or self.cross > 0 else 0.0
        return np.sqrt(self.s0**2 + (self.slope * d) ** 2 + (self.spread * u) ** 2 + (self.cross * d * u) ** 2)


def calibrate_noise(
    problem: Problem,
    theta_hat: np.ndarray,
    axis: np.ndarray,
    axis_name: str | None = None,
    fractions: tuple[float, ...] = CALIBRATION_FRACTIONS,
    floor: float = 0.0,
) -> NoiseModel:
    """Fit the runs below each quantile of ``axis`` (per row), predict the rest, fit the noise terms to the errors.

    Falls back to the robust in-sample scale with no growth when there are too few runs for an
    inner fit (fewer than P + 2 below a threshold). ``s0`` is never below ``floor``, the measured
    run-to-run noise of the study (a seeds design: scalinglab.study.noise).
    """
    form = problem.form
    n_params = theta_hat.size
    used = problem.weights > 0
    masks = []
    for q in fractions:
        train = used & (axis <= np.quantile(axis[used], q))
        if train.sum() >= n_params + 2 and (used & ~train).any() and len(np.unique(axis[train])) > 1:
            masks.append(train)
    residuals = form.evaluate(theta_hat[None, :], problem.logx, False)[0][0] - problem.logy
    lo, hi = float(axis[used].min()), float(axis[used].max())
    dof = float(max(int(used.sum()) - n_params, 1))
    fallback = NoiseModel(max(robust_scale(residuals[used], n_params), floor), 0.0, lo, hi, axis_name, dof=dof)
    if not masks:
        return fallback
    W = np.array(masks) * problem.weights  # (S, n): inner training sets as weights
    inner = dataclasses.replace(problem, weights=W)
    theta, _ = minimize_batch(inner, np.repeat(theta_hat[None, :], len(W), axis=0), max_iter=500, ftol=1e-14, newton=True)
    f, dec = expected_decrease(inner, theta)
    ok = is_converged(f, dec)
    if not ok.any():
        return fallback
    logpred, _ = form.evaluate(theta[ok], problem.logx, False)
    logx = np.column_stack([problem.logx[name] for name in form.inputs])  # (n, k)
    center, along = _axis_frame(logx[used], form.axis_values(problem.logx)[used])
    u = _distance_across(logx, center, along)
    errors, dist, cross = [], [], []
    for pred, train in zip(logpred, np.array(masks)[ok]):
        test = used & ~train
        errors.append(pred[test] - problem.logy[test])
        dist.append(axis[test] - axis[train].max())
        cross.append(u[test])
    e2, d2, u2 = np.concatenate(errors) ** 2, np.concatenate(dist) ** 2, np.concatenate(cross) ** 2
    s0_sq, slope_sq, spread_sq, cross_sq = nonnegative_least_squares(np.column_stack([np.ones_like(d2), d2, u2, d2 * u2]), e2)
    s0 = max(np.sqrt(s0_sq), fallback.s0)  # never below the in-sample noise
    return NoiseModel(
        float(s0), float(np.sqrt(slope_sq)), lo, hi, axis_name,
        spread=float(np.sqrt(spread_sq)), center=tuple(map(float, center)), along=tuple(map(float, along)),
        cross=float(np.sqrt(cross_sq)), dof=dof,
    )


def nonnegative_least_squares(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin ||A x - b|| over x >= 0 for a few columns ``A (m, k)``, exact and in numpy (no scipy.optimize import).

    The optimum is the least-squares fit on its own support, so it is the best of the fits on each subset of the
    columns whose coefficients are all >= 0; one QR of ``A`` makes each of those a k x k problem.
    """
    Q, R = np.linalg.qr(A)
    c = Q.T @ b  # ||A x - b||^2 = ||R x - c||^2 + a constant
    k = A.shape[1]
    best, best_res = np.zeros(k), float(c @ c)
    for size in range(1, k + 1):
        for cols in itertools.combinations(range(k), size):
            x, *_ = np.linalg.lstsq(R[:, cols], c, rcond=None)
            res = float(np.sum((R[:, cols] @ x - c) ** 2))
            if np.all(x >= 0) and res < best_res:
                best, best_res = np.zeros(k), res
                best[list(cols)] = x
    return best


def _distance_across(logx: np.ndarray, center, along) -> np.ndarray:
    """Length ``(n,)`` of the part of ``logx - center`` ``(n, k)`` orthogonal to the unit vector ``along``."""
    v = logx - np.asarray(center)
    v = v - np.outer(v @ np.asarray(along), along)
    return np.sqrt((v**2).sum(axis=1))


def _axis_frame(logx: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median log inputs ``(k,)`` and the unit direction ``(k,)`` in which ``axis`` grows (least squares)."""
    center = np.median(logx, axis=0)
    grad, *_ = np.linalg.lstsq(logx - logx.mean(axis=0), axis - axis.mean(), rcond=None)
    norm_ = np.linalg.norm(grad)
    return center, (grad / norm_ if norm_ > 0 else grad)


def prediction_interval(
    form: Form,
    params: Mapping[str, float] | np.ndarray,
    samples: np.ndarray | None,
    noise: NoiseModel,
    X,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` for the target of a new run at each row of ``X``.

    ``params`` is the public point estimate (a mapping or ``(P,)``), ``samples`` bootstrap public parameters
    ``(B, P)`` (None: noise only), ``noise`` the calibrated run-to-run and extrapolation error.
    """
    center = np.log(form.predict(params, X))  # (n,)
    var = noise.sd(form, X) ** 2
    if samples is not None and len(samples) > 1:
        var = var + np.var(np.log(form.predict(samples, X)), axis=0, ddof=1)
    half = t_quantile(0.5 + level / 2, noise.dof) * np.sqrt(var)
    return np.exp(center - half), np.exp(center + half)


def t_quantile(q: float, dof: float) -> float:
    """Student's t quantile with ``dof`` degrees of freedom (the normal's when infinite).

    The Cornish-Fisher expansion of Abramowitz & Stegun 26.7.5 starts Newton's method on the exact tail (4% low
    at the 99.95% quantile at 3 dof and 11% low at 1 by itself); scipy.stats would cost a quarter of a second
    to import.
    """
    from statistics import NormalDist  # here: only intervals need it, and it costs a fit's start-up 6 ms

    z = NormalDist().inv_cdf(q)
    if not np.isfinite(dof):
        return z
    if q < 0.5:
        return -t_quantile(1 - q, dof)
    if q == 0.5:
        return 0.0
    v = max(float(dof), 1.0)
    t = (
        z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )
    if v >= 100:  # the expansion's error is below 3e-9 out to the 99.95% quantile here
        return float(t)
    log_norm = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)
    for _ in range(50):  # Newton on the log of the central mass P(|T| < t) or the tail P(T > t), whichever is small
        x = t * t / (v + t * t)
        density = math.exp(log_norm - (v + 1) / 2 * math.log1p(t * t / v))
        if x < 0.5:
            mass = _beta_regularized(x, 0.5, v / 2)
            step = -(math.log(mass) - math.log(2 * q - 1)) * mass / (2 * density)
        else:
            tail = 0.5 * _beta_regularized(1 - x, v / 2, 0.5)
            step = (math.log(tail) - math.log(1 - q)) * tail / density
        t = max(t + step, t / 2)
        if abs(step) <= 1e-14 * t:
            break
    return float(t)


def _beta_regularized(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz's method; Numerical
    Recipes 6.4), on the side of x where it converges fast."""
    if x <= 0.0 or x >= 1.0:
        return float(x >= 1.0)
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _beta_regularized(1.0 - x, b, a)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f
