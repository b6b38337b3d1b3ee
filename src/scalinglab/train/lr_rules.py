"""Peak learning rate by model size: the named rules of ``optim.lr_rule``.

- ``fixed``: ``optim.lr`` as given.
- ``kaplan``: Kaplan eq D.1, LR(N) = 0.003239 - 0.0001395 ln N (App D.6). The log is natural: the rule
  reaches zero at N = e^23.2 = 1.2e10, where the paper says it breaks down (spec §1.8).
- ``tuned``: a power law LR(N) = a N^-b fitted (least squares in log-log) to the per-size learning
  rates GPT-3 tuned for its eight models (Brown et al. 2020, Table 2.1), with N = 12 n_layer d_model²
  (Kaplan eq 2.1). It spans 85M to 174B non-embedding parameters; smaller models extrapolate it
  (N = 1e5 -> 3.4e-3, 1e6 -> 1.7e-3), giving the larger LR small models tolerate. For a ladder's
  own optimum, sweep LR per size and use ``fixed`` (spec §6 item 4).
"""

from __future__ import annotations

import math

from scalinglab.errors import ConfigError
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params
from scalinglab.train.config import OptimConfig

KAPLAN_D1 = (0.003239, 0.0001395)
"""Intercept and slope of Kaplan eq D.1 in ln N."""

GPT3_TABLE_2_1 = (
    # (n_layer, d_model, learning rate) of GPT-3 Small ... 175B (Brown et al. 2020, Table 2.1)
    (12, 768, 6.0e-4),
    (24, 1024, 3.0e-4),
    (24, 1536, 2.5e-4),
    (24, 2048, 2.0e-4),
    (32, 2560, 1.6e-4),
    (32, 4096, 1.2e-4),
    (40, 5140, 1.0e-4),
    (96, 12288, 0.6e-4),
)


def _fit_power_law(table: tuple[tuple[int, int, float], ...]) -> tuple[float, float]:
    """(ln a, b) of LR = a N^-b by least squares on (ln N, ln LR), N = 12 n_layer d_model²."""
    xs = [math.log(12 * n_layer * d_model**2) for n_layer, d_model, _ in table]
    ys = [math.log(lr) for _, _, lr in table]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, -slope


TUNED_LOG_A, TUNED_B = _fit_power_law(GPT3_TABLE_2_1)


def kaplan_lr(n: float) -> float:
    """Kaplan eq D.1 for N non-embedding parameters."""
    intercept, slope = KAPLAN_D1
    return intercept - slope * math.log(n)


def tuned_lr(n: float) -> float:
    """The GPT-3 Table 2.1 power law for N non-embedding parameters."""
    return math.exp(TUNED_LOG_A - TUNED_B * math.log(n))


def peak_lr(optim: OptimConfig, model: ModelConfig) -> float:
    """The peak learning rate a run uses under ``optim.lr_rule``."""
    if optim.lr_rule == "fixed":
        return optim.lr
    n = count_params(model)["N"]
    lr = kaplan_lr(n) if optim.lr_rule == "kaplan" else tuned_lr(n)
    if lr <= 0:  # eq D.1 crosses zero at N = 1.2e10 (Kaplan App D.6: the rule breaks down there)
        raise ConfigError(f"optim.lr_rule='kaplan' gives LR {lr:.3g} <= 0 at N={n:.3g}; use 'tuned' or 'fixed'.")
    return lr
