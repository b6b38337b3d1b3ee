"""What a fitted law cannot support, as warnings: ``{"kind", "param", "message"}`` dicts on ``FitResult.warnings``.

A fit can converge and still be meaningless: a parameter held at its bound, a floor E that drifted to 0,
an estimate outside its own bootstrap interval, refits that failed, or a curvature so flat in some
direction that the data do not determine a parameter. Each is named here with the parameter and what
would fix it; the CLI prints them on stderr and the JSON carries them (spec §6 items 6, 7, 13).
"""

from __future__ import annotations

import warnings as pywarnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from scalinglab.laws.objective import Problem
from scalinglab.laws.uncertainty import robust_scale

KINDS = (
    "at_bound",
    "near_bound",
    "outside_interval",
    "bootstrap_failed",
    "unidentified",
    "not_converged",
    "floorless",
    "extrapolation",
    "candidates_disagree",
    "outlier",
    "numerical",
    "prior",
    "rollout",
    "schedule",
)
"""Kinds of warning; the plan and predict commands add ``extrapolation``, predict ``prior`` (a value
that comes from a prior, not the data), ``rollout`` (the law missed the curve's own later points) and
``schedule`` (a law blind to the LR predicts across a decay still to come)."""

EXTRAPOLATION_WARN_DECADES = 1.0
"""A plan or prediction farther than this many decades beyond the fitted data warns: fits from small models
extrapolate worst (spec §6 pitfall 13; Pearce & Song 2024), and a decade is already 10x the data."""

NEAR_BOUND = 0.01
"""A parameter within this fraction of its box's width from a bound is near it (at it within 1e-8)."""
NEAR_BOUND_LINEAR = 1e-3
"""A linear parameter (an exponent) is near a bound only within this too: on a box like (1e-6, 10), 1% of
the width would call every exponent below 0.1 (Kaplan's α_N = 0.076 among them) near its floor."""
BOOTSTRAP_FAILED = 0.10
"""Warn when more than this fraction of the bootstrap refits failed to converge."""
LOG_SE_UNIDENTIFIED = float(np.log(10.0) / 1.96)
"""A log-space scale whose 95% half-width exceeds a factor of 10 is not determined by the data."""
REL_SE_UNIDENTIFIED = 0.5
"""Nor is a linear parameter whose standard error exceeds half its value (its 95% interval spans 0)."""
FLOOR_FRACTION = 1e-2
"""A floor ``E`` below this fraction of the smallest target is no floor at all."""


def warning(kind: str, param: str | None, message: str) -> dict[str, Any]:
    """One warning entry, as fit.json and ``--json`` carry it."""
    return {"kind": kind, "param": param, "message": message}


RUN_KINDS = ("outlier", "note")
"""Kinds of warning about single runs or the table, not the law's parameters: a plan or a summary line beside
a fitted number does not repeat them."""


def findings(warnings: Iterable[Mapping[str, Any]], param: str | None = None, skip: Iterable[str] = RUN_KINDS) -> list[str]:
    """The findings of ``warnings`` (each message up to its first ": ", without the fix or a final full stop), once
    each: what a summary line says beside a number. ``param`` keeps the warnings on that parameter; ``skip`` drops
    kinds."""
    skip = set(skip)
    return list(dict.fromkeys(
        w["message"].split(": ")[0].rstrip(".") for w in warnings  # a message with no fix ends its sentence
        if w.get("kind") not in skip and (param is None or w.get("param") == param)
    ))  # fmt: skip


def _label(name: str, tied: Mapping[str, str]) -> str:
    followers = [f for f, lead in tied.items() if lead == name]
    return f"{name} (tied to {', '.join(followers)})" if followers else name


def bound_warnings(problem: Problem, theta: np.ndarray, tied: Mapping[str, str] = {}) -> list[dict[str, Any]]:
    """Parameters at or within :data:`NEAR_BOUND` of their bounds; a floor E at its lower bound is ``floorless``."""
    floor_min = float(np.exp(problem.logy[problem.weights > 0].min())) if problem.weights.ndim == 1 else np.inf
    return form_bound_warnings(problem.form, theta, floor_min, tied)


def _bound_reach(form: Any, i: int, scale: float) -> tuple[float, float]:
    """(width of parameter ``i``'s box in fitting space, how near a bound counts as near it); ``scale`` stands
    in for the width of a box open on one side."""
    lo, hi = form.bounds[i]
    width = hi - lo if np.isfinite(hi - lo) else max(1.0, scale)
    return width, NEAR_BOUND * width if form.params[i] in form.log_params else min(NEAR_BOUND * width, NEAR_BOUND_LINEAR)


