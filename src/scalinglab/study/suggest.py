"""The next runs of a study, chosen for how much they shrink the interval of its answer per FLOP.

The answer is the loss at a target compute budget C (the compute-optimal loss, min over N of
L(N, C/6N)) or the compute-optimal size N_opt(C). Each bootstrap draw of the current fit is a law the
data allow; for each draw the posterior of the law's parameters is linearised (Gauss-Newton:
information JᵀJ/σ² from the fitted runs, plus the bootstrap's own spread, widened, as a weak prior), so
a new run's value is the expected shrink of the answer's variance when its outcome is drawn from that law
plus the noise and the law refitted, averaged over the draws (a Bayesian c-optimal design, Chaloner &
Verdinelli 1995). σ is the fit's new-run noise, floored by the seeds' run-to-run noise and raised until
the linearised interval of the answer is as wide as the bootstrap's. Runs are chosen greedily, k times,
from a grid of (shape, D) within the spend, under three rules (most shrink per FLOP, most shrink within
an equal share of what is left, most shrink outright); the set with the least expected variance wins.

:func:`equal_cost_design` and :func:`simulated_spread` check the choice by simulation: on a known law,
the spread of the refitted answer over fresh noise, for the suggested runs against a ladder or a grid of
the same cost (benchmarks/suggest_sim.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist  # not scipy.stats: a quarter of a second to import
from typing import Any, Literal

import numpy as np
import pandas as pd

from scalinglab.config import from_dict
from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import Form
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params
from scalinglab.model.shapes import shape_for_params
from scalinglab.study.collect import run_config
from scalinglab.study.config import StudyConfig
from scalinglab.study.selection import SCAN_DESIGNS, law_runs

Target = Literal["loss", "n_opt"]
TARGETS = ("loss", "n_opt")

MAX_DRAWS = 64
"""Bootstrap draws the expected shrink is averaged over (evenly spaced through the bootstrap)."""
PRIOR_WIDTH = 2.0
"""The prior on the internal parameters is the bootstrap's spread widened this many times: negligible where
the runs determine the law, and where they do not (a flat direction), as uncertain as the refits found it
rather than infinitely so."""
GRID_POINTS = 801
"""Points of log N over which each draw's compute-optimal size is searched (then refined by a parabola)."""
TOKENS_PER_PARAM = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
"""D/N of the candidate runs: around Hoffmann's ~20 tokens per parameter, wide enough for both ends of
an IsoFLOP profile, where a law of N and D is least determined (Hoffmann §3.2)."""
SIZES = 14
"""Candidate model sizes, log-spaced from the smallest fitted run to the largest the spend affords."""
LADDER_TOKENS_PER_PARAM = 20.0
"""Tokens per parameter of the equal-cost ladder the suggestion is compared with (Hoffmann's rule)."""
RULES = ("per_flop", "share", "largest")
"""Greedy rules: most shrink per FLOP within what is left; most shrink within an equal share of what is
left per remaining run; most shrink within what is left."""


@dataclass(frozen=True)
class ShapeRule:
    """How the study turns a target size into a model shape (model.shapes.shape_for_params)."""

    base: ModelConfig
    """Every field but the shape (n_ctx, vocab_size, ...), as the study's runs have them."""
    aspect_ratio: float
    """d_model / n_layer of the study's ladder."""
    head_dim: int
    """d_model / n_head of the study's runs."""

    def shape(self, n: float) -> ModelConfig:
        return shape_for_params(n, aspect_ratio=self.aspect_ratio, head_dim=self.head_dim, base=self.base)

    @classmethod
    def of_study(cls, study: StudyConfig) -> ShapeRule:
        """The rule of the study's first design that builds sizes for a law (not a scan): its family, aspect ratio
        and head dimension, as ``Design.sizes`` applies them."""
        design = next((d for d in study.designs if d.kind not in SCAN_DESIGNS), study.designs[0])
        base = design.family(study.base.model)
        return cls(base, design.aspect_ratio or base.d_model / base.n_layer, design.head_dim or base.head_dim)

    @classmethod
    def of_runs(cls, runs: pd.DataFrame, directory: str | Path) -> ShapeRule:
        """The rule the finished law runs of a study directory follow: the largest one's model config, their
        median aspect ratio and head dimension."""
        df = law_runs(runs)
        if df.empty:
            raise DataError(f"'{directory}' has no finished runs to take the study's shapes from; train some first.")
        config = run_config(Path(directory) / df.loc[df["N"].idxmax(), "run_dir"])
        if config is None:
            raise DataError(f"the largest run of '{directory}' has no config.json; pass the study file instead.")
        base = from_dict(ModelConfig, config["model"], where="model")
        return cls(base, float((df["d_model"] / df["n_layer"]).median()), int((df["d_model"] / df["n_head"]).median()))


