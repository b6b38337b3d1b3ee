"""Shape recipes: from a target parameter count and an aspect ratio to a valid model shape.

Kaplan Fig 5: at fixed N the loss barely moves while d_model / n_layer ranges over ~20-200, so a
ladder holds the aspect ratio roughly fixed and lets N set the size. Integer layers and d_model in
multiples of head_dim make the grid coarse at small N, so the recipe searches the nearby shapes
rather than rounding the continuous solution of N = 12·n_layer·d_model².
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from scalinglab.config import check
from scalinglab.errors import ConfigError
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params

Convention = Literal["N", "N_total", "N_with_head"]

ASPECT_BAND = 2.0
"""Shapes whose aspect ratio is within this factor of the requested one are candidates (Kaplan Fig 5)."""
ASPECT_WEIGHT = 0.5
"""Weight of the aspect-ratio miss against the N miss (both in log units) when choosing a shape: the
law is fitted on the exact N, so a ladder's steady aspect ratio matters about as much as hitting N."""


def shape_for_params(
    target_N: float,
    aspect_ratio: float = 64.0,
    head_dim: int = 32,
    base: ModelConfig | None = None,
    convention: Convention = "N",
    rel_tol: float = 0.25,
) -> ModelConfig:
    """The shape with ``convention`` count nearest ``target_N`` at about ``aspect_ratio`` = d_model / n_layer.

    Candidates have n_layer >= 2 (Kaplan excludes 1-layer models from fits), d_model a multiple of
    ``head_dim`` (n_head = d_model / head_dim), an aspect ratio within a factor ``ASPECT_BAND`` of the
    request and a count within ``rel_tol`` of the target; the one with the smallest
    |log(N / target)| + ASPECT_WEIGHT·|log(aspect / aspect_ratio)| wins. ``base`` supplies every other
    field (n_ctx, vocab_size, dropout, ...); a non-default d_ff keeps its ratio to d_model. Raises
    :class:`ConfigError` when there is no candidate.
    """
    base = base or ModelConfig()
    check(target_N > 0, f"target N must be positive (got {target_N}).")
    check(aspect_ratio > 0, f"aspect_ratio (d_model / n_layer) must be positive (got {aspect_ratio}).")
    check(head_dim >= 1, f"head_dim must be a positive integer (got {head_dim}).")
    check(convention in ("N", "N_total", "N_with_head"), f"convention must be N, N_total or N_with_head, not {convention!r}.")

    def n_miss(cfg: ModelConfig) -> float:
        return abs(math.log(count_params(cfg)[convention] / target_N))

    def score(cfg: ModelConfig) -> float:
        return n_miss(cfg) + ASPECT_WEIGHT * abs(math.log(cfg.d_model / cfg.n_layer / aspect_ratio))

    best: ModelConfig | None = None  # the best candidate
    nearest: ModelConfig | None = None  # the nearest in N, for the error message
    for n_layer in _layer_range(target_N, aspect_ratio):
        # widths in the aspect band, around the width that solves N = 12·n_layer·d² (Kaplan eq 2.1)
        k_ideal = math.sqrt(target_N / (12 * n_layer)) / head_dim
        k_lo = max(1, math.ceil(aspect_ratio / ASPECT_BAND * n_layer / head_dim))
        k_hi = math.floor(aspect_ratio * ASPECT_BAND * n_layer / head_dim)
        k0 = math.floor(k_ideal)
        for k in {k0 - 1, k0, k0 + 1, k0 + 2, k_lo, k_hi}:
            if k_lo <= k <= k_hi:
                cfg = _shape(base, n_layer, k * head_dim, head_dim)
                if nearest is None or n_miss(cfg) < n_miss(nearest):
                    nearest = cfg
                if n_miss(cfg) <= math.log1p(rel_tol) and (best is None or score(cfg) < score(best)):
                    best = cfg
    if best is None:
        near = (
            f"; the nearest is n_layer={nearest.n_layer}, d_model={nearest.d_model} with "
            f"{convention}={count_params(nearest)[convention]:,}"
            if nearest
            else ""
        )
        raise ConfigError(
            f"no shape with {convention} within {rel_tol:.0%} of {target_N:,.0f} at aspect ratio "
            f"{aspect_ratio:g} (x/÷{ASPECT_BAND:g}) and head_dim {head_dim}{near}; "
            "change the target, lower head_dim or change aspect_ratio."
        )
    return best


def shape_ladder(
    smallest: float, largest: float, count: int, aspect_ratio: float = 64.0, head_dim: int = 32, **kwargs: Any
) -> list[ModelConfig]:
    """Distinct shapes for ``count`` log-spaced targets from ``smallest`` to ``largest`` (keywords as
    :func:`shape_for_params`); neighbours that round to the same shape appear once."""
    check(0 < smallest <= largest, f"the ladder needs 0 < smallest <= largest (got {smallest}, {largest}).")
    check(count >= 1, f"the ladder needs at least one size (got count={count}).")
    targets = [smallest * (largest / smallest) ** (i / max(1, count - 1)) for i in range(count)]
    shapes = [shape_for_params(t, aspect_ratio, head_dim, **kwargs) for t in targets]
    return list(dict.fromkeys(shapes))


def _layer_range(target_N: float, aspect_ratio: float) -> range:
    """Layer counts whose aspect ratio can lie in the band: n_layer = (N / (12·a²))^(1/3) for d = a·n_layer."""
    ideal = (target_N / (12 * aspect_ratio**2)) ** (1 / 3)
    lo = max(2, math.floor(ideal / ASPECT_BAND ** (2 / 3)))
    hi = max(lo, math.ceil(ideal * ASPECT_BAND ** (2 / 3)))
    return range(lo, hi + 1)


def _shape(base: ModelConfig, n_layer: int, d_model: int, head_dim: int) -> ModelConfig:
    d_ff = round(base.d_ff * d_model / base.d_model) if base.d_ff else 0  # keep a custom MLP ratio
    return dataclasses.replace(base, n_layer=n_layer, d_model=d_model, n_head=d_model // head_dim, d_ff=d_ff)