def form_bound_warnings(
    form: Any, theta: np.ndarray, floor_min: float = np.inf, tied: Mapping[str, str] = {},
    fix: str = "widen it (--bound {name}=LOW:HIGH), fix it (--fix {name}=VALUE), or add runs that constrain it",
) -> list[dict[str, Any]]:
    """:func:`bound_warnings` for any fitted form (a learning curve's too); ``fix`` is the advice, with ``{name}``."""
    out = []
    for i, name in enumerate(form.params):
        lo, hi = form.bounds[i]
        value = float(form.from_theta(theta)[i])
        width, reach = _bound_reach(form, i, abs(theta[i]))
        side = None
        if np.isfinite(lo) and theta[i] - lo <= reach:
            side, bound = "lower", lo
        elif np.isfinite(hi) and hi - theta[i] <= reach:
            side, bound = "upper", hi
        public = float(np.exp(bound)) if side and name in form.log_params else (bound if side else None)
        if name == "E" and form.target == "loss" and value < FLOOR_FRACTION * floor_min:
            out.append(warning(
                "floorless", "E",
                f"E = {value:.3g} is {'at its lower bound' if side == 'lower' else 'far below every loss'}: the runs show "
                "no irreducible loss (a floorless power law), so E and long extrapolations are not supported; bound or fix E "
                "(--bound E=LOW:HIGH, --fix E=VALUE), add larger or longer runs, or fit a law without a floor (kaplan_n, kaplan_nd).",
            ))  # fmt: skip
            continue
        if side is None:
            continue
        at = abs(theta[i] - bound) <= 1e-8 * width
        out.append(warning(
            "at_bound" if at else "near_bound", name,
            f"{_label(name, tied)} = {value:.4g} is {'at' if at else 'near'} its {side} bound {public:.4g}: the data do not "
            f"hold it inside; {fix.format(name=name)}.",
        ))  # fmt: skip
    return out


def identification_warnings(problem: Problem, theta: np.ndarray, tied: Mapping[str, str] = {}) -> list[dict[str, Any]]:
    """Parameters the curvature does not pin down: a standard error wider than :data:`LOG_SE_UNIDENTIFIED`
    (log scales) or :data:`REL_SE_UNIDENTIFIED` of the value, or a (numerically) singular direction."""
    form = problem.form
    with np.errstate(all="ignore"):
        logpred, J = form.evaluate(theta[None, :], problem.logx, True)
    used = problem.weights > 0
    J = J[0][:, used] * np.sqrt(problem.weights[used])
    s = robust_scale(logpred[0][used] - problem.logy[used], len(theta))
    lo, hi = problem.lower, problem.upper
    width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    free = (theta - lo > 1e-8 * width) & (hi - theta > 1e-8 * width)  # a parameter held at a bound is reported there
    idx = np.flatnonzero(free)
    if idx.size == 0 or not np.isfinite(J).all():
        return []
    H = J[idx] @ J[idx].T
    d = np.sqrt(np.diag(H))
    out, named = [], set()
    flat = d <= 1e-12 * max(d.max(), 1e-300)
    for k in np.flatnonzero(flat):
        named.add(idx[k])
    if not flat.all():
        keep = ~flat
        R = H[np.ix_(keep, keep)] / np.outer(d[keep], d[keep])
        w, v = np.linalg.eigh(R)
        if w[0] < 1e-12:  # a direction with no curvature at all: its largest members are not identified
            named.add(idx[np.flatnonzero(keep)[int(np.argmax(np.abs(v[:, 0])))]])
        cov = np.linalg.pinv(R) / np.outer(d[keep], d[keep]) * s**2
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        for k, j in enumerate(idx[keep]):
            name = form.params[j]
            limit = LOG_SE_UNIDENTIFIED if name in form.log_params else REL_SE_UNIDENTIFIED * abs(theta[j])
            if se[k] > limit:
                named.add(j)
    for j in sorted(named):
        name = form.params[j]
        out.append(warning(
            "unidentified", name,
            f"{_label(name, tied)} is not identified by these runs (the fit's curvature is nearly flat along it): its value "
            f"is arbitrary; tie or fix it (--tie, --fix {name}=VALUE), fit a law with fewer parameters, or add runs over a "
            "wider range.",
        ))  # fmt: skip
    return out


