"""Optimal learning rate and batch size as functions of N and D, from learning-rate x batch grids.

Runs are grouped into cells of one (N, D). In each cell a smooth surface, quadratic in (log LR,
log B) (cubic in a direction with 6 or more values), is fitted to the runs near the best one, weighted
by how close their loss is to the best within a window that widens only until enough runs count, so
diverged and far-off runs do not bend it. The cell's optimum is the surface's minimum where the
surface is a bowl whose minimum lies inside the grid, the grid's best point (on its edge, warned and
left out of the laws) where the minimum lies beyond it, and otherwise (a flat or saddle surface) the
centre of its near-optimal basin: the mean of (log LR, log B) over the grid weighted by
exp(-(S - S_min)/σ), σ the runs' noise, the middle of a flat stretch rather than an end picked by
noise. Which runs count as near-optimal is what made refits of Step Law's grid disagree (Li et al.
2025, 1,911 runs: η_opt = 1.79·N^-0.713·D^0.307, B_opt = 0.58·D^0.571 in tokens), so no hard cut
decides it. A wild bootstrap of the surface (residual signs flipped) gives each optimum an interval.

The laws η_opt = c·N^a·D^b and B_opt = c·N^x·D^y are then weighted least squares on log optimum
over the cells, each cell weighted by 1/(its bootstrap variance + τ²), τ² the scatter between cells
beyond their own uncertainty (Paule-Mandel). Intervals use Student's t with cells - 3 degrees of
freedom. Problems (an optimum on the grid's edge, too few cells, an exponent the cells cannot
identify) are warnings in the shared ``{"kind", "param", "message"}`` form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from scalinglab import __version__
from scalinglab.atomic import dumps, write_text
from scalinglab.errors import DataError, FitError
from scalinglab.laws.diagnostics import warning

COLUMNS = ("N", "D", "lr", "batch", "loss")
"""The columns a hyper-parameter grid needs: batch is in tokens per optimiser step."""

NEAR_OPTIMAL = 0.01
"""The near-optimal region: runs whose loss is within 1% of the cell's best."""

WINDOW_MIN = 0.005
"""The narrowest weighting window: runs 0.5% above the cell's best count half (weight 1/(1 + (excess/window)²))."""

WINDOW_MAX = 0.5

LOCAL_RUNS = 1.5
"""The window widens (x1.5 from WINDOW_MIN) until the runs' summed weight is this many times the surface's
terms: a fit as local as the grid allows, so a polynomial does not bend to far, steep runs (LOESS-like span)."""

DIVERGED = 0.5
"""Runs more than 50% above the cell's best loss (or with no finite loss) are left out as diverged."""

CELL_TOLERANCE = 0.05
"""N or D values within 5% of each other are one cell (tokens processed move with the batch's rounding)."""

EDGE_FRACTION = 0.05
"""An optimum this close to the grid's end (as a fraction of the cell's log range) is on the edge."""

MESH = 41
"""Points per free dimension of the mesh the basin centre is computed on."""

MIN_SD = 0.01
"""Floor of a cell optimum's log-space sd, so one very confident cell cannot carry a law alone."""


# --------------------------------------------------------------------------------------------------
# Cells


