"""The compute-efficient frontier: which model size and how many tokens minimise the loss at a budget.

Chinchilla's three approaches (Hoffmann et al. 2022 §3) and Kaplan et al. 2020 App. B:

- :func:`envelope_frontier`: approach 1, the lower envelope of learning curves at log-spaced compute;
- :func:`isoflop_frontier`: approach 2, each budget's minimum (a C_p-smoothed spline in log N,
  Akima's interpolant, or Hoffmann's parabola), refusing unbracketed budgets, with seed-noise
  bootstrap intervals on the exponents;
- :func:`chinchilla_allocation`: approach 3, the closed form of a fitted L = E + A/N^α + B/D^β (eq 4);
- :class:`KaplanFrontier`: App. B from an L(N, S) fit plus B_crit(L) (eqs B.5-B.10), with the cost of
  an off-optimal model (B.16-B.17), the convergence trade-off (B.11-B.14), the data requirement (4.4)
  and the early-stopping bound (5.7);
- :func:`optimal_allocation` / :func:`iso_loss_cost`: the same questions answered numerically for any
  law L(N, D).

Everything here is pure: arrays or DataFrames in, frozen dataclasses out, so figures can reuse it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate, optimize

from scalinglab.constants import KAPLAN_OVERFITTING, KAPLAN_TABLE3, KAPLAN_TABLE5, KAPLAN_TABLE6, PF_DAY
from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.batch import BcritLaw
from scalinglab.laws.tables import check_run_column, require_positive

LossND = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A law L(N, D) evaluated elementwise on arrays of parameters and tokens."""


# --------------------------------------------------------------------------------------------------
# Power laws through frontier points


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * x^exponent, fitted by least squares in log-log space."""

    coef: float
    exponent: float
    exponent_se: float = float("nan")
    """Standard error of the exponent from the regression (nan with two points; frontier points are
    correlated, so treat it as a lower bound and bootstrap for an honest interval)."""

    def __call__(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.coef * np.asarray(x, dtype=float) ** self.exponent


def fit_power_law(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Fit y ∝ x^p on positive data by ordinary least squares of log y on log x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(np.log(x)) == 0:
        raise FitError(f"a power law needs at least two distinct x values (got {len(x)} points).")
    if np.any(x <= 0) or np.any(y <= 0):
        raise FitError("a power law needs positive x and y values; drop the non-positive rows.")
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    se = float("nan")
    if len(x) > 2:  # residual variance needs a degree of freedom left
        resid = ly - (slope * lx + intercept)
        se = float(np.sqrt(resid @ resid / (len(x) - 2) / np.sum((lx - lx.mean()) ** 2)))
    return PowerLaw(coef=float(np.exp(intercept)), exponent=float(slope), exponent_se=se)


@dataclass(frozen=True)
class Frontier:
    """Compute-optimal points and the power laws N_opt ∝ C^a, D_opt ∝ C^b through them."""

    compute: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray
    n_law: PowerLaw
    d_law: PowerLaw

    @property
    def a(self) -> float:
        """The exponent of N_opt ∝ C^a."""
        return self.n_law.exponent

    @property
    def b(self) -> float:
        """The exponent of D_opt ∝ C^b."""
        return self.d_law.exponent


def _require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what} needs columns {missing}; rename yours or map them with --columns.")


# --------------------------------------------------------------------------------------------------
# Approach 1: the envelope of learning curves


def envelope_frontier(
    curves: pd.DataFrame, num: int = 1500, run_col: str = "run_id", tokens_col: str = "D"
) -> Frontier:
    """Chinchilla approach 1: at ``num`` log-spaced budgets take the run with the lowest loss.

    ``curves`` has one row per evaluation (a ``steps`` table): ``run_col``, ``N``, ``C`` (FLOPs so far),
    ``loss`` and optionally ``tokens_col`` (tokens so far; else C/(6N), which is the tokens of a steps
    table, whose C is 6·N·tokens). Each curve is interpolated linearly in log C and only compared
    inside the range it covers; budgets that no curve covers are left out. Chinchilla used 1500 points
    (Hoffmann App. D.1).
    """
    _require_columns(curves, [run_col, "N", "C", "loss"], "the envelope frontier")
    check_run_column(curves, run_col)
    require_positive(curves, ["N", "C", "loss", *([tokens_col] if tokens_col in curves.columns else [])])
    runs = _run_arrays(curves, run_col, tokens_col)
    if len(runs) < 2:
        raise DataError("the envelope frontier needs learning curves from at least two runs (sizes).")
    log_c = np.linspace(min(r[1][0] for r in runs), max(r[1][-1] for r in runs), num)
    loss = np.full((len(runs), num), np.inf)  # (runs, budgets)
    tokens = np.zeros((len(runs), num))
    for i, (_, lc, lo, log_d) in enumerate(runs):
        inside = (log_c >= lc[0]) & (log_c <= lc[-1])
        loss[i, inside] = np.interp(log_c[inside], lc, lo)
        tokens[i, inside] = np.exp(np.interp(log_c[inside], lc, log_d))
    cols = np.flatnonzero(np.isfinite(loss).any(axis=0))  # budgets inside some curve (none in a gap between them)
    best = np.argmin(loss[:, cols], axis=0)
    n_opt = np.array([runs[i][0] for i in best], dtype=float)
    d_opt, l_opt, c = tokens[best, cols], loss[best, cols], np.exp(log_c[cols])
    return Frontier(c, n_opt, d_opt, l_opt, fit_power_law(c, n_opt), fit_power_law(c, d_opt))


def _run_arrays(curves: pd.DataFrame, run_col: str, tokens_col: str) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(N, log C, loss, log tokens) of each run with 2 or more points, sorted by C: numpy arrays, as the
    envelope and its bootstrap take hundreds of them (pandas indexing per run was most of the report's time)."""
    df = curves.sort_values("C", kind="stable")
    c, n = df["C"].to_numpy(float), df["N"].to_numpy(float)
    d = df[tokens_col].to_numpy(float) if tokens_col in df else c / (6 * n)  # a steps table's C is 6·N·tokens
    codes = pd.factorize(df[run_col], sort=True)[0]  # runs in the order groupby gives them (ties go to the first)
    order = np.argsort(codes, kind="stable")  # grouped by run, each still sorted by C
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    loss = df["loss"].to_numpy(float)
    return [(n[g[0]], np.log(c[g]), loss[g], np.log(d[g])) for g in groups if len(g) >= 2]