def interval_warnings(params: Mapping[str, float], intervals: Mapping[str, list[float]], level: float) -> list[dict[str, Any]]:
    """Estimates outside their own bootstrap interval: the refits find a different optimum than the fit."""
    out = []
    for name, (lo, hi) in intervals.items():
        value = params.get(name)
        if value is not None and not lo <= value <= hi:
            out.append(warning(
                "outside_interval", name,
                f"{name} = {value:.4g} lies outside its own {level:.0%} bootstrap interval [{lo:.4g}, {hi:.4g}]: the "
                "optimum is fragile (refits on resampled runs land elsewhere); treat the value as unreliable.",
            ))  # fmt: skip
    return out


def interval_bound_warnings(
    form: Any, intervals: Mapping[str, list[float]], level: float, skip: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Bootstrap intervals that run to a bound of the box (as :func:`form_bound_warnings` judges nearness): a
    share of the refits went to the box's edge, so the box, not the data, ends the interval. ``skip`` names
    parameters already warned about (an estimate on its bound)."""
    out = []
    for i, name in enumerate(form.params):
        if name not in intervals or name in skip:
            continue
        lo, hi = form.bounds[i]
        ends = np.asarray(intervals[name], dtype=float)
        if name in form.log_params:
            with np.errstate(divide="ignore", invalid="ignore"):
                ends = np.log(ends)
        if not np.isfinite(ends).all():
            continue
        _, reach = _bound_reach(form, i, float(np.abs(ends).max()))
        for end, bound, side in ((ends[0], lo, "lower"), (ends[1], hi, "upper")):
            if np.isfinite(bound) and abs(end - bound) <= reach:
                public = float(np.exp(bound)) if name in form.log_params else float(bound)
                a, b = intervals[name]
                out.append(warning(
                    "interval_at_bound", name,
                    f"the {level:.0%} interval of {name}, [{a:.4g}, {b:.4g}], runs to its {side} bound {public:.4g}: refits "
                    f"on resampled runs reach the box's edge, so the box, not the data, ends it; widen it (--bound "
                    f"{name}=LOW:HIGH), fix it (--fix {name}=VALUE), or add runs that constrain it.",
                ))  # fmt: skip
    return out


def allocation_warnings(what: str, interval: Sequence[float] | None) -> list[dict[str, Any]]:
    """An exponent a of N_opt ∝ C^a whose interval leaves (0, 1): at a ≤ 0 the optimal size need not grow with
    compute, at a ≥ 1 the optimal tokens need not (b = 1 - a); the runs do not establish the allocation."""
    if interval is None or not np.isfinite(interval).all() or (interval[0] > 0 and interval[1] < 1):
        return []
    lo, hi = interval
    side = ("a ≤ 0, where the optimal size does not grow with compute" if lo <= 0
            else "a ≥ 1, where the optimal tokens do not grow with compute (b = 1 - a ≤ 0)")
    return [warning(
        "unidentified", "a",
        f"{what}: the interval of a, [{lo:.3f}, {hi:.3f}], reaches {side}: these runs do not establish how N_opt "
        "scales; add budgets further apart, or sizes that bracket each budget's optimum.",
    )]  # fmt: skip


def bootstrap_warning(n: int, dropped: int) -> list[dict[str, Any]]:
    """More than :data:`BOOTSTRAP_FAILED` of the refits dropped: the intervals describe the survivors only."""
    if n <= 0 or dropped <= BOOTSTRAP_FAILED * n:
        return []
    if n - dropped < 2:
        return [warning(
            "bootstrap_failed", None,
            f"{dropped} of {n} bootstrap refits did not converge, so the fit has no intervals; the law is not "
            "determined by these runs (see the other warnings): fit a law with fewer parameters, or add runs.",
        )]  # fmt: skip
    return [warning(
        "bootstrap_failed", None,
        f"{dropped} of {n} bootstrap refits did not converge and were left out, so the intervals are too narrow; "
        "the law is poorly determined by these runs (see the other warnings).",
    )]  # fmt: skip


def convergence_warning(converged: bool, status: str) -> list[dict[str, Any]]:
    if converged:
        return []
    return [warning("not_converged", None, f"the fit did not converge ({status}); try --starts full.")]


def from_python(caught: Iterable[pywarnings.WarningMessage]) -> list[dict[str, Any]]:
    """Library warnings raised during a fit (numpy, scipy...), once each, as ``numerical`` entries."""
    seen, out = set(), []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.add(text)
            out.append(warning("numerical", None, f"numerical trouble during the fit ({text}); check the table's units."))
    return out
