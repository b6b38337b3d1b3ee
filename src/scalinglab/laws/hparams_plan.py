"""Using fitted hyper-parameter laws: the LR, batch and steps of a planned run, and the ``fitted:`` recipe.

:func:`plan_hparams` completes a compute-optimal plan (laws.plan) with η_opt(N, D) and B_opt(N, D)
from an ``hparams.json`` (laws.hparams), each with an interval that holds both the laws' own
prediction interval and the plan's uncertainty in N and D (D = C/(6N) at the ends of N's interval).
:func:`fitted_recipe` is the recipe ``fitted:path/hparams.json`` (rules ``fitted-v1``): tiny-v1's
init and schedule, with the learning rate and batch the laws give at the run's N and D.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.errors import ConfigError
from scalinglab.laws.diagnostics import warning
from scalinglab.laws.hparams import HparamsFit, PowerLaw

EXTRAPOLATION = 2.0
"""Warn when a plan's N or D lies more than this factor outside the cells the laws were fitted on."""


@dataclass(frozen=True)
class HparamsPlan:
    """The learning rate, batch (tokens per step) and steps for a run of N parameters on D tokens."""

    lr: float | None
    lr_interval: tuple[float, float] | None
    batch_tokens: float | None
    batch_interval: tuple[float, float] | None
    steps: float | None
    steps_interval: tuple[float, float] | None
    source: str
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plan_fields(self) -> dict[str, Any]:
        """What a plan's JSON gains: lr, the intervals of lr, batch and steps, and the whole under 'hparams'."""
        keys = ("lr", "lr_interval", "batch_interval", "steps_interval")
        return {**{k: getattr(self, k) for k in keys}, "hparams": self.to_dict()}


def _range(law: PowerLaw, points: list[tuple[float, float]], level: float) -> tuple[float, tuple[float, float]]:
    """The law at the first point, and the widest prediction interval over all the points."""
    lo, hi = law.interval(np.array([p[0] for p in points]), np.array([p[1] for p in points]), level)
    return float(law.predict(*points[0])), (float(lo.min()), float(hi.max()))


def _extrapolation(law: PowerLaw, n: float, d: float, name: str) -> list[dict[str, Any]]:
    out = []
    for label, value, (lo, hi) in (("N", n, law.N_range), ("D", d, law.D_range)):
        factor = max(lo / value, value / hi)
        if factor > EXTRAPOLATION:
            out.append(warning("extrapolation", f"{name}.{label}", f"{label} = {value:.3g} is {factor:.3g}x outside the cells of the {name} law ({lo:.3g}..{hi:.3g}); its interval assumes the power law holds that far."))
    return out


def plan_hparams(
    hp: HparamsFit,
    n: float,
    d: float,
    level: float = 0.95,
    n_interval: tuple[float, float] | None = None,
    compute: float | None = None,
    source: str = "",
) -> HparamsPlan:
    """η_opt, B_opt and steps = D/B_opt at (n, d); with ``n_interval`` and ``compute`` the intervals also
    span the ends of N's interval at D = compute/(6N)."""
    points = [(n, d)]
    if n_interval is not None and compute is not None:
        points += [(float(x), compute / (6 * float(x))) for x in n_interval]
    warns: list[dict[str, Any]] = []
    lr = lr_int = batch = batch_int = steps = steps_int = None
    if hp.lr is not None:
        lr, lr_int = _range(hp.lr, points, level)
        warns += _extrapolation(hp.lr, n, d, "lr")
    if hp.batch is not None:
        batch, batch_int = _range(hp.batch, points, level)
        steps = d / batch
        lo, hi = hp.batch.interval(np.array([p[0] for p in points]), np.array([p[1] for p in points]), level)
        per_point = [p[1] / np.array([h, lo_]) for p, lo_, h in zip(points, lo, hi)]
        steps_int = (float(min(s.min() for s in per_point)), float(max(s.max() for s in per_point)))
        warns += _extrapolation(hp.batch, n, d, "batch")
    missing = [name for name, law in (("lr", hp.lr), ("batch", hp.batch)) if law is None]
    if missing:
        warns.append(warning("unidentified", None, f"the hparams file has no {' or '.join(missing)} law; refit it on cells that identify it."))
    laws = [w for w in hp.warnings if not w["message"].startswith(("cell ", "cell(s) "))]  # the laws', not each cell's
    if len(laws) < len(hp.warnings):
        laws.append(warning("note", None, f"the hparams file has {len(hp.warnings) - len(laws)} more warning(s) about its cells; `scalinglab hparams` prints them."))
    return HparamsPlan(lr, lr_int, batch, batch_int, steps, steps_int, source or hp.source, warns + laws)


# --------------------------------------------------------------------------------------------------
# The fitted recipe


def fitted_recipe(path: str | Path):
    """The recipe ``fitted:<path>``: tiny-v1, then LR = η_opt(N, D) and batch = B_opt(N, D) from the file.

    The batch is B_opt in sequences, rounded to the nearest power of two (in log); fields the design
    pins (an lr_scan's LR, a batch_scan's batch) are kept.
    """
    from scalinglab.model.counting import count_params
    from scalinglab.study.recipes import replace_fields, tiny_v1
    from scalinglab.train.budget import resolve_steps, tokens_per_step
    from scalinglab.train.config import RunConfig

    hp = HparamsFit.load(path)
    if hp.lr is None:
        raise ConfigError(f"recipe 'fitted:{path}': the file has no LR law; refit it with `scalinglab hparams` on cells that identify one.")

    def recipe(cfg: RunConfig, keep: frozenset[str] = frozenset()) -> RunConfig:
        cfg = tiny_v1(cfg, keep)
        n = count_params(cfg.model)["N"]
        d = resolve_steps(cfg) * tokens_per_step(cfg)
        updates: dict[str, Any] = {}
        if hp.batch is not None and "optim.batch_size" not in keep:
            seqs = 2 ** max(0, round(math.log2(float(hp.batch.predict(n, d)) / cfg.model.n_ctx)))
            micro = cfg.optim.micro_batch_size if seqs % max(1, cfg.optim.micro_batch_size) == 0 else 0
            updates.update({"optim.batch_size": seqs, "optim.micro_batch_size": micro})
        if "optim.lr" not in keep:
            updates["optim.lr"] = float(hp.lr.predict(n, d))
        return replace_fields(cfg, updates) if updates else cfg

    recipe.__doc__ = f"fitted-v1 from {path}: tiny-v1's init and schedule; LR and batch from its laws at the run's N and D."
    return recipe


def with_plan(plan: Any, hp_plan: HparamsPlan) -> Any:
    """The plan with its batch and steps replaced by the fitted laws' (a ``laws.plan.Plan``)."""
    if hp_plan.batch_tokens is None:
        return plan
    note = f"LR, batch and steps from the hyper-parameter laws in {hp_plan.source} (eta_opt(N, D), B_opt(N, D))."
    return replace(plan, batch_tokens=hp_plan.batch_tokens, steps=hp_plan.steps, notes=[*plan.notes, note])