def brackets_optimum(envelope: Frontier, bracketed: np.ndarray) -> bool:
    """Whether the ladder brackets the optimum at 2 or more sizes, so that N_opt ∝ C^a is a measurement."""
    return len(np.unique(envelope.n_opt[bracketed])) >= 2


def running_minimum(frontier: Frontier) -> Frontier:
    """The envelope as the best loss reached with at most C: a curve's end makes the raw envelope jump up."""
    return dataclasses.replace(frontier, loss=np.minimum.accumulate(frontier.loss))


def bracket_envelope(c: pd.DataFrame, frontier: Frontier) -> tuple[Frontier, Frontier, np.ndarray, str]:
    """The envelope as a running minimum over C, and its part where the ladder brackets the optimum.

    ``c`` holds the curves ``frontier`` is the envelope of (columns N and C); returns the bracketed part
    (the whole envelope when :func:`brackets_optimum` is False), the whole envelope, the mask of its
    bracketed points and a note on what was left out.

    A curve's end makes the raw envelope jump up (the next size is worse there), so the envelope is the
    best loss reached with at most C (Kaplan Fig 13). N_opt(C) is a measurement only where a smaller size
    is still training at C and a larger size exists; elsewhere the winner is the ladder's edge, or a
    smaller model stopped too early to compete (Kaplan Fig 14's range).
    """
    whole = running_minimum(frontier)
    loss = whole.loss
    span = c.groupby("N")["C"].agg(["min", "max"])
    sizes, lo, hi = span.index.to_numpy(float), span["min"].to_numpy(float), span["max"].to_numpy(float)
    covers = (lo[:, None] <= frontier.compute[None, :]) & (frontier.compute[None, :] <= hi[:, None])  # (sizes, budgets)
    smaller = (covers & (sizes[:, None] < frontier.n_opt[None, :])).any(axis=0)  # a smaller size still training at C
    larger = frontier.n_opt < sizes.max()  # a larger size exists (before its first evaluation it is far behind)
    ok = smaller & larger & np.isclose(loss, frontier.loss)  # a jump up: the winner's curve ended
    if not brackets_optimum(whole, ok):
        return whole, whole, ok, ("the ladder brackets the optimum at fewer than 2 sizes: N_opt(C) below is "
                                  "where the ladder starts or ends, not a measured optimum; add sizes around it")
    keep = Frontier(frontier.compute[ok], frontier.n_opt[ok], frontier.d_opt[ok], loss[ok],
                    fit_power_law(frontier.compute[ok], frontier.n_opt[ok]),
                    fit_power_law(frontier.compute[ok], frontier.d_opt[ok]))
    lo_c, hi_c = frontier.compute[ok].min(), frontier.compute[ok].max()
    note = "" if ok.all() else (f"N_opt(C) fitted over C = {lo_c:.2g} to {hi_c:.2g} FLOPs, where a smaller and a larger "
                                f"size bracket the optimum ({100 * ok.mean():.0f}% of the envelope)")
    return keep, whole, ok, note


def resampled_runs(curves: pd.DataFrame, k: int, seed: int = 0, run_col: str = "run_id") -> Iterator[pd.DataFrame]:
    """``k`` resamplings of a curves table's runs with replacement, each drawn run renamed as a new run
    (its points stay together: the points of one curve are correlated)."""
    ids = curves[run_col].unique()
    rng = np.random.default_rng(seed)
    by_run = {r: g for r, g in curves.groupby(run_col)}
    for _ in range(k):
        yield pd.concat([by_run[r].assign(**{run_col: i}) for i, r in enumerate(rng.choice(ids, len(ids)))])


