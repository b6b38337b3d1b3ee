"""The length of a run: a budget in tokens, steps, FLOPs or tokens per parameter, as whole steps.

Pure functions of the config (no torch), so a study can cost every run of a design before training.
"""

from __future__ import annotations

from scalinglab.errors import ConfigError
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.train.config import RunConfig


def tokens_per_step(cfg: RunConfig) -> int:
    """Tokens in one optimiser step (the global batch): batch_size sequences of n_ctx tokens."""
    return cfg.optim.batch_size * cfg.model.n_ctx


def resolve_steps(cfg: RunConfig) -> int:
    """Optimiser steps of the run: the budget divided by the tokens per step, rounded to the nearest step.

    A FLOPs budget is converted to tokens under ``budget.flops_convention``; a tokens-per-parameter
    budget counts parameters as N_total (Chinchilla's convention, Hoffmann §3).
    """
    b = cfg.budget
    if b.steps:
        return b.steps
    if b.tokens:
        tokens = b.tokens
    elif b.flops:
        tokens = b.flops / flops_per_token(cfg.model)[b.flops_convention]
    else:
        tokens = b.tokens_per_param * count_params(cfg.model)["N_total"]
    steps = round(tokens / tokens_per_step(cfg))
    if steps < 1:
        raise ConfigError(
            f"the budget is {tokens:.3g} tokens, less than one step of {tokens_per_step(cfg)} tokens "
            "(optim.batch_size * model.n_ctx); raise the budget or lower optim.batch_size."
        )
    return steps