def _clusters(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Labels grouping sorted log values whose neighbours are within ``tolerance`` (relative)."""
    logv = np.log(values)
    order = np.argsort(logv)
    labels = np.empty(len(values), dtype=int)
    k, prev = 0, None
    for i in order:
        if prev is not None and logv[i] - prev > np.log1p(tolerance):
            k += 1
        labels[i], prev = k, logv[i]
    return labels


def assign_cells(table: pd.DataFrame, tolerance: float = CELL_TOLERANCE) -> pd.Series:
    """A cell label per run: its ``cell`` column if there is one (a study's group), else clustered (N, D)."""
    if "cell" in table.columns:
        return table["cell"].astype(str)
    n = _clusters(table["N"].to_numpy(float), tolerance)
    d = _clusters(table["D"].to_numpy(float), tolerance)
    return pd.Series([f"n{a}-d{b}" for a, b in zip(n, d)], index=table.index)


@dataclass
class CellOptimum:
    """The best (LR, batch) of one (N, D) cell: the smooth optimum with intervals, and the best run."""

    cell: str
    N: float
    D: float
    n_runs: int
    best_lr: float
    best_batch: float
    best_loss: float
    lr: float
    """Centre of the fitted surface's near-optimal basin (see the module docstring)."""
    batch: float | None
    """The same for the batch in tokens; None when the cell has a single batch size."""
    loss: float
    """The surface's loss at (lr, batch)."""
    lr_interval: list[float]
    batch_interval: list[float] | None
    lr_sd: float
    """Bootstrap sd of log lr (the cell's weight in the law is 1/(lr_sd² + τ²))."""
    batch_sd: float | None
    near: dict[str, Any]
    """Runs within NEAR_OPTIMAL of the best: their count and LR and batch ranges."""
    surface: str
    """Which terms the surface has, e.g. 'quadratic in log lr and log batch'."""
    noise: float
    """Residual sd of the loss about the surface (nats)."""
    dof: int
    lr_free: bool
    batch_free: bool
    grid: dict[str, list[float]]
    """The cell's runs: lr, batch, loss (for the landscape figure)."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    at_edge: list[str] = field(default_factory=list)
    window: float | None = None
    """The weighting window the surface used (a fraction of the best loss; adaptive unless given)."""
    """'lr' and/or 'batch' where the optimum sits on the grid's edge: a bound, left out of that law."""
    B_crit: float | None = None
    """Kaplan's B_crit at this cell's best loss, when a B_crit(L) law is given (eq 1.4)."""
    B_noise: float | None = None
    """The online gradient noise scale B_simple on this cell's near-optimal runs (median), when measured."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Terms = list[tuple[int, int]]
"""The surface's monomials u^i·v^j as (i, j): u = log lr, v = log batch, centred on the best run."""


def _terms(lr_free: bool, batch_free: bool, two_batches: bool, cross: bool, cubic_u: bool, cubic_v: bool) -> Terms:
    """Which monomials the surface has: a quadratic in each free dimension (cubic where the grid is long
    enough to show the loss rising faster on the high-LR side), the cross term of a tilted valley."""
    terms = [(0, 0)]
    if lr_free:
        terms += [(1, 0), (2, 0)] + ([(3, 0)] if cubic_u else [])
    if batch_free:
        terms += [(0, 1), (0, 2)] + ([(0, 3)] if cubic_v else [])
        if lr_free and cross:
            terms.append((1, 1))
    elif two_batches:  # a level shift between the two batch sizes, no curvature to find an optimum in
        terms.append((0, 1))
    return terms


def _design(u: np.ndarray, v: np.ndarray, terms: Terms) -> np.ndarray:
    return np.column_stack([u**i * v**j for i, j in terms])


def _basin_centre(S: np.ndarray, mesh_u: np.ndarray, mesh_v: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Per surface (rows of S over the mesh): the exp(-(S - S_min)/T)-weighted mean of u and v."""
    w = np.exp(-(S - S.min(axis=1, keepdims=True)) / temperature)
    w /= w.sum(axis=1, keepdims=True)
    return w @ mesh_u, w @ mesh_v


def _optima(
    coefs: np.ndarray, terms: Terms, mu: np.ndarray, mv: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per surface (rows of ``coefs``): its minimum where it is a bowl with the minimum inside the box, the
    box's best point where the bowl's minimum lies beyond it, else the centre of its near-optimal basin over
    the box (a flat or saddle surface has no minimum to trust).

    The minimum is polished by Newton steps from the best mesh point; returns (u, v, surface there).
    """
    S = coefs @ _design(mu, mv, terms).T  # (surfaces, mesh)
    cu, cv = _basin_centre(S, mu, mv, temperature)
    k = np.argmin(S, axis=1)
    u, v = mu[k].copy(), mv[k].copy()
    free = [d for d in (0, 1) if any(t[d] >= 2 for t in terms)]
    if not free:
        return cu, cv, S.min(axis=1)
    C = coefs.T  # (terms, surfaces)

    def deriv(du: int, dv: int) -> np.ndarray:
        out = np.zeros_like(u)
        for (i, j), c in zip(terms, C):
            if i >= du and j >= dv:
                fu = np.prod(range(i - du + 1, i + 1)) if du else 1
                fv = np.prod(range(j - dv + 1, j + 1)) if dv else 1
                out = out + c * fu * fv * u ** (i - du) * v ** (j - dv)
        return out

    with np.errstate(all="ignore"):
        for _ in range(8):
            g = np.stack([deriv(1, 0), deriv(0, 1)], axis=1)[:, free]  # (surfaces, free)
            H = np.array([[deriv(2, 0), deriv(1, 1)], [deriv(1, 1), deriv(0, 2)]]).transpose(2, 0, 1)[:, free][:, :, free]
            step = np.linalg.solve(H + 1e-12 * np.eye(len(free)), g[..., None])[..., 0]
            if 0 in free:
                u = u - step[:, free.index(0)]
            if 1 in free:
                v = v - step[:, free.index(1)]
        H = np.array([[deriv(2, 0), deriv(1, 1)], [deriv(1, 1), deriv(0, 2)]]).transpose(2, 0, 1)[:, free][:, :, free]
        bowl = np.all(np.linalg.eigvalsh(H) > 0, axis=1)
        inside = bowl & np.isfinite(u) & np.isfinite(v)
        inside &= (u >= mu.min()) & (u <= mu.max()) & (v >= mv.min()) & (v <= mv.max())
        s_at = deriv(0, 0)
    # A bowl whose minimum lies beyond the grid: the best point of the box, on its edge (and warned about).
    edge = bowl & ~inside
    cu, cv = np.where(edge, mu[k], cu), np.where(edge, mv[k], cv)
    return np.where(inside, u, cu), np.where(inside, v, cv), np.where(inside, s_at, S.min(axis=1))


def cell_optimum(
    runs: pd.DataFrame,
    cell: str,
    *,
    window: float | None = None,
    near: float = NEAR_OPTIMAL,
    noise: float | None = None,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> CellOptimum:
    """The optimum of one cell's runs (columns N, D, lr, batch, loss); see the module docstring.

    ``noise`` is the loss noise σ that sets the basin's temperature (default: this cell's residual sd;
    :func:`fit_hparams` passes the sd pooled over cells, steadier than one cell's).
    """
    loss_all = runs["loss"].to_numpy(float)
    finite = np.isfinite(loss_all) & (loss_all > 0)
    if not finite.any():
        raise FitError(f"cell {cell}: no run has a finite loss; check the loss column.")
    best_loss = float(loss_all[finite].min())
    keep = finite & (loss_all <= best_loss * (1 + DIVERGED))
    df = runs[keep]
    bootstrap = max(1, bootstrap)
    lr_grid, b_grid = runs["lr"].to_numpy(float), runs["batch"].to_numpy(float)
    x, y, L = np.log(df["lr"].to_numpy(float)), np.log(df["batch"].to_numpy(float)), df["loss"].to_numpy(float)
    ib = int(np.argmin(L))
    n_lr, n_b = len(np.unique(np.round(x, 9))), len(np.unique(np.round(y, 9)))
    warns: list[dict[str, Any]] = []
    where = f"cell {cell} (N={runs['N'].iloc[0]:.3g}, D={runs['D'].iloc[0]:.3g})"
    dropped = len(runs) - len(df)
    if dropped:
        warns.append(warning("outlier", None, f"{where}: {dropped} run(s) diverged or sit >{DIVERGED:.0%} above the best loss; left out of the surface."))
    lr_free, batch_free = n_lr >= 3, n_b >= 3
    x0, y0 = x[ib], y[ib]
    u, v = x - x0, y - y0
    # Drop terms until the surface leaves at least 2 degrees of freedom for its noise (3 for a cubic).
    terms: Terms = []
    for cubic, cross in ((True, True), (False, True), (False, False)):
        terms = _terms(lr_free, batch_free, n_b == 2, cross, cubic and n_lr >= 6, cubic and n_b >= 6)
        if len(L) - len(terms) >= 2 + cubic:
            break
    while len(L) < len(terms) and (lr_free or batch_free):
        if batch_free and (n_b <= n_lr or not lr_free):
            batch_free = False
        else:
            lr_free = False
        terms = _terms(lr_free, batch_free, n_b == 2, False, False, False)
    X = _design(u, v, terms)
    excess = (L - best_loss) / best_loss
    if window is None:  # adaptive: as local as the grid allows (see LOCAL_RUNS)
        window = WINDOW_MIN
        while window < WINDOW_MAX and np.sum(1 / (1 + (excess / window) ** 2)) < min(len(L), LOCAL_RUNS * len(terms) + 2):
            window *= 1.5
    weights = 1 / (1 + (excess / window) ** 2)
    if not lr_free:
        warns.append(warning("unidentified", "lr", f"{where}: {n_lr} learning rate(s) among {len(L)} usable runs; the best run's LR stands for the optimum. Add LRs to the grid."))
    sw = np.sqrt(weights)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], L * sw, rcond=None)
    fitted = X @ coef
    resid = L - fitted
    dof = len(L) - X.shape[1]
    own_noise = float(np.sqrt(np.sum(weights * resid**2) / np.sum(weights) * len(L) / dof)) if dof > 0 else float("nan")
    sigma = noise if noise is not None and noise > 0 else own_noise
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = near * best_loss / 2  # no residual left to measure the noise with: half the near-optimal band
    # The box: the cell's grid, in the free dimensions.
    gu = np.linspace(np.log(lr_grid.min()) - x0, np.log(lr_grid.max()) - x0, MESH) if lr_free else np.zeros(1)
    gv = np.linspace(np.log(b_grid.min()) - y0, np.log(b_grid.max()) - y0, MESH) if batch_free else np.zeros(1)
    mu, mv = (a.ravel() for a in np.meshgrid(gu, gv, indexing="ij"))
    # Bootstrap, all replicates at once: wild (Rademacher signs on residuals inflated for the fitted terms).
    rng = np.random.default_rng(seed)
    if dof >= 2:
        signs = rng.choice([-1.0, 1.0], size=(bootstrap, len(L)))
        Lb = fitted[None, :] + signs * resid[None, :] * np.sqrt(len(L) / dof)  # (bootstrap, runs)
    else:  # (nearly) as many terms as runs: no residuals to resample, so the noise σ of the other cells
        Lb = fitted[None, :] + rng.normal(0.0, sigma, size=(bootstrap, len(L)))
    pinv = np.linalg.pinv(X * sw[:, None])  # (terms, runs)
    coefs = np.vstack([coef, (Lb * sw[None, :]) @ pinv.T])  # (1 + bootstrap, terms)
    cu, cv, smin = _optima(coefs, terms, mu, mv, sigma)
    lr_opt, b_opt = float(np.exp(x0 + cu[0])), float(np.exp(y0 + cv[0]))
    tail = (1 - level) / 2
    lr_int = np.exp(x0 + np.quantile(cu[1:], [tail, 1 - tail])).tolist()
    b_int = np.exp(y0 + np.quantile(cv[1:], [tail, 1 - tail])).tolist()
    lr_sd, b_sd = float(np.std(cu[1:])), float(np.std(cv[1:]))
    if not lr_free:
        lr_opt, lr_int, lr_sd = float(np.exp(x0)), [float(np.exp(x0))] * 2, float("nan")
    single_batch = n_b == 1
    if not batch_free:
        b_opt, b_int, b_sd = float(np.exp(y0)), [float(np.exp(y0))] * 2, float("nan")
        if not single_batch:
            warns.append(warning("unidentified", "batch", f"{where}: {n_b} batch sizes; the best run's batch stands for the optimum. Grid at least 3 batch sizes."))
    at_edge = []
    for name, value, grid in (("lr", lr_opt, lr_grid), ("batch", b_opt, b_grid)):
        if len(np.unique(grid)) < 2:
            continue
        lo, hi = np.log(grid.min()), np.log(grid.max())
        pos = (np.log(value) - lo) / (hi - lo)
        best = x[ib] if name == "lr" else y[ib]
        if np.isclose(best, lo) or np.isclose(best, hi):  # the best run at the grid's end: the optimum is not bracketed (the surface only extrapolates)
            pos = 0.0 if np.isclose(best, lo) else 1.0
        if pos < EDGE_FRACTION or pos > 1 - EDGE_FRACTION:
            side, end = ("lower", grid.min()) if pos < 0.5 else ("upper", grid.max())
            at_edge.append(name)
            warns.append(warning("at_bound", name, f"{where}: the optimal {name} sits at the grid's {side} edge ({end:.4g}); extend the {name} grid {'below' if side == 'lower' else 'above'} it."))
    near_mask = finite & (loss_all <= best_loss * (1 + near))
    near_info = {
        "threshold": float(best_loss * (1 + near)),
        "n_runs": int(near_mask.sum()),
        "lr_range": [float(lr_grid[near_mask].min()), float(lr_grid[near_mask].max())],
        "batch_range": [float(b_grid[near_mask].min()), float(b_grid[near_mask].max())],
    }
    return CellOptimum(
        cell=cell,
        N=float(np.exp(np.log(runs["N"].to_numpy(float)).mean())),
        D=float(np.exp(np.log(runs["D"].to_numpy(float)).mean())),
        n_runs=len(runs),
        best_lr=float(np.exp(x[ib])),
        best_batch=float(np.exp(y[ib])),
        best_loss=best_loss,
        lr=lr_opt,
        batch=None if single_batch else b_opt,
        loss=float(smin[0]),
        lr_interval=[float(a) for a in lr_int],
        batch_interval=None if single_batch else [float(a) for a in b_int],
        lr_sd=lr_sd,
        batch_sd=None if single_batch else b_sd,
        near=near_info,
        surface=_describe(terms, n_b),
        noise=own_noise,
        dof=dof,
        lr_free=lr_free,
        batch_free=batch_free,
        grid={"lr": lr_grid.tolist(), "batch": b_grid.tolist(), "loss": loss_all.tolist()},
        warnings=warns,
        at_edge=at_edge,
        window=float(window),
    )


def _describe(terms: Terms, n_batches: int) -> str:
    """The surface's terms in words, e.g. 'cubic in log lr, quadratic in log batch, with a cross term'."""
    def degree(d: int) -> int:
        return max(t[d] for t in terms if t[1 - d] == 0)

    names = {0: "fixed", 1: "a level per batch", 2: "quadratic", 3: "cubic"}
    lr = names[degree(0)] if degree(0) != 1 else "linear"
    batch = "one batch" if n_batches == 1 else names[degree(1)]
    return f"{lr} in log lr, {batch} in log batch" + (", with a cross term" if (1, 1) in terms else "")


# --------------------------------------------------------------------------------------------------
# Laws over cells


@dataclass
class PowerLaw:
    """value = coef · N^N_exp · D^D_exp, fitted to cell optima in log space, with intervals."""

    target: str
    """'lr' or 'batch' (tokens per step)."""
    coef: float
    N_exp: float | None
    """None when the cells share one N (the law is then of D alone)."""
    D_exp: float | None
    coef_interval: list[float]
    N_exp_interval: list[float] | None
    D_exp_interval: list[float] | None
    cov: list[list[float]]
    """Covariance of (log coef, N_exp, D_exp) over the identified terms, in that order."""
    terms: list[str]
    """Which of 'log_coef', 'N_exp', 'D_exp' were fitted (the order of cov)."""
    scatter: float
    """τ: sd of log optimum between cells beyond each cell's own uncertainty."""
    dof: int
    n_cells: int
    level: float
    N_range: list[float]
    D_range: list[float]
    residuals: list[float] = field(default_factory=list)
    """Log residuals (optimum / law) per cell used."""

    def _row(self, N: np.ndarray, D: np.ndarray) -> np.ndarray:
        cols = {"log_coef": np.ones_like(N), "N_exp": np.log(N), "D_exp": np.log(D)}
        return np.column_stack([cols[t] for t in self.terms])

    def predict(self, N: float | np.ndarray, D: float | np.ndarray) -> np.ndarray:
        """The law's optimum at (N, D)."""
        N, D = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(D, dtype=float))
        return self.coef * N ** (self.N_exp or 0.0) * D ** (self.D_exp or 0.0)

    def interval(self, N: float | np.ndarray, D: float | np.ndarray, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of a new cell's optimum at (N, D): the law's uncertainty plus τ²."""
        level = level or self.level
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float)))
        R = self._row(N, D)
        var = np.einsum("ij,jk,ik->i", R, np.asarray(self.cov), R) + self.scatter**2
        q = stats.t.ppf((1 + level) / 2, self.dof) if self.dof >= 1 else stats.norm.ppf((1 + level) / 2)
        mid = np.log(self.predict(N, D))
        return np.exp(mid - q * np.sqrt(var)), np.exp(mid + q * np.sqrt(var))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PowerLaw:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _paule_mandel(X: np.ndarray, y: np.ndarray, var: np.ndarray) -> float:
    """τ² with Σ r²/(var + τ²) = dof at the WLS solution (Paule & Mandel 1982); 0 when the cells agree."""
    dof = len(y) - X.shape[1]
    if dof < 1:
        return 0.0

    def q(tau2: float) -> float:
        w = 1 / (var + tau2)
        beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        return float(np.sum(w * (y - X @ beta) ** 2)) - dof

    if q(0.0) <= 0:
        return 0.0
    hi = max(float(np.var(y)), 1e-6)
    while q(hi) > 0:
        hi *= 4
    lo = 0.0
    for _ in range(60):  # bisection on a decreasing function
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if q(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def fit_power_law(cells: list[CellOptimum], target: str, level: float = 0.95) -> tuple[PowerLaw | None, list[dict[str, Any]]]:
    """η_opt or B_opt = c·N^a·D^b over the cells that have an optimum for ``target`` (see the module docstring)."""
    warns: list[dict[str, Any]] = []
    name = {"lr": "LR", "batch": "batch"}[target]
    edge = [c.cell for c in cells if getattr(c, target) is not None and target in c.at_edge]
    if edge:  # an optimum on the grid's edge is only a bound on the true one
        warns.append(warning("at_bound", target, f"the {name} law leaves out {len(edge)} cell(s) whose optimum is on the grid's edge ({', '.join(edge)}); widen their grids."))
    fixed = [c.cell for c in cells if getattr(c, target) is not None and not getattr(c, f"{target}_free")]
    if fixed:  # the best run's value where the grid has too few values to find an optimum: no measurement
        warns.append(warning("unidentified", target, f"the {name} law leaves out {len(fixed)} cell(s) with fewer than 3 {name} values ({', '.join(fixed)})."))
    use = [c for c in cells if getattr(c, target) is not None and target not in c.at_edge and getattr(c, f"{target}_free")]
    if len(use) < 2:
        warns.append(warning("too_few_cells", target, f"the {name} law needs optima in at least 2 cells (got {len(use)}); add (N, D) cells to the grid."))
        return None, warns
    N = np.array([c.N for c in use])
    D = np.array([c.D for c in use])
    y = np.log([getattr(c, target) for c in use])
    sd = np.array([getattr(c, f"{target}_sd") for c in use], dtype=float)
    sd = np.where(np.isfinite(sd), np.maximum(sd, MIN_SD), np.nanmax(np.r_[sd[np.isfinite(sd)], MIN_SD]))
    terms = ["log_coef"]
    for t, v in (("N_exp", N), ("D_exp", D)):
        if np.ptp(np.log(v)) > np.log1p(CELL_TOLERANCE):
            terms.append(t)
        else:
            warns.append(warning("unidentified", f"{target}.{t}", f"every cell has the same {t[0]}; the {name} law's {t[0]} exponent cannot be measured. Add cells at other {t[0]}."))
    cols = {"log_coef": np.ones_like(N), "N_exp": np.log(N), "D_exp": np.log(D)}
    X = np.column_stack([cols[t] for t in terms])
    if len(terms) == 3 and np.linalg.cond(X - X.mean(axis=0) * [0, 1, 1]) > 1e6:
        warns.append(warning("unidentified", target, f"the cells' N and D move together, so the {name} law cannot separate the N and D exponents; add cells off that line."))
    if len(use) < len(terms):
        warns.append(warning("too_few_cells", target, f"{len(use)} cells for {len(terms)} coefficients of the {name} law; add cells."))
        return None, warns
    dof = len(use) - len(terms)
    if dof == 0:
        warns.append(warning("too_few_cells", target, f"{len(use)} cells for {len(terms)} coefficients: the {name} law passes through every cell and its intervals hold the cells' own uncertainty only; add cells."))
    tau2 = _paule_mandel(X, y, sd**2)
    w = 1 / (sd**2 + tau2)
    XtWX = X.T @ (X * w[:, None])
    cov = np.linalg.pinv(XtWX)
    beta = cov @ (X.T @ (w * y))
    q = stats.t.ppf((1 + level) / 2, dof) if dof >= 1 else stats.norm.ppf((1 + level) / 2)
    half = q * np.sqrt(np.diag(cov))
    est = dict(zip(terms, beta))
    ints = {t: [float(b - h), float(b + h)] for t, b, h in zip(terms, beta, half)}
    resid = y - X @ beta
    law = PowerLaw(
        target=target,
        coef=float(np.exp(est["log_coef"])),
        N_exp=float(est["N_exp"]) if "N_exp" in est else None,
        D_exp=float(est["D_exp"]) if "D_exp" in est else None,
        coef_interval=[float(np.exp(a)) for a in ints["log_coef"]],
        N_exp_interval=ints.get("N_exp"),
        D_exp_interval=ints.get("D_exp"),
        cov=cov.tolist(),
        terms=terms,
        scatter=float(np.sqrt(tau2)),
        dof=dof,
        n_cells=len(use),
        level=level,
        N_range=[float(N.min()), float(N.max())],
        D_range=[float(D.min()), float(D.max())],
        residuals=resid.tolist(),
    )
    return law, warns


# --------------------------------------------------------------------------------------------------
# The whole fit


@dataclass
class HparamsFit:
    """The hyper-parameter laws of a grid: η_opt(N, D), B_opt(N, D) and every cell's optimum (hparams.json)."""

    lr: PowerLaw | None
    batch: PowerLaw | None
    cells: list[CellOptimum]
    warnings: list[dict[str, Any]]
    settings: dict[str, Any]
    """near, window, bootstrap, level, seed and the pooled loss noise used."""
    source: str = ""
    notes: list[str] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)
    """B_opt against Kaplan's B_crit(L) and the online noise scale on the same cells (median ratios)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": None if self.lr is None else self.lr.to_dict(),
            "batch": None if self.batch is None else self.batch.to_dict(),
            "cells": [c.to_dict() for c in self.cells],
            "comparison": self.comparison,
            "warnings": self.warnings,
            "settings": self.settings,
            "source": self.source,
            "notes": self.notes,
            "scalinglab_version": __version__,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The ``hparams.json`` text (non-finite numbers as null); written to ``path`` when given."""
        text = dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def load(cls, path: str | Path) -> HparamsFit:
        """Read an ``hparams.json`` written by ``scalinglab hparams --out``."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read hparams file '{path}': {e}; write one with `scalinglab hparams RUNS --out {path}`.") from None
        if not isinstance(d, dict) or "lr" not in d or "cells" not in d:
            raise DataError(f"'{path}' is not an hparams.json (no 'lr'/'cells'); write one with `scalinglab hparams RUNS --out`.")
        fields = CellOptimum.__dataclass_fields__
        cells = [CellOptimum(**{k: c.get(k) for k in fields if k in c}) for c in d["cells"]]
        return cls(
            lr=None if d["lr"] is None else PowerLaw.from_dict(d["lr"]),
            batch=None if d.get("batch") is None else PowerLaw.from_dict(d["batch"]),
            cells=cells,
            warnings=d.get("warnings", []),
            settings=d.get("settings", {}),
            source=d.get("source") or str(path),
            notes=d.get("notes", []),
            comparison=d.get("comparison", {}),
        )


def check_table(table: pd.DataFrame) -> pd.DataFrame:
    """The grid's columns, numeric, with rows that cannot be used named in the error."""
    if "batch" not in table.columns and "batch_tokens" in table.columns:  # a runs table of `scalinglab collect`
        table = table.rename(columns={"batch_tokens": "batch"})
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        fix = ",".join(f"{m}=<your column>" for m in missing)
        raise DataError(
            f"the grid has no column {', '.join(repr(m) for m in missing)} (hparams needs {', '.join(COLUMNS)}, batch in "
            f"tokens per step); columns found: {', '.join(map(str, table.columns))}. Map yours with --columns {fix}."
        )
    out = table.copy()
    for c in COLUMNS:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    bad = ~np.isfinite(out[["N", "D", "lr", "batch"]].to_numpy(float)).all(axis=1) | (out[["N", "D", "lr", "batch"]] <= 0).any(axis=1).to_numpy()
    if bad.any():
        rows = ", ".join(map(str, out.index[bad][:10]))
        raise DataError(f"N, D, lr and batch must be positive numbers; row(s) {rows} are not. Fix or remove them.")
    if len(out) < 3:
        raise FitError(f"the grid has {len(out)} run(s); hparams needs LR x batch grids of several runs per (N, D) cell.")
    return out


def fit_hparams(
    table: pd.DataFrame,
    *,
    near: float = NEAR_OPTIMAL,
    window: float | None = None,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
    bcrit: Any = None,
    source: str = "",
) -> HparamsFit:
    """Every cell's optimum and the laws η_opt(N, D), B_opt(N, D) from a grid (columns :data:`COLUMNS`).

    A ``cell`` column, when present, says which runs form a cell (a study's group); ``b_simple`` (the
    online noise scale per run) is compared with B_opt where present. ``bcrit`` is a B_crit(L) law
    (laws.batch.BcritLaw) to compare B_opt with at each cell's best loss.
    """
    if not 0 < near < 1 or not (window is None or 0 < window < 1):
        raise FitError(f"near={near} and window={window} are fractions of the best loss; give values between 0 and 1, e.g. 0.01 and 0.05.")
    table = check_table(table)
    labels = assign_cells(table)
    groups = [(str(k), g) for k, g in table.groupby(labels, sort=False)]
    groups.sort(key=lambda kg: (kg[1]["N"].median(), kg[1]["D"].median()))
    opts = dict(window=window, near=near, bootstrap=bootstrap, level=level, seed=seed)
    warns: list[dict[str, Any]] = []
    dead = [k for k, g in groups if not (np.isfinite(g["loss"].to_numpy(float)) & (g["loss"].to_numpy(float) > 0)).any()]
    if dead:
        warns.append(warning("outlier", None, f"cell(s) {', '.join(dead)} have no run with a finite loss (all diverged?); left out."))
        groups = [(k, g) for k, g in groups if k not in dead]
    if not groups:
        raise FitError("no cell has a run with a finite loss; check the loss column (--columns loss=...).")
    first = [cell_optimum(g, k, **{**opts, "bootstrap": 1}) for k, g in groups]
    # Pool the loss noise over cells (each cell alone has few degrees of freedom), then refit with it.
    dof = np.array([c.dof for c in first])
    ok = (dof > 0) & np.isfinite([c.noise for c in first])
    pooled = float(np.sqrt(np.sum(dof[ok] * np.square([c.noise for c in first])[ok]) / dof[ok].sum())) if ok.any() else None
    cells = [cell_optimum(g, k, noise=pooled, **opts) for k, g in groups]
    cell_warns = [w for c in cells for w in c.warnings]
    diverged = [c for c in cells if any(w["kind"] == "outlier" for w in c.warnings)]
    warns += [w for w in cell_warns if w["kind"] != "outlier"]  # one line for all cells' diverged runs
    if diverged:
        left = sum(int(np.sum(~(np.asarray(c.grid["loss"], float) <= c.best_loss * (1 + DIVERGED)))) for c in diverged)
        warns.append(warning("outlier", None, f"{left} run(s) in {len(diverged)} cell(s) diverged or sit >{DIVERGED:.0%} above their cell's best loss; left out of the surfaces (see each cell's warnings)."))
    small = [c.cell for c in cells if c.n_runs < 6]
    if small:
        warns.append(warning("too_few_runs", None, f"cell(s) {', '.join(small)} have fewer than 6 runs; their optima are rough. Grid more LRs and batches there."))
    lr_law, w_lr = fit_power_law(cells, "lr", level)
    batch_law, w_b = fit_power_law(cells, "batch", level)
    comparison = _compare(cells, table, labels, groups, bcrit, near)
    notes = list(table.attrs.get("notes", []))
    return HparamsFit(
        lr=lr_law,
        batch=batch_law,
        cells=cells,
        warnings=warns + w_lr + w_b,
        settings={**opts, "noise": pooled, "cell_tolerance": CELL_TOLERANCE, "diverged": DIVERGED},
        source=source,
        notes=notes,
        comparison=comparison,
    )


def _compare(cells: list[CellOptimum], table: pd.DataFrame, labels: pd.Series, groups: list, bcrit: Any, near: float) -> dict[str, Any]:
    """Fill each cell's B_crit (at its best loss) and B_noise (median b_simple of its near-optimal runs)."""
    out: dict[str, Any] = {}
    for c, (_, g) in zip(cells, groups):
        if bcrit is not None:
            c.B_crit = float(bcrit(c.best_loss))
        if "b_simple" in g.columns:
            close = g[(g["loss"] <= c.best_loss * (1 + near)) & (g["b_simple"] > 0)]
            if len(close):
                c.B_noise = float(np.median(close["b_simple"]))
    for key in ("B_crit", "B_noise"):
        ratios = [c.batch / getattr(c, key) for c in cells if c.batch is not None and getattr(c, key)]
        if ratios:
            out[f"B_opt_over_{key}"] = float(np.median(ratios))
            out[f"B_opt_over_{key}_cells"] = len(ratios)
    return out


# --------------------------------------------------------------------------------------------------
# A collected study as a grid


def grid_from_runs(runs: pd.DataFrame, design: str | None = None, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """The hp_grid runs of a collected runs table as a grid: N, D, lr, batch (tokens), loss, cell, b_simple.

    ``design`` picks one design by its label (default: every design of kind ``hp_grid``); a cell is a
    design's group, one (size, D). ``b_simple`` is each run's online noise scale (median over the second
    half of its logged steps in ``records``, the metrics of study.collect) where the study measured it.
    """
    from scalinglab.study.selection import finished, groups_in, in_design

    runs = finished(runs)
    if design:
        labels = runs["designs"].fillna(runs["design"]).astype(str).str.split(";") if "designs" in runs.columns else runs["design"].map(lambda d: [d])
        mask = labels.map(lambda ds: design in ds)
        if not mask.any():
            raise DataError(f"no finished runs of a design called '{design}'; designs: {', '.join(sorted(set(runs['design'].astype(str))))}.")
        grid = runs[mask].copy()
        grid["cell"] = [f"{design}:{g}" for g in grid["group"]]
    else:
        mask = in_design(runs, "hp_grid")
        if not mask.any():
            raise DataError("no finished runs of an hp_grid design; add one (see studies/hp_grid.toml) or pass a runs table.")
        grid = runs[mask].copy()
        grid["cell"] = [f"{d}:{gs[0] if gs else g}" for d, g, gs in zip(grid["design"], grid["group"], groups_in(grid, "hp_grid"))]
    grid["batch"] = grid["batch_tokens"]
    if records is not None and "noise_b_simple" in records.columns:
        rec = records[records["run_id"].isin(grid["run_id"]) & records["noise_b_simple"].notna()].sort_values("step")
        late = rec.groupby("run_id")["noise_b_simple"].apply(lambda v: float(np.nanmedian(v.to_numpy(float)[len(v) // 2 :])))
        if len(late):
            grid["b_simple"] = grid["run_id"].map(late)
    grid.attrs = {**runs.attrs, "notes": [*runs.attrs.get("notes", []), f"{len(grid)} hp_grid run(s) in {grid['cell'].nunique()} cell(s)"]}
    return grid


def study_grid(study_dir: str | Path, design: str | None = None) -> pd.DataFrame:
    """:func:`grid_from_runs` of a collected study directory (its runs table and metrics records)."""
    from scalinglab.laws.tables import read_runs_table
    from scalinglab.study.collect import collect_records

    try:
        return grid_from_runs(read_runs_table(study_dir), design, collect_records(study_dir))
    except DataError as e:
        raise DataError(f"'{study_dir}': {e}") from None