@dataclass(frozen=True)
class Candidate:
    """A run that could be trained next: its shape (None for a law-only simulation), N and D."""

    N: float
    D: float
    model: ModelConfig | None = None

    @property
    def flops(self) -> float:
        return 6.0 * self.N * self.D  # the law's own convention, C = 6ND (Kaplan §2.1)


@dataclass
class Suggestion:
    """The k runs chosen, and what they are expected to do to the answer's interval."""

    target: str
    budget: float
    value: float
    """The answer at the point estimate (loss in nats, or N_opt)."""
    interval: list[float]
    """The fit's bootstrap percentile interval of the answer, now."""
    sd_now: float
    """Linearised sd of log(answer) now (mean variance over the draws, square-rooted)."""
    sd_after: list[float]
    """The same after each suggested run is added, in order."""
    runs: list[Candidate]
    spend: float
    rule: str
    """Which greedy rule chose the runs (see :data:`RULES`)."""
    noise: float
    """σ of a new run in log space, as the simulation of its outcome used it."""
    draws: int
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return float(sum(c.flops for c in self.runs))

    @property
    def shrink(self) -> float:
        """Expected width of the interval after the runs, as a fraction of its width now."""
        return self.sd_after[-1] / self.sd_now if self.runs and self.sd_now > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "budget": self.budget, "value": self.value, "interval": self.interval,
            "level": self.level, "sd_now": self.sd_now, "sd_after": self.sd_after, "shrink": self.shrink,
            "spend": self.spend, "cost": self.cost, "rule": self.rule, "noise": self.noise, "draws": self.draws,
            "notes": self.notes,
            "runs": [
                {"N": c.N, "D": c.D, "C": c.flops, "tokens_per_param": c.D / c.N, "sd_after": sd,
                 **({"n_layer": c.model.n_layer, "d_model": c.model.d_model, "n_head": c.model.n_head} if c.model else {})}
                for c, sd in zip(self.runs, self.sd_after)
            ],
        }  # fmt: skip