def envelope_bootstrap(
    curves: pd.DataFrame, k: int = 1000, level: float = 0.95, seed: int = 0, run_col: str = "run_id", tokens_col: str = "D",
    num: int = 200, bracketed: bool = False,
) -> tuple[float, float]:
    """Percentile interval of the envelope's exponent a over ``k`` resamplings of the runs (with replacement).

    Runs, not points, are resampled: the points of one curve are correlated. ``num`` budgets per
    replicate (fewer than the point estimate's 1500) keep a thousand replicates fast. With ``bracketed``
    each replicate's a is that of :func:`bracket_envelope`'s part of its envelope, the interval of an
    estimate so taken (a replicate whose ladder brackets the optimum at fewer than two sizes measures no a
    and is left out); the whole envelope's a, whose winners at the ladder's ends are not optima, lies
    elsewhere (on the demo's runs 0.42 against the bracketed part's 0.23).
    """
    slopes = []
    for sample in resampled_runs(curves, k, seed, run_col):
        if sample["N"].nunique() < 2:
            continue
        try:
            frontier = envelope_frontier(sample, num, run_col, tokens_col)
            if bracketed:
                frontier, whole, ok, _ = bracket_envelope(sample, frontier)
                if not brackets_optimum(whole, ok):
                    continue
            slopes.append(frontier.a)
        except (DataError, FitError):
            continue
    if len(slopes) < 2:
        what = "whose ladder brackets the optimum at two sizes" if bracketed else "with two model sizes"
        raise FitError(f"the envelope bootstrap found fewer than two resamples {what} in {k}; give curves of more "
                       "sizes, each trained past the budget where the next larger size overtakes it.")
    lo, hi = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP profiles

ISOFLOP_METHODS = ("spline", "akima", "parabola")
"""How a budget's minimum is found. ``spline`` (default): the cubic smoothing spline of log loss in
log N whose smoothing minimises Mallows' C_p at the runs' measured noise (:func:`_smoothing_spline`),
which follows a lopsided valley without following the noise; ``akima``: Akima's interpolant through
every size, as Porian et al. 2024 do, best on smooth, finely resolved profiles and misled by noisy
ones; ``parabola``: Hoffmann §3.2's least-squares parabola of loss in log N over the whole budget,
which a lopsided valley drags toward its long side."""

GRID_PER_INTERVAL = 50
"""Points of the interpolant evaluated between neighbouring sizes to locate its minimum."""


@dataclass(frozen=True)
class IsoFlopProfile:
    """One budget's runs and the minimum of its loss against model size."""

    budget: float
    n_runs: int
    n_opt: float
    d_opt: float
    loss_opt: float
    n_range: tuple[float, float]
    """The smallest and largest N sampled at this budget."""
    method: str = "spline"
    n_opt_interval: tuple[float, float] | None = None
    """Bootstrap percentile interval of N_opt at this budget (with ``bootstrap`` > 0)."""


@dataclass(frozen=True)
class IsoFlopResult:
    """Per-budget profiles and the frontier through their minima; refused budgets with the reason."""

    profiles: list[IsoFlopProfile]
    frontier: Frontier
    refused: dict[float, str]
    method: str = "spline"
    noise: float | None = None
    """Standard deviation of log loss of one run (estimated by :func:`profile_noise`, or given); the
    spline's C_p weighs its smoothing against it and the bootstrap perturbs every run by it."""
    a_interval: tuple[float, float] | None = None
    b_interval: tuple[float, float] | None = None
    level: float | None = None
    n_bootstrap: int = 0
    """Bootstrap replicates that gave a frontier (two or more bracketed budgets)."""


def group_budgets(compute: np.ndarray, rel_tol: float = 0.1) -> np.ndarray:
    """Label runs with the budget they share: C values within ``rel_tol`` of a neighbour form a group.

    IsoFLOP runs are planned at a few budgets but their realised C differs a little (rounded steps,
    exact N); each group is labelled with its geometric-mean C.
    """
    compute = np.asarray(compute, dtype=float)
    order = np.argsort(compute)
    log_c = np.log(compute[order])
    group = np.concatenate([[0], np.cumsum(np.diff(log_c) > np.log1p(rel_tol))])
    labels = np.empty_like(compute)
    for g in np.unique(group):
        labels[order[group == g]] = np.exp(log_c[group == g].mean())
    return labels


def _profile_points(n: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log N, log loss) sorted by N, the best run of each size (a size tried twice keeps its lower loss)."""
    df = pd.DataFrame({"n": np.asarray(n, dtype=float), "loss": np.asarray(loss, dtype=float)})
    best = df.groupby("n", sort=True)["loss"].min()
    return np.log(best.index.to_numpy(float)), np.log(best.to_numpy(float))


def _grid_minimum(grid: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum of curves sampled on ``grid`` (grid, replicates), refined by the parabola through the
    three grid points around it; nan where the minimum is at an end of the grid."""
    k = np.argmin(values, axis=0)
    ok = (k > 0) & (k < len(grid) - 1)
    kc = np.clip(k, 1, len(grid) - 2)
    cols = np.arange(values.shape[1])
    y0, y1, y2 = values[kc - 1, cols], values[kc, cols], values[kc + 1, cols]
    curv = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curv > 0, 0.5 * (y0 - y2) / curv, 0.0)
    x = grid[kc] + shift * (grid[1] - grid[0])
    return np.where(ok, x, np.nan), np.where(ok, y1 - 0.25 * (y0 - y2) * shift, np.nan)


