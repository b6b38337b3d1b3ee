"""Plan a run when the data are capped: the best model size and number of epochs over U unique tokens.

With a fitted ``data_constrained`` law (Muennighoff et al. 2023) and a budget C, :func:`plan_repeat`
minimises L(N, C/(6N), U) over N, compares it with the unlimited-data plan (the same law with fresh
data, U = D), and says how many epochs of repetition cost less than a given loss penalty: at the
budget's compute-optimal N and D, training on D/e unique tokens e times against fresh data (the
paper's "up to 4 epochs are almost as good as unique", §1 Fig 1). The extrapolation warnings are the
plan's (:mod:`scalinglab.laws.plan`), plus one for U and the epochs outside the fitted runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from scalinglab.errors import ConfigError
from scalinglab.laws.diagnostics import EXTRAPOLATION_WARN_DECADES, warning
from scalinglab.laws.forms import effective_sizes, get_form
from scalinglab.laws.frontier import optimal_allocation
from scalinglab.laws.plan import (
    Plan,
    PlanningLaw,
    _checked,
    _decades_outside,
    _interval,
)

LAW = "data_constrained"
EPOCHS = (1, 2, 4, 8, 16, 32, 64)
"""Epochs tabulated at the budget (D = e x U, N = C/(6D)); Muennighoff Fig 3 spans 1 to 60 and beyond."""
MAX_EPOCHS = 1e4
"""The search for the epochs within a penalty stops here (the law's value of repeats has long saturated)."""


@dataclass(frozen=True)
class EpochRow:
    """One number of passes over U at the budget: its model size, loss and what repetition costs."""

    epochs: float
    n_params: float
    tokens: float
    loss: float
    penalty: float
    """Loss above the unlimited-data plan at the same budget."""
    repetition_penalty: float
    """Loss above the same N and D on fresh data: the cost of repeating alone."""
    effective_tokens: float
    """D' (Muennighoff eq 5): what the D repeated tokens are worth in fresh ones."""


@dataclass(frozen=True)
class RepeatPlan:
    """The best run with U unique tokens and C FLOPs, against the plan with unlimited data."""

    budget: float
    unique_tokens: float
    capped: Plan
    """The best N and D = epochs x U with the data capped (loss, interval, extrapolation warnings)."""
    unlimited: Plan
    """The compute-optimal run on fresh data (U = D), the law's chinchilla frontier."""
    epochs: float
    """Passes over U of the capped plan (D / U; below 1, U is more than the budget can use)."""
    penalty: float
    """capped.loss - unlimited.loss."""
    max_penalty: float
    epochs_within_penalty: float
    """The most passes over D_opt/e unique tokens at the unlimited plan's N and D that cost at most
    ``max_penalty`` against fresh data."""
    table: list[EpochRow] = field(default_factory=list)
    params: Mapping[str, float] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _loss(law: PlanningLaw, n: Any, d: Any, u: Any) -> np.ndarray:
    shape = np.broadcast(n, d, u).shape
    n, d, u = (np.broadcast_to(np.asarray(x, dtype=float), shape).reshape(-1) for x in (n, d, u))
    return get_form(law.form).predict(law.params, {"N": n, "D": d, "U": u}).reshape(shape)


def repetition_penalty(law: PlanningLaw, n: float, d: float, epochs: np.ndarray) -> np.ndarray:
    """Loss of N parameters on D tokens made of D/e unique ones repeated e times, minus that on D fresh tokens."""
    e = np.asarray(epochs, dtype=float)
    return _loss(law, n, d, d / e) - _loss(law, n, d, d)


def epochs_within(law: PlanningLaw, n: float, d: float, max_penalty: float) -> float:
    """The most epochs e whose :func:`repetition_penalty` is at most ``max_penalty`` (it grows with e)."""
    gap = lambda le: float(repetition_penalty(law, n, d, np.exp(le))) - max_penalty  # noqa: E731
    if gap(np.log(MAX_EPOCHS)) <= 0:
        return MAX_EPOCHS
    if gap(0.0) > 0:
        return 1.0
    return float(np.exp(optimize.brentq(gap, 0.0, np.log(MAX_EPOCHS), xtol=1e-6)))


def plan_repeat(
    law: PlanningLaw,
    unique_tokens: float,
    budget: float,
    max_penalty: float = 0.01,
    level: float = 0.95,
    epochs: Sequence[float] = EPOCHS,
) -> RepeatPlan:
    """The best N and epochs for ``budget`` FLOPs with ``unique_tokens`` of data (see the module docstring)."""
    if law.form != LAW:
        raise ConfigError(f"--unique-tokens plans with the {LAW} law; fit one (scalinglab fit ... --law {LAW}), not {law.form}.")
    for name, value in (("--unique-tokens", unique_tokens), ("--budget", budget)):
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a finite positive number, e.g. {name} 1e9 (got {value}).")
    if not (np.isfinite(max_penalty) and max_penalty > 0):
        raise ConfigError(f"--max-penalty must be a positive loss difference in nats, e.g. 0.01 (got {max_penalty}).")
    base = {"budget": float(budget), "law": law.form, "source": law.source, "convention": law.convention}
    with np.errstate(all="ignore"):
        fresh = optimal_allocation(lambda n, d: _loss(law, n, d, d), budget)
        capped = optimal_allocation(lambda n, d: _loss(law, n, d, unique_tokens), budget)
    n_u, d_u = float(fresh.n_opt), float(fresh.d_opt)
    n_c, d_c = float(capped.n_opt), float(capped.d_opt)
    unlimited = _checked(law, Plan(
        loss=float(fresh.loss), n_params=n_u, tokens=d_u, tokens_per_param=d_u / n_u, **base,
        **_interval(law, {"N": np.array([n_u]), "D": np.array([d_u]), "U": np.array([d_u])}, level),
    ))  # fmt: skip
    plan = _checked(law, Plan(
        loss=float(capped.loss), n_params=n_c, tokens=d_c, tokens_per_param=d_c / n_c, **base,
        **_interval(law, {"N": np.array([n_c]), "D": np.array([d_c]), "U": np.array([float(unique_tokens)])}, level),
    ))  # fmt: skip
    rows = []
    for e in epochs:
        d = e * unique_tokens
        n = budget / (6 * d)
        loss = float(_loss(law, n, d, unique_tokens))
        rows.append(EpochRow(
            float(e), n, d, loss, loss - unlimited.loss, float(repetition_penalty(law, n, d, e)),
            float(effective_sizes(law.params, n, d, unique_tokens)[1][0]),
        ))  # fmt: skip
    within = epochs_within(law, n_u, d_u, max_penalty)
    notes = [
        f"epochs within the penalty: at the fresh-data optimum (N {n_u:.3g}, D {d_u:.3g}), D/e unique tokens repeated "
        f"e times cost at most {max_penalty:g} nats against fresh data up to e = {within:.3g} (Muennighoff et al. 2023 "
        "find about 4 on C4)."
    ]
    if d_c / unique_tokens < 1:
        notes.append(f"the budget's best run uses {d_c:.3g} of the {unique_tokens:.3g} unique tokens: the data do not bind.")
    found = [*unlimited.warnings, *(w for w in plan.warnings if w not in unlimited.warnings), *_reach(law, unique_tokens, d_c)]
    return RepeatPlan(
        budget=float(budget), unique_tokens=float(unique_tokens), capped=plan, unlimited=unlimited,
        epochs=d_c / unique_tokens, penalty=plan.loss - unlimited.loss, max_penalty=float(max_penalty),
        epochs_within_penalty=within, table=rows, params=dict(law.params), warnings=found, notes=notes,
    )  # fmt: skip


def _reach(law: PlanningLaw, unique_tokens: float, tokens: float) -> list[dict[str, Any]]:
    """Warnings for a U or a number of epochs beyond the fitted runs' by more than a decade."""
    out = []
    for name, value in (("U", unique_tokens), ("epochs", tokens / unique_tokens)):
        if name not in law.data_range:
            continue
        lo, hi = law.data_range[name]
        decades = _decades_outside(max(value, 1.0) if name == "epochs" else value, lo, hi)
        if decades > EXTRAPOLATION_WARN_DECADES:
            out.append(warning(
                "extrapolation", name,
                f"the plan's {name} = {value:.3g} lies {decades:.1f} decades outside the fitted runs' ({lo:.3g} to {hi:.3g}); "
                "the value of repetition there is the law's guess: add runs nearer it.",
            ))  # fmt: skip
    return out

