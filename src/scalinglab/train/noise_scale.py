"""The gradient noise scale B_simple = tr(Σ) / |G|², measured online during training.

McCandlish et al. 2018 App A's two-batch estimator (spec §5.5): with E|G_B|² = |G|² + tr(Σ)/B, the
squared norms of one micro-batch gradient (B_small) and of the full-batch gradient (B_big) give
unbiased estimates of |G|² and tr(Σ). Their ratio is biased and noisy, so each is smoothed by its own
bias-corrected EMA (β = 0.99 per step, as GPT-NeoX does) before dividing. Batch sizes are in tokens, so
B_simple is in tokens, comparable with Kaplan's B_crit (eq 5.3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def grad_sq_norm(params: Iterable[torch.nn.Parameter]) -> float:
    """Squared L2 norm of all gradients, accumulated in fp32."""
    grads = [p.grad.detach().float() for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads).item() ** 2


class NoiseScale:
    """Bias-corrected EMAs of the |G|² and tr(Σ) estimates, and B_simple from them."""

    BETA = 0.99
    """The EMA's factor per step (GPT-NeoX's)."""

    def __init__(self, b_small: int, b_big: int, beta: float = BETA) -> None:
        assert 0 < b_small < b_big, "the two-batch estimator needs B_small < B_big"
        self.b_small, self.b_big, self.beta = b_small, b_big, beta
        self.grad_sq_ema = 0.0
        self.trace_ema = 0.0
        self.updates = 0

    def update(self, small_sq: float, big_sq: float) -> dict[str, float]:
        """Fold in one step's squared gradient norms; return the smoothed ``noise_*`` metrics."""
        bs, bb = self.b_small, self.b_big
        grad_sq = (bb * big_sq - bs * small_sq) / (bb - bs)  # unbiased |G|² (McCandlish App A)
        trace = (small_sq - big_sq) / (1 / bs - 1 / bb)  # unbiased tr(Σ), per token
        self.grad_sq_ema = self.beta * self.grad_sq_ema + (1 - self.beta) * grad_sq
        self.trace_ema = self.beta * self.trace_ema + (1 - self.beta) * trace
        self.updates += 1
        return self.metrics()

    def metrics(self) -> dict[str, float]:
        """The smoothed ``noise_*`` metrics as of the last update (NaN before the first)."""
        if not self.updates:
            return {"noise_grad_sq": math.nan, "noise_trace_sigma": math.nan, "noise_b_simple": math.nan}
        correction = 1 - self.beta**self.updates
        g2, tr = self.grad_sq_ema / correction, self.trace_ema / correction
        return {
            "noise_grad_sq": g2,
            "noise_trace_sigma": tr,
            "noise_b_simple": tr / g2 if g2 > 0 else math.nan,  # undefined while |G|² is lost in noise
        }

    def state_dict(self) -> dict[str, float]:
        return {"grad_sq_ema": self.grad_sq_ema, "trace_ema": self.trace_ema, "updates": self.updates}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.grad_sq_ema, self.trace_ema = state["grad_sq_ema"], state["trace_ema"]
        self.updates = int(state["updates"])
