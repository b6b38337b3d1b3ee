"""Plan a training run: model size, tokens, batch, steps and expected loss for a compute budget.

A :class:`PlanningLaw` is a fitted law (``fit.json``) or a published preset (:data:`PRESETS`), plus an
optional B_crit(L) law for the batch. :func:`plan_budget` answers "what should I train with C FLOPs?",
:func:`plan_target_loss` "how much compute to reach loss L?". Which allocation rule applies depends
on the law:

- ``chinchilla``: Hoffmann eq 4 in closed form; other laws of N and D (``kaplan_nd``, user laws):
  L(N, C/(6N)) minimised numerically; both with the cost of an off-optimal size at the same loss;
- ``kaplan_ns`` with a B_crit law, and the ``kaplan2020`` preset: Kaplan App. B / Table 6, training
  at B = B_crit so that C = 2 C_min and S = 2 S_min (eq 5.2), with the B.16-B.17 cost curve;
- laws of compute alone (``kaplan_c``, ``kaplan_cmin``, ``chinchilla_c``): the loss only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalinglab.constants import EPOCH_REFIT, HOFFMANN_APPROACH3_TEX, PF_DAY
from scalinglab.errors import ConfigError, FitError
from scalinglab.laws.batch import BcritLaw
from scalinglab.laws.diagnostics import EXTRAPOLATION_WARN_DECADES, RUN_KINDS, warning
from scalinglab.laws.forms import Form, get_form
from scalinglab.laws.frontier import (
    LOSS_RESOLUTION,
    KaplanFrontier,
    KaplanTable6,
    chinchilla_allocation,
    compute_for_loss,
    iso_loss_cost,
    kaplan_min_tokens,
    optimal_allocation,
)

if TYPE_CHECKING:
    from scalinglab.laws.fit import FitResult

MIN_TOKENS_PER_PARAM = 0.1
"""Below this a plan is refused: no run of the fitted kind trains on so few tokens (Epoch drop
Chinchilla's runs below 0.4, spec §5.2), so such an allocation says the law is not identified."""

COST_RATIOS = (0.6, 0.8, 1.0, 1.25, 1.6, 2.2)
"""Model sizes relative to the optimum for the cost curve; Kaplan App. B: 0.6x-2.2x costs <= +20%."""

Interval = Callable[[Mapping[str, np.ndarray], float], tuple[np.ndarray, np.ndarray]]
"""(inputs {column: values}, level) -> (low, high) prediction interval of the loss at those inputs."""


@dataclass(frozen=True)
class PlanningLaw:
    """A loss law to plan with: a form and its parameters, from a fit or a published preset."""

    form: str
    """A name in ``scalinglab.laws.forms.FORMS`` (or a user law), or ``kaplan_table6`` for the preset."""
    params: Mapping[str, float]
    """Public parameters of the form, unrounded."""
    source: str
    """Where the law comes from: a ``fit.json`` path or a citation."""
    convention: str = ""
    """What N and C count (e.g. 'N non-embedding, C = 6NBS'), shown next to the plan."""
    bcrit: BcritLaw | None = None
    """B_crit(L) in tokens, to choose the batch and the number of steps."""
    interval: Interval | None = field(default=None, compare=False)
    """Prediction interval for a new run at given inputs (from a fit); None for published constants."""
    param_samples: list[dict[str, float]] = field(default_factory=list, compare=False)
    """Bootstrap refits of the parameters (from a fit), for intervals on N_opt and D_opt."""
    data_range: Mapping[str, tuple[float, float]] = field(default_factory=dict, compare=False)
    """The smallest and largest C, N and D of the runs fitted (a preset: the ranges its paper states), to say
    how far a plan extrapolates."""
    fit_warnings: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    """The fit's own warnings (a parameter on its bound, one not identified, failed refits): a plan from
    that law repeats them, since its numbers rest on those parameters."""


@dataclass(frozen=True)
class CostPoint:
    """One point of the off-optimal cost curve: a model ``ratio`` x the optimum, at the optimum's loss."""

    ratio: float
    compute: float
    """C / C_opt (Kaplan eq B.16, or its numeric analogue for laws of N and D)."""
    steps: float | None = None
    """S / S_opt (Kaplan eq B.17) where the law has steps."""
    tokens: float | None = None
    """D / D_opt for laws of N and D."""


@dataclass(frozen=True)
class Plan:
    """What to train for one budget, and what it should give."""

    budget: float
    """Training compute C in FLOPs, in the law's convention."""
    loss: float
    law: str
    source: str
    convention: str
    n_params: float | None = None
    tokens: float | None = None
    tokens_per_param: float | None = None
    batch_tokens: float | None = None
    steps: float | None = None
    loss_interval: tuple[float, float] | None = None
    interval_level: float | None = None
    n_params_interval: tuple[float, float] | None = None
    """Bootstrap percentile interval of N_opt (refits of the law over resampled runs)."""
    tokens_interval: tuple[float, float] | None = None
    c_min: float | None = None
    """Kaplan eq 5.5: the compute at B ≪ B_crit; training at B = B_crit spends 2 C_min."""
    s_min: float | None = None
    """Kaplan eq 5.4: the steps at B ≫ B_crit; training at B = B_crit takes 2 S_min."""
    dataset_tokens_needed: float | None = None
    """Kaplan eq 4.4: a dataset of D ≳ 5e3 N^0.74 tokens keeps overfitting below seed noise."""
    cost_curve: list[CostPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    decades_beyond: float | None = None
    """How many decades the plan's C, N or D (the farthest) lies outside the fitted runs' range; None
    without a fitted range (published constants)."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """``{"kind", "param", "message"}`` entries, as a fit's warnings (e.g. extrapolation past a decade)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# Published constants


KAPLAN_TABLE6 = KaplanTable6()
KAPLAN_APP_B = KaplanFrontier()
KAPLAN_BCRIT = BcritLaw()

CHINCHILLA_RANGE = {"N": (7e7, 1.6e10), "D": (5e9, 5e11)}
"""Hoffmann et al. 2022 §3: models of 70M to 16B parameters trained on 5B to 500B tokens (spec §5)."""

PRESETS: dict[str, PlanningLaw] = {
    # Kaplan et al. 2020 Table 6 (allocation), Table 5 (L(C_min), B_crit), Table 3 (α_N, α_S for
    # the App. B cost curve); spec §1.5, §1.7. WebText2 with GPT-2 BPE.
    "kaplan2020": PlanningLaw(
        form="kaplan_table6",
        params=dataclasses.asdict(KAPLAN_TABLE6),
        source="Kaplan et al. 2020, Table 6 (allocation) and Table 5 (L(C_min), B_crit) [spec §1.5, §1.7]",
        convention="N non-embedding; C = 6NBS at B = B_crit = 2 C_min; WebText2, GPT-2 BPE",
        bcrit=KAPLAN_BCRIT,
        # K20 §3: N from 768 to 1.5e9 non-embedding parameters, D from 22M to 23B tokens; Fig 13's frontier
        # spans C_min of 1e-8 to 1 PF-day (spec §2, §4)
        data_range={"N": (768.0, 1.5e9), "D": (2.2e7, 2.3e10), "C_min": (1e-8 * PF_DAY, PF_DAY)},
    ),
    # Hoffmann et al. 2022 approach 3, unrounded TeX values (E = exp(0.5267228) ...) via Besiroglu et
    # al.'s code; spec §5.1. The rounded values in the paper's body are biased (spec §5.2).
    "chinchilla2022": PlanningLaw(
        form="chinchilla",
        params=dict(HOFFMANN_APPROACH3_TEX),
        source="Hoffmann et al. 2022, approach 3 (§3.3, App. D.2), unrounded TeX constants [spec §5.1]",
        convention="N total (embeddings included); C = 6ND; MassiveText, 32k SentencePiece",
        data_range=CHINCHILLA_RANGE,
    ),
    # Besiroglu et al. 2024's refit of Chinchilla Fig 4 (240 runs); spec §5.2.
    "epoch2024": PlanningLaw(
        form="chinchilla",
        params=dict(EPOCH_REFIT),
        source="Besiroglu et al. 2024 (Epoch AI), refit of Chinchilla's runs [spec §5.2]",
        convention="N total (embeddings included); C = 6ND; MassiveText, 32k SentencePiece",
        data_range=CHINCHILLA_RANGE,
    ),
}


def get_preset(name: str) -> PlanningLaw:
    """A published law by name (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name]


def load_planning_law(
    path: str | Path, bcrit: BcritLaw | None = None, form: Form | None = None, trust_law_file: bool = False
) -> PlanningLaw:
    """A :class:`PlanningLaw` from a ``fit.json`` written by ``scalinglab fit``, with its prediction interval.

    A fit of a user law needs that law again as ``form`` (or ``trust_law_file``): see ``FitResult.load``.
    """
    from scalinglab.laws.fit import FitResult

    return planning_law(FitResult.load(path, form, trust_law_file), str(path), bcrit)


def planning_law(fit: FitResult, source: str, bcrit: BcritLaw | None = None) -> PlanningLaw:
    """A :class:`PlanningLaw` of a fitted law: its prediction interval, its bootstrap refits, the range of the
    runs it was fitted on (how far a plan extrapolates) and its warnings (a plan repeats them)."""
    samples = [] if fit.bootstrap is None else fit.bootstrap[list(fit.form.params)].to_dict("records")
    data = fit.data[fit.data["weight"] > 0] if "weight" in fit.data else fit.data
    columns = {c: data[c].to_numpy(float) for c in ("C", "N", "D", "C_min", "U") if c in data}
    if "C" not in columns and {"N", "D"} <= set(columns):
        columns["C"] = 6 * columns["N"] * columns["D"]  # C = 6ND, the convention of the fits (Kaplan §2.1)
    if {"D", "U"} <= set(columns):
        columns["epochs"] = np.maximum(columns["D"] / columns["U"], 1.0)  # passes over the unique data
    return PlanningLaw(
        form=fit.form.name,
        params=dict(fit.params),
        source=source,
        convention=getattr(fit, "convention", "") or "",
        bcrit=bcrit,
        interval=lambda inputs, level: fit.prediction_interval(inputs, level=level),
        param_samples=samples,
        data_range={c: (float(v.min()), float(v.max())) for c, v in columns.items() if len(v)},
        fit_warnings=tuple(w for w in fit.warnings if w.get("kind") not in RUN_KINDS),
    )


def load_bcrit(spec: str) -> BcritLaw:
    """A B_crit(L) law from a ``fit.json`` of the ``bcrit`` form, or ``kaplan2020`` (Table 5)."""
    if spec == "kaplan2020":
        return KAPLAN_BCRIT
    from scalinglab.laws.fit import FitResult

    return BcritLaw.from_fit(FitResult.load(spec))


# --------------------------------------------------------------------------------------------------
# Planning


def _loss_nd(law: PlanningLaw) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    form = get_form(law.form)
    if "U" in form.inputs:  # the data-constrained law with fresh data, U = D (laws.repeat_plan caps U)
        return lambda n, d: form.predict(
            law.params, {"N": np.atleast_1d(n), "D": np.atleast_1d(d), "U": np.atleast_1d(d)}
        ).reshape(np.shape(n))
    return lambda n, d: form.predict(law.params, {"N": np.atleast_1d(n), "D": np.atleast_1d(d)}).reshape(np.shape(n))


def _kaplan_frontier(law: PlanningLaw) -> KaplanFrontier:
    if law.bcrit is None:
        raise FitError(
            "planning with L(N, S) needs B_crit(L) to turn steps into compute; "
            "pass --bcrit bcrit_fit.json (a fit of --law bcrit) or --bcrit kaplan2020."
        )
    return KaplanFrontier.from_laws(law.params, law.bcrit)


def _family(law: PlanningLaw) -> str:
    if law.form in ("kaplan_table6", "chinchilla", "kaplan_ns"):
        return law.form
    inputs = get_form(law.form).inputs
    if set(inputs) == {"N", "D"} or law.form == "data_constrained":  # the latter on fresh data (U = D)
        return "nd"
    if len(inputs) == 1 and inputs[0] in ("C", "C_min"):
        return "compute"
    raise FitError(
        f"law '{law.form}' (inputs {', '.join(inputs)}) cannot plan a budget; fit chinchilla, kaplan_nd, "
        "kaplan_ns, kaplan_c, kaplan_cmin or chinchilla_c, or use --preset."
    )


def frontier_loss(law: PlanningLaw) -> Callable[[float], float]:
    """The loss the law predicts at the compute-optimal allocation, as a function of the budget."""
    family = _family(law)
    if family == "kaplan_table6":
        return lambda c: float(KAPLAN_TABLE6.loss(c / 2))
    if family == "kaplan_ns":
        frontier = _kaplan_frontier(law)
        return lambda c: float(frontier.loss(c / 2))
    if family == "chinchilla":
        return lambda c: float(chinchilla_allocation(**law.params, compute=c).loss)
    if family == "nd":
        loss_nd = _loss_nd(law)
        return lambda c: float(optimal_allocation(loss_nd, c).loss)
    form = get_form(law.form)
    return lambda c: float(form.predict(law.params, {form.inputs[0]: np.array([c])})[0])


def plan_budget(law: PlanningLaw, budget: float, level: float = 0.95) -> Plan:
    """The compute-optimal run for ``budget`` FLOPs under ``law`` (see the module docstring)."""
    if not (np.isfinite(budget) and budget > 0):
        raise ConfigError(f"the budget must be a finite positive number of FLOPs, e.g. --budget 1e21 (got {budget}).")
    if not 0 < level < 1:
        raise ConfigError(f"the interval level must be between 0 and 1, e.g. 0.95 (got {level}).")
    with np.errstate(all="ignore"):  # overflow or 0/0 in a degenerate law is checked below, not printed raw
        try:
            plan = _plan_budget(law, budget, level)
        except (OverflowError, ZeroDivisionError) as e:  # Python floats raise where numpy gives inf
            raise FitError(
                f"the {law.form} law ({law.source}) gives no finite plan at C = {budget:.3g} FLOPs ({e}); its constants "
                "are degenerate: refit it on runs over a wider range."
            ) from None
    return _checked(law, plan)


def _plan_budget(law: PlanningLaw, budget: float, level: float) -> Plan:
    family = _family(law)
    base = {"budget": float(budget), "law": law.form, "source": law.source, "convention": law.convention}
    if family in ("kaplan_table6", "kaplan_ns"):
        return _plan_kaplan(law, budget, base, level)
    if family == "compute":
        form = get_form(law.form)
        inputs = {form.inputs[0]: np.array([float(budget)])}
        notes = [f"'{law.form}' is a law of compute alone: it predicts the loss, not N or D."]
        if form.inputs[0] == "C_min":
            notes.append("the budget is read as C_min (eq 5.5); training at B = B_crit spends twice that (eq 5.2).")
        return Plan(loss=float(form.predict(law.params, inputs)[0]), notes=notes, **base, **_interval(law, inputs, level))

    loss_nd = _loss_nd(law)
    alloc = chinchilla_allocation(**law.params, compute=budget) if family == "chinchilla" else optimal_allocation(loss_nd, budget)
    n, d, loss = float(alloc.n_opt), float(alloc.d_opt), float(alloc.loss)
    compute_ratio, token_ratio = iso_loss_cost(loss_nd, n, d, np.array(COST_RATIOS))
    curve = [CostPoint(r, float(c), None, float(t)) for r, c, t in zip(COST_RATIOS, compute_ratio, token_ratio)]
    notes = []
    if not np.isfinite(compute_ratio).any():  # the optimum itself is not resolved: the loss is flat to rounding
        curve = []
        notes.append(f"no cost table: at C = {budget:.3g} the law's loss changes by less than {LOSS_RESOLUTION:g} of itself "
                     "with an e-fold more tokens, below float precision, so the sizes that reach the same loss are not resolved.")
    batch = steps = None
    if law.bcrit is not None:
        batch = float(law.bcrit(loss))
        steps = d / batch
        notes.append("batch = B_crit at the predicted loss (Kaplan eq 1.4); steps = tokens / batch.")
    inputs = {"N": np.array([n]), "D": np.array([d]), **({"U": np.array([d])} if law.form == "data_constrained" else {})}
    return Plan(
        loss=loss, n_params=n, tokens=d, tokens_per_param=d / n, batch_tokens=batch, steps=steps,
        cost_curve=curve, notes=notes, **base, **_interval(law, inputs, level), **_allocation_intervals(law, budget, level),
    )  # fmt: skip


def _decades_outside(value: float, lo: float, hi: float) -> float:
    """Decades from ``value`` to the range [lo, hi] (0 inside it)."""
    return max(np.log10(value / hi), np.log10(lo / value), 0.0)


def _checked(law: PlanningLaw, plan: Plan) -> Plan:
    """The plan, refused where its numbers are nonsense, with the fit's warnings and one on how far it extrapolates."""
    plan = _in_range(law, plan)
    relayed = [{**w, "message": f"the fit ({law.source}) warned: {w['message']}"} for w in law.fit_warnings]
    return dataclasses.replace(plan, warnings=[*relayed, *plan.warnings]) if relayed else plan


def _in_range(law: PlanningLaw, plan: Plan) -> Plan:
    """The plan with how far it extrapolates, and a warning past a decade; refuses nonsense allocations.

    Each refusal says what data would fix it: the law was fitted too far from this budget, or on runs
    that do not pin down the allocation.
    """
    fitted = law.data_range
    where = f"at C={plan.budget:.3g}"
    if not np.isfinite(plan.loss) or any(v is not None and not np.isfinite(v) for v in (plan.n_params, plan.tokens)):
        raise FitError(
            f"the law '{law.form}' gives no finite allocation {where} (loss {plan.loss}); its fitted parameters are "
            "degenerate there: refit on runs closer to this budget, or use --preset."
        )
    tiny = {k: v for k, v in (("parameters", plan.n_params), ("tokens", plan.tokens)) if v is not None and v < 1}
    if tiny:
        raise FitError(
            f"the law recommends {' and '.join(f'{v:.3g} {k}' for k, v in tiny.items())} {where}: less than one, so "
            "the budget is far below anything the law was fitted on; plan a larger budget, or fit the law on runs "
            "near this one."
        )
    if plan.tokens_per_param is not None and plan.tokens_per_param < MIN_TOKENS_PER_PARAM:
        raise FitError(
            f"the law recommends {plan.tokens_per_param:.3g} tokens per parameter {where} (N {plan.n_params:.3g}, "
            f"D {plan.tokens:.3g}), below {MIN_TOKENS_PER_PARAM}: the fit does not pin down the data term; add runs "
            "with more tokens per parameter and at budgets nearer this one, then refit."
        )
    if plan.batch_tokens is not None and plan.tokens is not None and plan.batch_tokens > plan.tokens:
        raise FitError(
            f"the batch B_crit = {plan.batch_tokens:.3g} tokens {where} exceeds the plan's {plan.tokens:.3g} tokens: "
            "the B_crit law is extrapolated past its data; fit it on runs at losses nearer this plan's "
            f"({plan.loss:.4g})."
        )
    if plan.steps is not None and plan.steps < 1:
        raise FitError(
            f"the plan {where} trains for {plan.steps:.3g} steps, fewer than one: the B_crit law and the loss law "
            "disagree at this budget; fit both on runs nearer it."
        )
    if not fitted:
        return plan
    reach = {"C": plan.budget, "N": plan.n_params, "D": plan.tokens}
    if plan.c_min is not None and "C_min" in fitted:
        reach["C_min"] = plan.c_min
    outside = {k: _decades_outside(v, *fitted[k]) for k, v in reach.items() if v is not None and k in fitted}
    if not outside:
        return plan
    axis = max(outside, key=outside.get)
    decades = float(outside[axis])
    warnings = list(plan.warnings)
    if decades > EXTRAPOLATION_WARN_DECADES:
        lo, hi = fitted[axis]
        published = any(law == p for p in PRESETS.values())
        runs, fix = (("the paper's runs", "fit a law to runs near this budget (scalinglab fit) and plan with --fit") if published
                     else ("the fitted runs", "add runs within a decade of this budget"))  # fmt: skip
        warnings.append(warning(
            "extrapolation", axis,
            f"the plan extrapolates {decades:.1f} decades beyond {runs} ({axis} = {reach[axis]:.3g}; "
            f"fitted {lo:.3g} to {hi:.3g}); its numbers are a guess past one decade: {fix}.",
        ))  # fmt: skip
    return dataclasses.replace(plan, decades_beyond=decades, warnings=warnings)


def _allocation_intervals(law: PlanningLaw, budget: float, level: float, max_samples: int = 200) -> dict[str, Any]:
    """Percentile intervals of N_opt and D_opt over the law's bootstrap refits (none without refits)."""
    if not law.param_samples:
        return {}
    samples = law.param_samples[:max_samples]
    if law.form == "chinchilla":
        cols = {k: np.array([p[k] for p in samples]) for k in ("E", "A", "B", "alpha", "beta")}
        n = chinchilla_allocation(**cols, compute=budget).n_opt
    else:
        n = np.array([optimal_allocation(_loss_nd(dataclasses.replace(law, params=p)), budget).n_opt for p in samples])
    lo, hi = np.quantile(n, [(1 - level) / 2, (1 + level) / 2])
    return {"n_params_interval": (float(lo), float(hi)), "tokens_interval": (budget / (6 * hi), budget / (6 * lo))}


def _plan_kaplan(law: PlanningLaw, budget: float, base: dict[str, Any], level: float) -> Plan:
    """Kaplan: train at B = B_crit(L), which spends C = 2 C_min in 2 S_min steps (eq 5.2)."""
    c_min = budget / 2
    if law.form == "kaplan_table6":
        n, loss = float(KAPLAN_TABLE6.n_opt(c_min)), float(KAPLAN_TABLE6.loss(c_min))
        cost = KAPLAN_APP_B  # Table 3 exponents for the B.16-B.17 curve
    else:
        cost = _kaplan_frontier(law)
        n, loss = float(cost.n_opt(c_min)), float(cost.loss(c_min))
    batch = float(law.bcrit(loss))
    tokens = budget / (6 * n)
    steps = tokens / batch
    ratios = np.array(COST_RATIOS)
    curve = [
        CostPoint(float(r), float(c), float(s))
        for r, c, s in zip(ratios, cost.excess_compute(ratios), cost.excess_steps(ratios))
    ]
    needed = float(kaplan_min_tokens(n))
    notes = [
        f"compute-efficient training stops {cost.f:.0%} above the converged loss of this N (Kaplan eq B.5).",
    ]
    if needed > tokens:
        notes.append(
            f"a model this big needs D ≳ {needed:.3g} tokens to avoid a data bottleneck (eq 4.4) but the plan "
            f"processes {tokens:.3g}: the predicted loss may be optimistic (Kaplan §6.3)."
        )
    interval = _interval(law, {"N": np.array([n]), "S": np.array([steps / 2])}, level)  # L(N, S_min), eq 1.6
    return Plan(
        loss=loss, n_params=n, tokens=tokens, tokens_per_param=tokens / n, batch_tokens=batch, steps=steps,
        c_min=c_min, s_min=steps / 2, dataset_tokens_needed=needed, cost_curve=curve, notes=notes, **base, **interval,
    )  # fmt: skip


def _interval(law: PlanningLaw, inputs: Mapping[str, np.ndarray], level: float) -> dict[str, Any]:
    if law.interval is None:
        return {}
    lo, hi = law.interval(inputs, level)
    return {"loss_interval": (float(np.ravel(lo)[0]), float(np.ravel(hi)[0])), "interval_level": level}


def plan_target_loss(law: PlanningLaw, target: float, level: float = 0.95) -> Plan:
    """The smallest compute-optimal budget whose predicted loss is ``target``, and its plan."""
    budget = compute_for_loss(frontier_loss(law), target)
    return plan_budget(law, budget, level)
