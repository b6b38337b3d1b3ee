"""Named, versioned recipes: every run's hyper-parameters from its size and its budget.

A study never relies on hidden defaults: its recipe sets the peak learning rate, the batch, the
warmup and the decay of each run from N (Kaplan's non-embedding count) and the run's length. A recipe
is frozen once published; a better rule gets a new name (``tuned-v2``), so an old study file keeps
its meaning and its run identities.

- ``kaplan2020`` reproduces Kaplan et al.'s setup scaled to small runs: LR by eq D.1, a linear warmup
  of 3000 of 250k steps (1.2% of the run) and a cosine decay to zero over the whole run (Kaplan §2.2,
  App D.6); the batch is the study's base batch (Kaplan used one batch, 2^19 tokens, for most runs).
- ``tuned-v1`` applies the corrections of Porian et al. 2024 (spec §5.4, §6 items 3-5): a warmup of at
  most 5% of the run and at most N tokens; a cosine matched to the budget decaying 10x (Hoffmann App B);
  LR by N from the GPT-3 per-size learning rates (``train.lr_rules.tuned_lr``); a batch that grows with N
  like Kaplan's critical batch, B ∝ L(N)^-4.8 ∝ N^(0.076*4.8) (Kaplan eqs 1.1 and 1.4), anchored at
  16,384 tokens for N = 1e6 so that CPU-sized runs get hundreds of steps. The anchor is a v1 choice, not
  a measurement on this corpus: re-anchor it from a ``batch_scan`` and publish the result as tuned-v2.
- ``tiny-v1`` is ``kaplan2020`` for models a few dozen wide: LR = 0.4 / d_model and an init std of
  1 / sqrt(d_model). Eq D.1 was fitted to models of d_model >= 128 and gives about 1.8e-3 at d_model =
  24..96, and GPT-2's init std of 0.02 suits d_model ~ 768 (0.55 / sqrt(d_model)); at a few dozen wide
  both are several times too small, and short runs then spend most of their steps on the early plateau,
  where the loss hardly depends on N. Measured on 2-layer models of d_model 24..64, 1M tokens of the
  built-in corpus, n_ctx 64 and 512 tokens per step: with the 0.02 init, the best LR between eq D.1's
  and 0.032 (4-7 values per width) was at LR x d_model = 0.4-0.5 for d_model 32, 48 and 64 (0.4 and 0.8
  tied at 24); with the 1 / sqrt(d_model) init, 0.4 / d_model beat 0.2 / d_model and 0.8 / d_model at
  d_model 32 and 64. Together the two rules lowered the loss at
  1M tokens by 0.5-0.65 nats (d_model 24: 4.76 -> 4.22; 32: 4.73 -> 4.10; 64: 4.53 -> 3.99).
  ``studies/lr_width.toml`` is that sweep as a study, to re-measure the constant on another corpus. The
  1 / width LR is muP's for Adam (Yang et al. 2021, Tensor Programs V); the init is the usual fan-in one.

A recipe fills only what the study leaves unset: it never overrides a field in ``keep``, which holds
every field the study file sets (its [base] tables, a design's overrides and the fields the design
pins), so ``[base.schedule] kind = "wsd"`` trains WSD, an ``lr_scan`` keeps its learning rates, a
``batch_scan`` its batches, and the recipe fits the rest (warmup, decay) around them. Each recipe
declares the fields it may set (:data:`RECIPE_FIELDS`), so ``study plan`` can say where every
hyper-parameter came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from scalinglab.config import replace_fields
from scalinglab.errors import ConfigError
from scalinglab.model.counting import count_params
from scalinglab.train.budget import resolve_steps, tokens_per_step
from scalinglab.train.config import RunConfig
from scalinglab.train.lr_rules import kaplan_lr, tuned_lr

Recipe = Callable[[RunConfig, frozenset[str]], RunConfig]
"""A recipe maps a run (shape, budget and the design's pinned fields set) to the run fully specified."""

RECIPES: dict[str, Recipe] = {}

RECIPE_FIELDS: dict[str, frozenset[str]] = {}
"""The dotted fields each recipe may set (everything else keeps the study's value or the default)."""

_KAPLAN_FIELDS = (
    "optim.lr", "optim.lr_rule", "schedule.kind", "schedule.warmup_fraction", "schedule.warmup_steps",
    "schedule.min_lr_ratio",
)  # fmt: skip

KAPLAN_WARMUP_FRACTION = 3000 / 250_000
"""Kaplan's 3000 warmup steps out of 2.5e5 training steps (Kaplan §2.2, §3)."""

TUNED_WARMUP_FRACTION = 0.05
"""tuned-v1's warmup cap as a fraction of the run (Porian et al. 2024: short warmup)."""

TUNED_MIN_LR_RATIO = 0.1
"""tuned-v1 decays the LR 10x over the run (Hoffmann et al. 2022, §3 and App B)."""

TUNED_BATCH_EXPONENT = 0.076 * 4.8
"""B ∝ N^0.365: Kaplan's B_crit ∝ L^-4.8 (eq 1.4) with L ∝ N^-0.076 (eq 1.1)."""

TUNED_BATCH_ANCHOR = (1e6, 16_384)
"""(N, tokens per step) that tuned-v1's batch rule passes through; a CPU-scale v1 choice."""

TINY_LR_TIMES_WIDTH = 0.4
"""tiny-v1's LR x d_model, from the lr_scan of ``studies/lr_width.toml`` (see the module docstring)."""

TINY_INIT_TIMES_SQRT_WIDTH = 1.0
"""tiny-v1's init std x sqrt(d_model): the fan-in init (see the module docstring)."""


def recipe(name: str, sets: tuple[str, ...]) -> Callable[[Recipe], Recipe]:
    """Register a recipe under ``name`` that sets the dotted fields ``sets`` (names are versioned: never
    change a published one)."""

    def register(fn: Recipe) -> Recipe:
        RECIPES[name] = fn
        RECIPE_FIELDS[name] = frozenset(sets)
        return fn

    return register


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises :class:`ConfigError` listing the known ones.

    ``fitted:path/hparams.json`` is the fitted-v1 recipe: tiny-v1 with the LR and batch of the
    hyper-parameter laws in that file (``scalinglab hparams --out``; laws.hparams_plan).
    """
    if name.startswith("fitted:"):  # read afresh each time: the file is the recipe's content
        from scalinglab.laws.hparams_plan import fitted_recipe

        RECIPE_FIELDS[name] = RECIPE_FIELDS["tiny-v1"] | {"optim.batch_size", "optim.micro_batch_size"}
        return fitted_recipe(name.partition(":")[2])
    if name not in RECIPES:
        raise ConfigError(
            f"unknown recipe '{name}'; choose one of {', '.join(sorted(RECIPES))}, or fitted:path/hparams.json."
        )
    return RECIPES[name]


def _apply(cfg: RunConfig, keep: frozenset[str], updates: Mapping[str, Any]) -> RunConfig:
    return replace_fields(cfg, {k: v for k, v in updates.items() if k not in keep})


@recipe("kaplan2020", sets=_KAPLAN_FIELDS)
def kaplan2020(cfg: RunConfig, keep: frozenset[str] = frozenset()) -> RunConfig:
    """Kaplan et al. 2020: LR by eq D.1, warmup 1.2% of the run, cosine to zero; the base batch."""
    n = count_params(cfg.model)["N"]
    lr = kaplan_lr(n)
    if lr <= 0:  # eq D.1 crosses zero at N = 1.2e10 (Kaplan App D.6)
        raise ConfigError(f"recipe kaplan2020: eq D.1 gives LR {lr:.3g} <= 0 at N={n:.3g}; use recipe 'tuned-v1'.")
    return _apply(
        cfg,
        keep,
        {
            "optim.lr": lr,
            "optim.lr_rule": "fixed",
            "schedule.kind": "cosine",
            "schedule.warmup_fraction": KAPLAN_WARMUP_FRACTION,
            "schedule.warmup_steps": 0,
            "schedule.min_lr_ratio": 0.0,  # "cosine decay to zero" (Kaplan §2.2)
        },
    )


@recipe("tiny-v1", sets=(*_KAPLAN_FIELDS, "model.init_std"))
def tiny_v1(cfg: RunConfig, keep: frozenset[str] = frozenset()) -> RunConfig:
    """kaplan2020 with the LR and init of models a few dozen wide: LR = 0.4 / d_model, init std 1 / sqrt(d_model)."""
    d = cfg.model.d_model
    updates = {"optim.lr": TINY_LR_TIMES_WIDTH / d, "model.init_std": TINY_INIT_TIMES_SQRT_WIDTH / math.sqrt(d)}
    return _apply(kaplan2020(cfg, keep), keep, updates)


def tuned_batch_tokens(n: float) -> float:
    """tuned-v1's tokens per step for N non-embedding parameters (see the module docstring)."""
    n_ref, b_ref = TUNED_BATCH_ANCHOR
    return b_ref * (n / n_ref) ** TUNED_BATCH_EXPONENT


@recipe(
    "tuned-v1",
    sets=("optim.batch_size", "optim.micro_batch_size", "optim.lr", "optim.lr_rule", "schedule.kind",
          "schedule.warmup_steps", "schedule.min_lr_ratio"),
)
def tuned_v1(cfg: RunConfig, keep: frozenset[str] = frozenset()) -> RunConfig:
    """Porian-style corrections: short warmup (<= 5% and <= N tokens), cosine 10x, LR and batch by N."""
    n = count_params(cfg.model)["N"]
    # batch in sequences, rounded to a power of two for regular shapes
    batch = 2 ** max(0, round(math.log2(tuned_batch_tokens(n) / cfg.model.n_ctx)))
    if "optim.batch_size" not in keep:  # a micro-batch that does not divide the recipe's batch is dropped
        micro = cfg.optim.micro_batch_size if batch % max(1, cfg.optim.micro_batch_size) == 0 else 0
        cfg = _apply(cfg, keep, {"optim.batch_size": batch, "optim.micro_batch_size": micro})
    steps = resolve_steps(cfg)
    warmup = min(TUNED_WARMUP_FRACTION * steps, n / tokens_per_step(cfg))  # P24: warmup <= N tokens
    return _apply(
        cfg,
        keep,
        {
            "optim.lr": tuned_lr(n),
            "optim.lr_rule": "fixed",
            "schedule.kind": "cosine",
            "schedule.warmup_steps": max(1, math.floor(warmup)),
            "schedule.min_lr_ratio": TUNED_MIN_LR_RATIO,
        },
    )