def answer(form: Form, theta: np.ndarray, budget: float, target: Target) -> tuple[np.ndarray, np.ndarray]:
    """log(answer) ``(K,)`` and its gradient in theta ``(K, P)`` for each parameter vector of ``theta (K, P)``.

    The compute-optimal size minimises l(x) = log L(e^x, C/(6e^x)) over x = log N on a grid refined by a
    parabola; the loss's gradient is the law's own Jacobian there (the envelope theorem: dl/dx = 0), and
    N_opt's is -l_xθ / l_xx (implicit differentiation, by central differences in x). A draw whose loss
    keeps falling to the grid's edge has no compute-optimal size: NaN.
    """
    theta = np.atleast_2d(theta)
    logc = math.log(budget)
    x = np.linspace(0.1 * logc, 0.9 * logc - math.log(6), GRID_POINTS)  # N and D both at least C^0.1

    def at(xs: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return form.evaluate(theta, {"N": xs, "D": logc - math.log(6) - xs}, jac)

    with np.errstate(all="ignore"):
        grid, _ = at(x, False)  # (K, G)
        k = np.nanargmin(np.where(np.isfinite(grid), grid, np.inf), axis=1)
        edge = (k == 0) | (k == GRID_POINTS - 1)
        k = np.clip(k, 1, GRID_POINTS - 2)
        rows = np.arange(len(theta))
        f0, f1, f2 = grid[rows, k - 1], grid[rows, k], grid[rows, k + 1]
        step = x[1] - x[0]
        curv = f0 - 2 * f1 + f2
        xs = x[k] + np.where(curv > 0, 0.5 * step * (f0 - f2) / curv, 0.0)  # the parabola's vertex
        h = 1e-3
        (lm, jm), (l0, j0), (lp, jp) = (at(xs + d, True) for d in (-h, 0.0, h))
    diag = (rows, rows)
    if target == "loss":
        value, grad = l0[diag], j0[rows, :, rows]
    else:
        l_xx = (lp[diag] - 2 * l0[diag] + lm[diag]) / h**2
        l_xtheta = (jp[rows, :, rows] - jm[rows, :, rows]) / (2 * h)
        value, grad = xs, -l_xtheta / l_xx[:, None]
    bad = edge | ~np.isfinite(value) | ~np.isfinite(grad).all(axis=1)
    return np.where(bad, np.nan, value), np.where(bad[:, None], np.nan, grad)


def candidates(
    data: pd.DataFrame, spend: float, rule: ShapeRule | None = None, ratios: Sequence[float] = TOKENS_PER_PARAM
) -> list[Candidate]:
    """Runs of at most ``spend`` FLOPs: sizes log-spaced from the smallest fitted run to the largest the spend
    affords (each made a shape by ``rule``; exact N without one), at each tokens-per-parameter ratio, and
    never shorter than half the shortest fitted run."""
    n_lo, d_lo = float(data["N"].min()), 0.5 * float(data["D"].min())
    n_hi = math.sqrt(spend / (6 * min(ratios)))
    if n_hi <= n_lo:
        raise ConfigError(
            f"--spend {spend:.3g} FLOPs cannot train even the smallest fitted size (N={n_lo:.3g}) for {min(ratios):g} "
            f"token per parameter; raise --spend to at least {6 * min(ratios) * n_lo**2:.3g}."
        )
    sizes: dict[Any, tuple[float, ModelConfig | None]] = {}
    for n in np.geomspace(n_lo, n_hi, SIZES):
        if rule is None:
            sizes[float(n)] = (float(n), None)
            continue
        try:
            m = rule.shape(float(n))
        except ConfigError:
            continue  # no shape near this size at the study's aspect ratio: its neighbours stand in
        sizes[m] = (float(count_params(m)["N"]), m)
    out = []
    for n, m in sizes.values():
        for r in ratios:
            d = float(round(r * n))
            if d >= d_lo and 6 * n * d <= spend:
                out.append(Candidate(n, d, m))
    if not out:
        raise ConfigError(f"no run of the study's shapes fits in --spend {spend:.3g} FLOPs; raise --spend.")
    return out


def _gram(form: Form, theta: np.ndarray, data: pd.DataFrame) -> np.ndarray:
    """Per draw, the Gauss-Newton matrix JᵀWJ ``(B, P, P)`` of the fitted runs' log losses (information x σ²)."""
    _, J = form.evaluate(theta, form.log_inputs(data), True)  # (B, P, n)
    w = data["weight"].to_numpy(dtype=float) if "weight" in data.columns else np.ones(J.shape[2])
    return np.einsum("bpn,bqn,n->bpq", J, J, w)


def _variance(grad: np.ndarray, S: np.ndarray) -> float:
    """Mean over the draws of the answer's linearised variance gᵀSg."""
    return float(np.einsum("bp,bpq,bq->b", grad, S, grad).mean())


def _greedy(S: np.ndarray, grad: np.ndarray, J: np.ndarray, cost: np.ndarray, spend: float, k: int, sigma2: float,
            rule: str) -> tuple[list[int], list[float]]:
    """Pick up to ``k`` candidates by ``rule``; their indices and the mean variance after each pick.

    ``S (B, P, P)`` the per-draw posterior covariances, ``grad (B, P)`` the answer's gradient, ``J (B, M, P)``
    the candidates' log-loss gradients: a run at j shrinks the variance by (gᵀSj)² / (σ² + jᵀSj) and S by the
    matching rank-one update (Sherman-Morrison).
    """  # fmt: skip
    chosen, after, left = [], [], spend
    for i in range(k):
        Sj = np.einsum("bpq,bmq->bmp", S, J)  # (B, M, P)
        s = np.einsum("bmp,bmp->bm", J, Sj)  # (B, M)
        a = np.einsum("bmp,bp->bm", Sj, grad)  # (B, M)
        gain = (a**2 / (sigma2 + s)).mean(axis=0)  # (M,)
        cap = left / (k - i) if rule == "share" else left
        ok = (cost <= cap * (1 + 1e-9)) & ~np.isin(np.arange(len(cost)), chosen)  # a run twice is one run (one identity)
        if not ok.any():
            break
        score = gain / cost if rule == "per_flop" else gain
        m = int(np.argmax(np.where(ok, score, -np.inf)))
        v = Sj[:, m]  # (B, P)
        S = S - np.einsum("bp,bq->bpq", v, v) / (sigma2 + s[:, m])[:, None, None]
        chosen.append(m)
        left -= cost[m]
        after.append(_variance(grad, S))
    return chosen, after


def suggest(
    fit: FitResult,
    budget: float,
    *,
    spend: float | None = None,
    k: int = 4,
    target: Target = "loss",
    rule: ShapeRule | None = None,
    pool: Sequence[Candidate] | None = None,
    noise_floor: float = 0.0,
) -> Suggestion:
    """The ``k`` runs within ``spend`` FLOPs (default: the compute of the fitted runs) that most shrink the
    interval of ``target`` at ``budget`` FLOPs, from ``fit``'s bootstrap (see the module docstring).

    ``pool`` replaces the candidate grid built from ``rule`` (:func:`candidates`).
    """
    if target not in TARGETS:
        raise ConfigError(f"--target {target!r}; choose loss or n_opt.")
    if budget <= 0:
        raise ConfigError(f"--target-budget {budget:g}; give the compute of the answer in FLOPs, e.g. 1e18.")
    if k < 1:
        raise ConfigError(f"--k {k}; suggest at least one run.")
    form = fit.form
    if set(form.inputs) != {"N", "D"}:
        raise ConfigError(f"law '{form.name}' is not a law of N and D; suggest runs with --law chinchilla (or kaplan_nd).")
    if fit.bootstrap is None or len(fit.bootstrap) < 10:
        raise FitError("the fit has no bootstrap to draw laws from; fit again with --bootstrap 200.")
    data = fit.data[fit.data["weight"] > 0] if "weight" in fit.data.columns else fit.data
    spend = float(spend if spend is not None else (6 * data["N"] * data["D"]).sum())
    if spend <= 0:
        raise ConfigError(f"--spend {spend:g}; give the compute the next runs may use, in FLOPs.")
    draws = fit.bootstrap[list(form.params)].to_numpy(dtype=float)
    draws = draws[np.isfinite(draws).all(axis=1)]
    draws = draws[np.unique(np.linspace(0, len(draws) - 1, min(MAX_DRAWS, len(draws))).round().astype(int))]
    theta = form.to_theta(draws)
    log_answer, grad = answer(form, theta, budget, target)
    ok = np.isfinite(log_answer)
    if ok.mean() < 0.5:
        raise FitError(
            f"in {int((~ok).sum())} of {len(ok)} bootstrap draws the law has no compute-optimal size at C={budget:.3g} "
            "(its loss keeps falling toward one end); fit more runs or another law before choosing runs for that answer."
        )
    theta, grad = theta[ok], grad[ok]
    pool = list(pool) if pool is not None else candidates(data, spend, rule)
    pool = [c for c in pool if c.flops <= spend * 1.000001]  # the grid's own rounding
    if not pool:
        raise ConfigError(f"no candidate run fits in --spend {spend:.3g} FLOPs; raise --spend.")
    sigma = max(fit.noise.s0 if fit.noise is not None else 0.0, noise_floor)
    if not sigma > 0:
        raise FitError("the fit has no noise estimate to simulate new runs with; fit again without --fix on every parameter.")
    every_theta = form.to_theta(fit.bootstrap[list(form.params)].to_numpy(dtype=float))
    every, _ = answer(form, every_theta, budget, target)
    every = every[np.isfinite(every)]
    if every.size < 10:
        raise FitError(f"only {every.size} bootstrap draws give an answer at C={budget:.3g}; fit again with --bootstrap 200.")
    tail = 100 * (1 - fit.level) / 2
    lo, hi = np.percentile(every, [tail, 100 - tail])
    # A few runs understate their own noise (9 runs, 5 parameters: s0 ~ 0.2 of the true 1%), so sigma is raised
    # until the linearised sd of the answer matches the bootstrap's: the shrink is then relative to the real interval.
    sd_boot = (hi - lo) / (2 * NormalDist().inv_cdf(0.5 + fit.level / 2))
    spread = np.cov(every_theta[np.isfinite(every_theta).all(axis=1)], rowvar=False)
    prior = np.linalg.pinv(PRIOR_WIDTH**2 * spread + 1e-12 * np.eye(len(spread)))
    cand = pd.DataFrame({"N": [c.N for c in pool], "D": [c.D for c in pool]})
    with np.errstate(all="ignore"):  # a draw far out can overflow: it is dropped below, not printed
        gram = _gram(form, theta, data)
        _, J = form.evaluate(theta, form.log_inputs(cand), True)  # (B, P, M)
    fine = np.isfinite(gram).all(axis=(1, 2)) & np.isfinite(J).all(axis=(1, 2))
    if not fine.any():
        raise FitError("the law cannot be evaluated at the fitted runs for any bootstrap draw; check the fit.")
    theta, grad, gram, J = theta[fine], grad[fine], gram[fine], J[fine].transpose(0, 2, 1)
    sd_lin = math.sqrt(_variance(grad, np.linalg.pinv(gram / sigma**2 + prior)))
    sigma = max(sigma, sigma * sd_boot / sd_lin) if sd_lin > 0 else sigma
    S = np.linalg.pinv(gram / sigma**2 + prior)  # pinv: a numerically singular draw costs its precision, not a traceback
    cost = np.array([c.flops for c in pool])
    var_now = _variance(grad, S)
    best = min(
        ((r, *_greedy(S, grad, J, cost, spend, k, sigma**2, r)) for r in RULES),
        key=lambda t: t[2][-1] if t[2] else var_now,
    )
    name, picks, after = best
    center = float(np.exp(answer(form, form.to_theta(np.array([[fit.params[p] for p in form.params]])), budget, target)[0][0]))
    notes = []
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} of {len(ok)} bootstrap draws have no compute-optimal size at this budget; left out")
    return Suggestion(
        target=target, budget=float(budget), value=center,
        interval=[float(np.exp(lo)), float(np.exp(hi))],
        sd_now=math.sqrt(var_now), sd_after=[math.sqrt(v) for v in after], runs=[pool[m] for m in picks],
        spend=spend, rule=name, noise=float(sigma), draws=len(theta), level=fit.level, notes=notes,
    )  # fmt: skip