def _profile_minimum(ln: np.ndarray, ll: np.ndarray, method: str, sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(log N_opt, log loss at it) of profiles ``ll`` (sizes, replicates) by ``method``;
    nan where a replicate has no interior minimum. ``sigma`` is the noise of log loss the spline's C_p uses."""
    ll = ll.reshape(len(ln), -1)
    if method == "parabola":
        c2, c1, c0 = np.polyfit(ln, np.exp(ll), 2)  # loss, not log loss, as Hoffmann §3.2
        with np.errstate(divide="ignore", invalid="ignore"):
            x = -c1 / (2 * c2)
        ok = (c2 > 0) & (x > ln[0]) & (x < ln[-1])
        return np.where(ok, x, np.nan), np.where(ok, np.log(np.abs(c0 + x * (c1 + x * c2))), np.nan)
    grid = np.linspace(ln[0], ln[-1], (len(ln) - 1) * GRID_PER_INTERVAL + 1)
    if method == "akima":
        return _grid_minimum(grid, interpolate.Akima1DInterpolator(ln, ll, axis=0)(grid))
    # Reinsch 1967: the smoothing spline is the natural cubic spline through its own fitted values
    fitted = _smoothing_spline(ln, ll, sigma)
    return _grid_minimum(grid, interpolate.CubicSpline(ln, fitted, bc_type="natural", axis=0)(grid))


SMOOTHING_GRID = 241
"""Log-spaced smoothing parameters searched per profile, 8 e-folds beyond the penalty's eigenvalue range."""


def _roughness(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of Reinsch's roughness matrix K = Q R⁻¹ Qᵀ on the knots ``x``:
    fᵀ K f = ∫ s''² for the natural cubic spline s through the values f (Green & Silverman 1994 §2.1)."""
    n, h = len(x), np.diff(x)
    q, r = np.zeros((n, n - 2)), np.zeros((n - 2, n - 2))
    for j in range(1, n - 1):
        q[j - 1 : j + 2, j - 1] = 1 / h[j - 1], -1 / h[j - 1] - 1 / h[j], 1 / h[j]
        r[j - 1, j - 1] = (h[j - 1] + h[j]) / 3
        if j < n - 2:
            r[j - 1, j] = r[j, j - 1] = h[j] / 6
    k = q @ np.linalg.solve(r, q.T)
    eig, vec = np.linalg.eigh((k + k.T) / 2)
    return np.clip(eig, 0.0, None), vec


def _smoothing_spline(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """Fitted values ``(n, r)`` of the cubic smoothing spline of each column of ``y``, its smoothing chosen per
    column by Mallows' C_p, RSS + 2σ² tr H, the unbiased estimate of its error against the true profile
    (Mallows 1973).

    C_p uses the runs' measured noise ``sigma`` (pooled over budgets, so a budget of five sizes still gets a
    sensible amount of smoothing); the rule RSS = nσ² over-smooths, it ignores the degrees of freedom the
    spline spends. ``sigma`` = 0 interpolates. In the penalty's eigenbasis every candidate is a shrinkage
    of the coordinates, so all candidates and columns are scored at once.
    """
    if not sigma > 0:
        return y
    eig, vec = _roughness(x)
    z = vec.T @ y  # (n, r): coordinates in the penalty's eigenbasis
    positive = eig[eig > 1e-12 * eig.max()]
    lam = np.exp(np.linspace(-np.log(positive.max()) - 8, -np.log(positive.min()) + 8, SMOOTHING_GRID))
    shrink = lam[:, None] * eig / (1 + lam[:, None] * eig)  # (lambdas, n): eigenvalues of I - H
    score = shrink**2 @ z**2 + 2 * sigma**2 * (1 - shrink).sum(1, keepdims=True)  # (lambdas, r)
    best = np.argmin(score, axis=0)
    return vec @ ((1 - shrink[best]).T * z)


def _check_bracketed(where: str, ln: np.ndarray, ll: np.ndarray) -> None:
    """FitError unless the budget has three sizes and its best run is not the smallest or largest."""
    if len(ln) < 3:
        raise FitError(f"{where} has {len(ln)} distinct model sizes; locating a minimum needs at least 3.")
    k = int(np.argmin(ll))
    if k in (0, len(ln) - 1):
        side = "smaller" if k == 0 else "larger"
        raise FitError(
            f"{where} has its lowest loss at the {'smallest' if k == 0 else 'largest'} N sampled "
            f"({np.exp(ln[k]):.3g}): no interior minimum; add runs with {side} N at this budget or drop the budget."
        )


def isoflop_profile(
    budget: float, n: np.ndarray, loss: np.ndarray, method: str = "spline", noise: float | None = None
) -> IsoFlopProfile:
    """One budget's minimum of loss against N (see :data:`ISOFLOP_METHODS`); FitError unless it is interior.

    A minimum at or beyond the smallest or largest N sampled is an extrapolation, not a measurement
    (Hoffmann §3.2 fit bracketed profiles), so it is refused with what to add. ``noise`` is the sd of
    log loss (default: :func:`profile_noise` of this budget alone; where that cannot be measured, fewer
    than five sizes, the spline interpolates).
    """
    if method not in ISOFLOP_METHODS:
        raise ConfigError(f"unknown IsoFLOP method '{method}'; choose one of {', '.join(ISOFLOP_METHODS)}.")
    where = f"the IsoFLOP profile at C={budget:.3g}"
    ln, ll = _profile_points(n, loss)
    _check_bracketed(where, ln, ll)
    sigma = profile_noise([(ln, ll)]) if noise is None else float(noise)
    x, y = _profile_minimum(ln, ll, method, sigma if np.isfinite(sigma) else 0.0)
    if not np.isfinite(x[0]):
        raise FitError(
            f"{where} has no minimum inside the sampled N [{np.exp(ln[0]):.3g}, {np.exp(ln[-1]):.3g}] "
            f"by the {method} fit; add runs on both sides of the best N."
        )
    n_opt = float(np.exp(x[0]))
    n_range = (float(np.exp(ln[0])), float(np.exp(ln[-1])))
    return IsoFlopProfile(budget, len(np.asarray(n)), n_opt, budget / (6 * n_opt), float(np.exp(y[0])), n_range, method)


def profile_noise(profiles: list[tuple[np.ndarray, np.ndarray]], half: int = 2) -> float:
    """The evaluation noise of the runs, as a standard deviation of log loss, from the profiles' shape alone.

    Each run near a budget's minimum is predicted by the quadratic in log N through its ``half``
    neighbours on each side; the robust sd (1.4826 MAD) of these leave-one-out residuals, scaled to
    one run's noise, pools every budget. Smooth curvature is absorbed by the quadratic, so what is
    left is run-to-run scatter (seed noise, readout), plus a little misfit that only widens intervals.
    With fewer than five such residuals (budgets of five sizes leave one each), the pooled residual sd
    of a quadratic in log N through each budget no wider than that window plus one (4 to 2*half + 2
    sizes, where the quadratic is as local as the window), when they leave three or more degrees of
    freedom (three budgets of five sizes leave six); nan otherwise.
    """
    resid = []
    for ln, ll in profiles:
        k = int(np.argmin(ll))
        for i in range(max(half, k - half), min(len(ln) - half, k + half + 1)):
            idx = [j for j in range(i - half, i + half + 1) if j != i]
            c = np.polyfit(ln[idx] - ln[i], ll[idx], 2)
            x = np.vander(ln[idx] - ln[i], 3)
            var = 1 + float(np.array([0, 0, 1]) @ np.linalg.inv(x.T @ x) @ np.array([0, 0, 1]))  # prediction variance
            resid.append((ll[i] - c[2]) / np.sqrt(var))
    if len(resid) >= 5:
        return float(1.4826 * np.median(np.abs(resid)))
    fits = [(ll - np.polyval(np.polyfit(ln, ll, 2), ln), len(ln) - 3) for ln, ll in profiles
            if 4 <= len(ln) <= 2 * half + 2]
    dof = sum(d for _, d in fits)
    if dof < 3:
        return float("nan")
    return float(np.sqrt(sum(float(r @ r) for r, _ in fits) / dof))


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


def isoflop_frontier(
    runs: pd.DataFrame,
    budget_col: str | None = None,
    rel_tol: float = 0.1,
    strict: bool = True,
    method: str = "spline",
    bootstrap: int = 0,
    level: float = 0.95,
    noise: float | None = None,
    seed: int = 0,
) -> IsoFlopResult:
    """Chinchilla approach 2: each budget's minimum, then N_opt ∝ C^a and D_opt ∝ C^b through the minima.

    ``runs`` has ``N``, ``C`` and ``loss`` (one row per run, or per checkpoint read at its budget).
    Budgets come from ``budget_col`` or from grouping C within ``rel_tol`` (:func:`group_budgets`). A
    budget whose best run is its smallest or largest model has no interior minimum: with ``strict``
    it raises :class:`FitError`, otherwise it is left out and listed in ``refused``. D_opt = C/(6 N_opt),
    the convention of Hoffmann §3, so b = 1 - a.

    With ``bootstrap`` > 0 every run's log loss is perturbed by Gaussian noise of sd ``noise``
    (default: :func:`profile_noise` of the data), every minimum is found again (a replicate drops a
    budget whose minimum moved to an edge) and the power law refitted: Porian et al. 2024's
    seed-noise bootstrap, with the noise measured rather than assumed. The spline chooses its smoothing
    again in every replicate, so the interval includes that choice. The power law is an unweighted
    regression: weighting budgets by their bootstrap spread put 6 of Porian's 10 configurations inside
    the published band, against 9 unweighted (the spreads are themselves noisy estimates).
    """
    if method not in ISOFLOP_METHODS:
        raise ConfigError(f"unknown IsoFLOP method '{method}'; choose one of {', '.join(ISOFLOP_METHODS)}.")
    if not 0 < level < 1:
        raise ConfigError(f"the interval level must be between 0 and 1, e.g. 0.95 (got {level}).")
    needed = ["N", "C", "loss", *([budget_col] if budget_col else [])]
    _require_columns(runs, needed, "the IsoFLOP frontier")
    require_positive(runs, needed)
    if not len(runs):
        raise DataError("the IsoFLOP frontier needs runs at a few budgets; the table has none.")
    budgets = runs[budget_col].to_numpy(float) if budget_col else group_budgets(runs["C"].to_numpy(float), rel_tol)
    groups = {float(b): runs[budgets == b] for b in np.unique(budgets)}
    all_points = {b: _profile_points(g["N"].to_numpy(), g["loss"].to_numpy()) for b, g in groups.items()}
    sigma = profile_noise(list(all_points.values())) if noise is None else float(noise)
    profiles, refused = [], {}
    for budget, group in groups.items():
        try:
            profiles.append(isoflop_profile(budget, group["N"].to_numpy(), group["loss"].to_numpy(), method, sigma))
        except FitError as e:
            if strict:
                raise
            refused[budget] = str(e)
    if len(profiles) < 2:
        raise FitError(
            f"only {len(profiles)} budget(s) have an interior minimum; the frontier needs at least 2 "
            "(add runs around the best N of each budget)."
        )
    c = np.array([p.budget for p in profiles])
    n_opt = np.array([p.n_opt for p in profiles])
    d_opt = np.array([p.d_opt for p in profiles])
    loss = np.array([p.loss_opt for p in profiles])
    frontier = Frontier(c, n_opt, d_opt, loss, fit_power_law(c, n_opt), fit_power_law(c, d_opt))
    result = IsoFlopResult(profiles, frontier, refused, method, sigma if np.isfinite(sigma) else None)
    if bootstrap <= 0:
        return result
    return _bootstrap_isoflop(result, [all_points[p.budget] for p in profiles], bootstrap, level, seed)


def _bootstrap_isoflop(
    result: IsoFlopResult, points: list[tuple[np.ndarray, np.ndarray]], k: int, level: float, seed: int
) -> IsoFlopResult:
    """Intervals on a, b and each N_opt from noise-perturbed replicates (see :func:`isoflop_frontier`)."""
    sigma = result.noise
    if sigma is None or sigma < 0:
        raise FitError(
            "the IsoFLOP bootstrap cannot estimate the runs' noise (it needs budgets of seven or more sizes, or "
            "three of five); "
            "pass the noise of log loss, e.g. --noise 0.003, or --bootstrap 0."
        )
    rng = np.random.default_rng(seed)
    log_n = np.vstack([
        _profile_minimum(ln, ll[:, None] + sigma * rng.standard_normal((len(ll), k)), p.method, sigma)[0]
        for p, (ln, ll) in zip(result.profiles, points)
    ])  # (budgets, replicates); nan where a replicate lost the interior minimum
    log_c = np.log(result.frontier.compute)
    slopes = []
    for j in range(k):
        keep = np.isfinite(log_n[:, j])
        if keep.sum() >= 2 and np.ptp(log_c[keep]) > 0:
            slopes.append(_slope(log_c[keep], log_n[keep, j]))
    if len(slopes) < k // 2:
        raise FitError(
            f"only {len(slopes)} of {k} bootstrap replicates kept two bracketed budgets; add runs around "
            "each budget's best N so its minimum stays interior."
        )
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = (float(v) for v in np.quantile(slopes, q))
    profiles = []
    for p, row in zip(result.profiles, log_n):
        ok = np.isfinite(row)
        interval = tuple(float(v) for v in np.exp(np.quantile(row[ok], q))) if ok.sum() >= 2 else None
        profiles.append(dataclasses.replace(p, n_opt_interval=interval))
    return dataclasses.replace(
        result, profiles=profiles, noise=sigma, a_interval=(lo, hi), b_interval=(1 - hi, 1 - lo), level=level,
        n_bootstrap=len(slopes),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Approach 3: the parametric closed form, and the numeric answer for any L(N, D)


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal model size and tokens at each budget (arrays broadcast with ``compute``)."""

    compute: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray

    @property
    def tokens_per_param(self) -> np.ndarray:
        return self.d_opt / self.n_opt


def chinchilla_allocation(
    E: float, A: float, B: float, alpha: float, beta: float, compute: np.ndarray | float
) -> Allocation:
    """Hoffmann eq 4 under C = 6ND: N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b.

    G = (αA/(βB))^(1/(α+β)), a = β/(α+β), b = α/(α+β); the loss is the law at (N_opt, D_opt).
    """
    c = np.asarray(compute, dtype=float)
    g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    n = g * (c / 6) ** (beta / (alpha + beta))
    d = (c / 6) ** (alpha / (alpha + beta)) / g
    return Allocation(c, n, d, E + A / n**alpha + B / d**beta)


def optimal_allocation(loss_nd: LossND, compute: np.ndarray | float, grid: int = 241) -> Allocation:
    """Minimise L(N, C/(6N)) over log N at each budget, for any law of N and D.

    A coarse grid over N in [C^0.1, C^0.9 / 6] (so that both N and D are at least C^0.1) finds the
    basin, then a bounded scalar search refines it; a minimum at the edge of the grid means the law
    has no compute-optimal size, and is refused.
    """
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    n_opt = np.empty_like(c)
    for i, ci in enumerate(c):
        ln = np.linspace(0.1 * np.log(ci), 0.9 * np.log(ci) - np.log(6), grid)
        with np.errstate(all="ignore"):
            vals = loss_nd(np.exp(ln), ci / (6 * np.exp(ln)))
        k = int(np.nanargmin(vals))
        if k in (0, grid - 1):
            raise FitError(
                f"the law's loss at C={ci:.3g} keeps falling toward N={np.exp(ln[k]):.3g}: it has no "
                "compute-optimal size (check its fitted exponents, or fit chinchilla)."
            )
        lo, hi = ln[max(k - 1, 0)], ln[min(k + 1, grid - 1)]
        res = optimize.minimize_scalar(
            lambda x, ci=ci: float(loss_nd(np.exp(x), ci / (6 * np.exp(x)))), bounds=(lo, hi), method="bounded"
        )
        n_opt[i] = np.exp(res.x)
    d_opt = c / (6 * n_opt)
    shape = np.shape(compute)
    return Allocation(
        c.reshape(shape), n_opt.reshape(shape), d_opt.reshape(shape), np.asarray(loss_nd(n_opt, d_opt)).reshape(shape)
    )


def compute_for_loss(loss_at_budget: Callable[[float], float], target: float, lo: float = 1e6, hi: float = 1e40) -> float:
    """The budget at which a frontier's loss reaches ``target``, by root-finding in log C.

    ``loss_at_budget`` must decrease with C; FitError when the target is out of reach in [lo, hi]
    (typically below the law's irreducible loss).
    """
    f = lambda lc: loss_at_budget(float(np.exp(lc))) - target  # noqa: E731
    if f(np.log(lo)) < 0:
        raise FitError(f"the target loss {target} is already reached at C={lo:.3g}; ask for a lower target.")
    if f(np.log(hi)) > 0:
        raise FitError(
            f"the target loss {target} is not reached even at C={hi:.3g} (the law's floor is "
            f"{loss_at_budget(hi):.4g}); ask for a higher target."
        )
    return float(np.exp(optimize.brentq(f, np.log(lo), np.log(hi), xtol=1e-10)))


LOSS_RESOLUTION = 1e-10
"""Relative loss change below which :func:`iso_loss_cost` gives no root: float64 keeps 16 digits, and a root
of a difference 1e-10 of the loss keeps about six of them."""


def iso_loss_cost(loss_nd: LossND, n_opt: float, d_opt: float, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute and tokens a model ``ratio``x the optimal size needs to reach the optimum's loss.

    Returns (C/C_opt, D/D_opt) per ratio under C = 6ND; nan where no D reaches the loss (a model too
    small to ever get there), and everywhere when an e-fold more data moves the loss by less than
    ``LOSS_RESOLUTION`` of it (a floor E with a reducible part lost to float rounding: the roots would be
    noise). The numeric analogue of Kaplan eq B.16 for any L(N, D).
    """
    target = float(loss_nd(np.asarray(n_opt), np.asarray(d_opt)))
    d_ratio = np.full(len(ratios), np.nan)
    if not abs(float(loss_nd(np.asarray(n_opt), np.asarray(d_opt * np.e))) - target) > LOSS_RESOLUTION * abs(target):
        return d_ratio, d_ratio
    for i, r in enumerate(ratios):
        f = lambda ld, n=r * n_opt: float(loss_nd(np.asarray(n), np.exp(np.asarray(ld)))) - target  # noqa: E731
        lo, hi = np.log(d_opt) - 30, np.log(d_opt) + 30
        if f(hi) < 0 < f(lo):
            d_ratio[i] = np.exp(optimize.brentq(f, lo, hi, xtol=1e-12)) / d_opt
    return np.asarray(ratios) * d_ratio, d_ratio


# --------------------------------------------------------------------------------------------------
# Kaplan et al. 2020 App. B: the frontier from L(N, S) and B_crit(L)


@dataclass(frozen=True)
class KaplanFrontier:
    """Kaplan App. B: the compute-efficient frontier implied by L(N, S_min) (eq 1.6) and B_crit(L) (eq 1.4).

    Compute here is C_min = 6 N E_min (batch ≪ B_crit) and steps are S_min (batch ≫ B_crit); training at
    B = B_crit costs 2 C_min in 2 S_min steps (eq 5.2). Defaults are Kaplan Table 3 (L(N, S)) and
    Table 5 (B*, α_B).
    """

    N_c: float = KAPLAN_TABLE3["N_c"]
    alpha_N: float = KAPLAN_TABLE3["alpha_N"]
    S_c: float = KAPLAN_TABLE3["S_c"]
    alpha_S: float = KAPLAN_TABLE3["alpha_S"]
    B_star: float = KAPLAN_TABLE5["B_star"]
    """B_crit(L) = B*/L^(1/α_B), in tokens."""
    alpha_B: float = KAPLAN_TABLE5["alpha_B"]

    @classmethod
    def from_laws(cls, ns_params: Mapping[str, float], bcrit: BcritLaw) -> KaplanFrontier:
        """From the parameters of a ``kaplan_ns`` fit (N_c, alpha_N, S_c, alpha_S) and a B_crit(L) law."""
        p = ns_params
        return cls(p["N_c"], p["alpha_N"], p["S_c"], p["alpha_S"], bcrit.B_star, bcrit.alpha_B)

    @property
    def alpha_C(self) -> float:
        """Eq B.7: α_C^min = 1/(1/α_S + 1/α_B + 1/α_N)."""
        return 1 / (1 / self.alpha_S + 1 / self.alpha_B + 1 / self.alpha_N)

    @property
    def f(self) -> float:
        """Eq B.11: the distance from convergence of compute-efficient training, α_N/α_S (about 10%)."""
        return self.alpha_N / self.alpha_S

    @property
    def C_c(self) -> float:
        """Eq B.8, in FLOPs."""
        r = self.alpha_N / self.alpha_S
        return (
            6 * self.N_c * self.B_star * self.S_c
            * (1 + r) ** (1 / self.alpha_S + 1 / self.alpha_N)
            * (1 / r) ** (1 / self.alpha_S)
        )  # fmt: skip

    def loss(self, c_min: np.ndarray | float) -> np.ndarray:
        """Eq B.6: the frontier loss L(C_min) = (C_c/C_min)^α_C."""
        return (self.C_c / np.asarray(c_min, dtype=float)) ** self.alpha_C

    def n_opt(self, c_min: np.ndarray | float) -> np.ndarray:
        """Eq B.9: N_eff(C_min) = N_c (C_min/C_c)^(α_C/α_N) (1 + α_N/α_S)^(1/α_N)."""
        c = np.asarray(c_min, dtype=float)
        return self.N_c * (c / self.C_c) ** (self.alpha_C / self.alpha_N) * (1 + self.f) ** (1 / self.alpha_N)

    def s_min(self, c_min: np.ndarray | float) -> np.ndarray:
        """Eq B.10: S_min(C_min) = C_c/(6 N_c B*) (1 + α_N/α_S)^(-1/α_N) (C_min/C_c)^(α_C/α_S)."""
        c = np.asarray(c_min, dtype=float)
        scale = self.C_c / (6 * self.N_c * self.B_star) * (1 + self.f) ** (-1 / self.alpha_N)
        return scale * (c / self.C_c) ** (self.alpha_C / self.alpha_S)

    def b_crit(self, loss: np.ndarray | float) -> np.ndarray:
        """Eq 1.4: B_crit(L) = B*/L^(1/α_B), in tokens."""
        return BcritLaw(self.B_star, self.alpha_B)(loss)

    def converged_loss(self, n: np.ndarray | float) -> np.ndarray:
        """L(N, ∞) = (N_c/N)^α_N, the S → ∞ limit of eq 1.6."""
        return (self.N_c / np.asarray(n, dtype=float)) ** self.alpha_N

    def loss_ns(self, n: np.ndarray | float, s_min: np.ndarray | float) -> np.ndarray:
        """Eq 1.6: L(N, S_min) = (N_c/N)^α_N + (S_c/S_min)^α_S."""
        return self.converged_loss(n) + (self.S_c / np.asarray(s_min, dtype=float)) ** self.alpha_S

    def excess_compute(self, ratio: np.ndarray | float) -> np.ndarray:
        """Eq B.16: C(N, N_eff)/C(N_eff, N_eff) for a model ``ratio`` = N/N_eff times the optimum."""
        return np.asarray(ratio, dtype=float) * self.excess_steps(ratio)

    def excess_steps(self, ratio: np.ndarray | float) -> np.ndarray:
        """Eq B.17: S(N, N_eff)/S(N_eff, N_eff); nan where the model can never reach the loss."""
        r = np.asarray(ratio, dtype=float)
        base = 1 + (self.alpha_S / self.alpha_N) * (1 - r ** (-self.alpha_N))
        with np.errstate(invalid="ignore"):
            return np.where(base > 0, np.abs(base) ** (-1 / self.alpha_S), np.nan)

    def convergence_tradeoff(self, f: float, f_ref: float = 0.02) -> tuple[float, float, float]:
        """Eqs B.12-B.14: (N, S, C) at distance f from convergence relative to f_ref (Kaplan: 2.7, 0.13, 0.35)."""
        n_ratio = ((1 + f) / (1 + f_ref)) ** (1 / self.alpha_N)
        s_ratio = ((1 + 1 / f) / (1 + 1 / f_ref)) ** (1 / self.alpha_S)
        return n_ratio, s_ratio, n_ratio * s_ratio

    def early_stopping_steps(self, loss_nd: np.ndarray | float, loss_converged: np.ndarray | float) -> np.ndarray:
        """Eq 5.7: S_stop ≳ S_c / (L(N, D) - L(N, ∞))^(1/α_S), the S_min at which early stopping happens."""
        gap = np.asarray(loss_nd, dtype=float) - np.asarray(loss_converged, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gap > 0, self.S_c / np.abs(gap) ** (1 / self.alpha_S), np.inf)


def kaplan_min_tokens(n: np.ndarray | float) -> np.ndarray:
    """Eq 4.4: tokens needed to keep overfitting below seed noise, D ≳ 5e3 N^0.74 (N non-embedding)."""
    return KAPLAN_OVERFITTING["D_e"] * np.asarray(n, dtype=float) ** KAPLAN_OVERFITTING["p"]


@dataclass(frozen=True)
class KaplanTable6:
    """Kaplan Table 6: the measured compute-efficient allocation, X = X_e C_min^p with C_min in PF-days."""

    N_e: float = KAPLAN_TABLE6["N_e"]
    p_N: float = KAPLAN_TABLE6["p_N"]
    B_e: float = KAPLAN_TABLE6["B_e"]
    p_B: float = KAPLAN_TABLE6["p_B"]
    S_e: float = KAPLAN_TABLE6["S_e"]
    p_S: float = KAPLAN_TABLE6["p_S"]
    D_e: float = KAPLAN_TABLE6["D_e"]
    p_D: float = KAPLAN_TABLE6["p_D"]
    C_c_min: float = KAPLAN_TABLE5["C_c_min"]
    """L(C_min) = (C_c_min/C_min)^α_C^min, C_min in PF-days (Kaplan Table 5)."""
    alpha_C_min: float = KAPLAN_TABLE5["alpha_C_min"]

    def n_opt(self, c_min: np.ndarray | float) -> np.ndarray:
        return self.N_e * (np.asarray(c_min, dtype=float) / PF_DAY) ** self.p_N

    def batch(self, c_min: np.ndarray | float) -> np.ndarray:
        return self.B_e * (np.asarray(c_min, dtype=float) / PF_DAY) ** self.p_B

    def s_min(self, c_min: np.ndarray | float) -> np.ndarray:
        return self.S_e * (np.asarray(c_min, dtype=float) / PF_DAY) ** self.p_S

    def d_opt(self, c_min: np.ndarray | float) -> np.ndarray:
        """Tokens processed at B = B_crit, i.e. 2 E_min (eq 6.7: D = 2 C_min / (6 N))."""
        return self.D_e * (np.asarray(c_min, dtype=float) / PF_DAY) ** self.p_D

    def loss(self, c_min: np.ndarray | float) -> np.ndarray:
        return (self.C_c_min / (np.asarray(c_min, dtype=float) / PF_DAY)) ** self.alpha_C_min
