"""The compute-efficient frontier: which model size and how many tokens minimise the loss at a budget.

Chinchilla's three approaches (Hoffmann et al. 2022 §3) and Kaplan et al. 2020 App. B:

- :func:`envelope_frontier`: approach 1, the lower envelope of learning curves at log-spaced compute;
- :func:`isoflop_frontier`: approach 2, a parabola in log N per budget, refusing unbracketed minima;
- :func:`chinchilla_allocation`: approach 3, the closed form of a fitted L = E + A/N^α + B/D^β (eq 4);
- :class:`KaplanFrontier`: App. B from an L(N, S) fit plus B_crit(L) (eqs B.5-B.10), with the cost of
  an off-optimal model (B.16-B.17), the convergence trade-off (B.11-B.14), the data requirement (4.4)
  and the early-stopping bound (5.7);
- :func:`optimal_allocation` / :func:`iso_loss_cost`: the same questions answered numerically for any
  law L(N, D).

Everything here is pure: arrays or DataFrames in, frozen dataclasses out, so figures can reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from scalinglab.constants import KAPLAN_OVERFITTING, KAPLAN_TABLE3, KAPLAN_TABLE5, KAPLAN_TABLE6, PF_DAY
from scalinglab.errors import DataError, FitError
from scalinglab.laws.batch import BcritLaw

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
    inside the range it covers. Chinchilla used 1500 points (Hoffmann App. D.1).
    """
    _require_columns(curves, [run_col, "N", "C", "loss"], "the envelope frontier")
    runs = [g.sort_values("C") for _, g in curves.groupby(run_col) if len(g) >= 2]
    if len(runs) < 2:
        raise DataError("the envelope frontier needs learning curves from at least two runs (sizes).")
    log_c = np.linspace(
        np.log(min(r["C"].iloc[0] for r in runs)), np.log(max(r["C"].iloc[-1] for r in runs)), num
    )
    loss = np.full((len(runs), num), np.inf)  # (runs, budgets)
    tokens = np.zeros((len(runs), num))
    for i, r in enumerate(runs):
        lc = np.log(r["C"].to_numpy(float))
        inside = (log_c >= lc[0]) & (log_c <= lc[-1])
        loss[i, inside] = np.interp(log_c[inside], lc, r["loss"].to_numpy(float))
        d = r[tokens_col].to_numpy(float) if tokens_col in r else r["C"].to_numpy(float) / (6 * r["N"].to_numpy(float))
        tokens[i, inside] = np.exp(np.interp(log_c[inside], lc, np.log(d)))
    best = np.argmin(loss, axis=0)
    cols = np.arange(num)
    n_opt = np.array([runs[i]["N"].iloc[0] for i in best], dtype=float)
    d_opt, l_opt, c = tokens[best, cols], loss[best, cols], np.exp(log_c)
    return Frontier(c, n_opt, d_opt, l_opt, fit_power_law(c, n_opt), fit_power_law(c, d_opt))


# --------------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP profiles


@dataclass(frozen=True)
class IsoFlopProfile:
    """One budget's parabola L ≈ c2 (log N)^2 + c1 log N + c0 and its minimum."""

    budget: float
    n_runs: int
    n_opt: float
    d_opt: float
    loss_opt: float
    coefs: tuple[float, float, float]
    """(c2, c1, c0) of the parabola in natural log N."""
    n_range: tuple[float, float]
    """The smallest and largest N sampled at this budget."""


@dataclass(frozen=True)
class IsoFlopResult:
    """Per-budget profiles and the frontier through their minima; refused budgets with the reason."""

    profiles: list[IsoFlopProfile]
    frontier: Frontier
    refused: dict[float, str]


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


def isoflop_profile(budget: float, n: np.ndarray, loss: np.ndarray) -> IsoFlopProfile:
    """Fit a parabola in log N to one budget's runs; FitError unless its minimum is interior.

    A minimum at or beyond the smallest or largest N sampled is an extrapolation, not a measurement
    (Hoffmann §3.2 fit parabolas to bracketed profiles), so it is refused with what to add.
    """
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    where = f"the IsoFLOP profile at C={budget:.3g}"
    if len(np.unique(n)) < 3:
        raise FitError(f"{where} has {len(np.unique(n))} distinct model sizes; a parabola needs at least 3.")
    ln = np.log(n)
    c2, c1, c0 = np.polyfit(ln, loss, 2)
    if c2 <= 0:
        raise FitError(f"{where} is not convex in log N (no minimum); add runs on both sides of the best N.")
    ln_opt = -c1 / (2 * c2)
    if ln_opt <= ln.min() or ln_opt >= ln.max():
        side = "smaller" if ln_opt <= ln.min() else "larger"
        raise FitError(
            f"{where} has its minimum at N={np.exp(ln_opt):.3g}, outside the sampled N "
            f"[{n.min():.3g}, {n.max():.3g}]; add runs with {side} N at this budget or drop the budget."
        )
    n_opt = float(np.exp(ln_opt))
    loss_opt = float(np.polyval([c2, c1, c0], ln_opt))
    return IsoFlopProfile(
        budget, len(n), n_opt, budget / (6 * n_opt), loss_opt, (c2, c1, c0), (float(n.min()), float(n.max()))
    )


def isoflop_frontier(
    runs: pd.DataFrame, budget_col: str | None = None, rel_tol: float = 0.1, strict: bool = True
) -> IsoFlopResult:
    """Chinchilla approach 2: a parabola per budget, then N_opt ∝ C^a and D_opt ∝ C^b through the minima.

    ``runs`` has ``N``, ``C`` and ``loss`` (one row per finished run). Budgets come from ``budget_col``
    or from grouping C within ``rel_tol`` (:func:`group_budgets`). With ``strict`` a budget whose
    minimum is not interior raises :class:`FitError`; otherwise it is left out and listed in ``refused``.
    D_opt = C/(6 N_opt), the convention of the fits in Hoffmann §3.
    """
    _require_columns(runs, ["N", "C", "loss"], "the IsoFLOP frontier")
    budgets = runs[budget_col].to_numpy(float) if budget_col else group_budgets(runs["C"].to_numpy(float), rel_tol)
    profiles, refused = [], {}
    for budget in np.unique(budgets):
        group = runs[budgets == budget]
        try:
            profiles.append(isoflop_profile(float(budget), group["N"].to_numpy(), group["loss"].to_numpy()))
        except FitError as e:
            if strict:
                raise
            refused[float(budget)] = str(e)
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
    return IsoFlopResult(profiles, frontier, refused)


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


def iso_loss_cost(loss_nd: LossND, n_opt: float, d_opt: float, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute and tokens a model ``ratio``x the optimal size needs to reach the optimum's loss.

    Returns (C/C_opt, D/D_opt) per ratio under C = 6ND; nan where no D reaches the loss (a model too
    small to ever get there). The numeric analogue of Kaplan eq B.16 for any L(N, D).
    """
    target = float(loss_nd(np.asarray(n_opt), np.asarray(d_opt)))
    d_ratio = np.full(len(ratios), np.nan)
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