def design_block(s: Suggestion, rule: ShapeRule, name: str = "suggest", start: int = 1) -> str:
    """The suggested runs as ``[[design]]`` tables (one nd_grid per run) to append to the study file."""
    what = "loss" if s.target == "loss" else "N_opt"
    lines = [
        f"# scalinglab study suggest: the {len(s.runs)} run(s) that most shrink the {s.level:.0%} interval of {what} at "
        f"C = {s.budget:.3g} FLOPs per FLOP spent ({s.cost:.3g} of {s.spend:.3g});",
        f"# expected interval width x{s.shrink:.2f} of today's [{s.interval[0]:.4g}, {s.interval[1]:.4g}].",
    ]
    for i, c in enumerate(s.runs, start):
        if c.model is None:
            raise ConfigError("these runs have no shapes; give the study's shape rule to write a design block.")
        lines += [
            "",
            "[[design]]",
            'kind = "nd_grid"',
            f'name = "{name}-{i}"',
            f"shapes = [[{c.model.n_layer}, {c.model.d_model}]]",
            f"head_dim = {rule.head_dim}",
            f"tokens = [{int(c.D)}]",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Validation by simulation: on a known law, how much does a set of runs pin the answer down?


def equal_cost_design(kind: Literal["ladder", "grid"], n_lo: float, k: int, cost: float) -> list[Candidate]:
    """``k`` runs of total compute ``cost`` from size ``n_lo`` up: a ladder at 20 tokens per parameter, or a grid of
    ceil(sqrt k) sizes x the rest of ratios from 5 to 80 tokens per parameter; the largest size solves the cost."""
    if kind == "ladder":
        shape = [(i / max(1, k - 1), LADDER_TOKENS_PER_PARAM) for i in range(k)]
    else:
        sizes = math.ceil(math.sqrt(k))
        ratios = np.geomspace(5.0, 80.0, math.ceil(k / sizes))
        shape = [(i / max(1, sizes - 1), float(r)) for i in range(sizes) for r in ratios][:k]

    def runs(log_top: float) -> list[Candidate]:
        return [Candidate(n_lo * math.exp(f * log_top), r * n_lo * math.exp(f * log_top)) for f, r in shape]

    lo, hi = 0.0, 40.0
    for _ in range(100):  # bisection on log(N_top / N_lo): the total cost grows with it
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sum(c.flops for c in runs(mid)) < cost else (lo, mid)
    return runs(0.5 * (lo + hi))


def simulated_spread(
    form: Form, truth: dict[str, float], existing: pd.DataFrame, new: Sequence[Candidate], sigma: float, budget: float,
    target: Target = "loss", reps: int = 24, seed: int = 0,
) -> float:
    """The spread (1.4826 MAD, the sd for normal errors) of log(answer) refitted over ``reps`` fresh draws of noise on the
    existing runs plus ``new``, from the law ``truth`` with log-normal noise ``sigma``: the true width of the answer's
    interval with those runs."""  # fmt: skip
    old_rng, new_rng = np.random.default_rng(seed), np.random.default_rng(seed + 10**6)
    rows = pd.concat([existing[["N", "D"]], pd.DataFrame({"N": [c.N for c in new], "D": [c.D for c in new]})],
                     ignore_index=True)  # fmt: skip
    mean = form.predict(truth, rows)
    values = []
    for _ in range(reps):  # the existing runs' noise from its own stream: the same draws for every design compared
        noise = np.concatenate([old_rng.normal(0.0, sigma, len(existing)), new_rng.normal(0.0, sigma, len(new))])
        table = rows.assign(loss=mean * np.exp(noise))
        try:
            fit = fit_law(form, table, starts=truth, calibrate=False)
        except (FitError, DataError):
            continue
        v, _ = answer(form, form.to_theta(np.array([[fit.params[p] for p in form.params]])), budget, target)
        if np.isfinite(v[0]):
            values.append(v[0])
    if len(values) < reps // 2:
        raise FitError(f"only {len(values)} of {reps} simulated refits gave an answer at C={budget:.3g}.")
    v = np.asarray(values)
    return float(1.4826 * np.median(np.abs(v - np.median(v))))  # robust: a refit lost in a flat valley is one draw, not the sd


@dataclass(frozen=True)
class Trial:
    """One simulated study: the sd of log(answer) with the suggested runs, an equal-cost ladder and grid."""

    suggested: float
    ladder: float
    grid: float
    suggestion: Suggestion

    @property
    def ratios(self) -> dict[str, float]:
        """How many times narrower the suggested runs make the interval than each baseline."""
        return {"ladder": self.ladder / self.suggested, "grid": self.grid / self.suggested}


def simulate_trial(
    form: Form, truth: dict[str, float], existing: pd.DataFrame, sigma: float, budget: float, *, k: int = 4,
    spend: float | None = None, target: Target = "loss", bootstrap: int = 100, reps: int = 24, seed: int = 0,
) -> Trial:
    """Draw the existing runs from ``truth`` plus noise, fit them with a bootstrap, suggest ``k`` runs, and measure
    the answer's spread (:func:`simulated_spread`) with them and with a ladder and a grid of the same cost."""  # fmt: skip
    rng = np.random.default_rng(seed)
    table = existing[["N", "D"]].assign(loss=form.predict(truth, existing) * np.exp(rng.normal(0.0, sigma, len(existing))))
    fit = fit_law(form, table, bootstrap=bootstrap, seed=seed)
    s = suggest(fit, budget, spend=spend, k=k, target=target)
    n_lo = float(existing["N"].min())
    spread = {
        name: simulated_spread(form, truth, existing, runs, sigma, budget, target, reps, seed + 1)
        for name, runs in (("suggested", s.runs), ("ladder", equal_cost_design("ladder", n_lo, k, s.cost)),
                           ("grid", equal_cost_design("grid", n_lo, k, s.cost)))
    }  # fmt: skip
    return Trial(spread["suggested"], spread["ladder"], spread["grid"], s)
