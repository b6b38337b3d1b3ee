"""The two-batch gradient-noise-scale estimator recovers B_simple = tr(Σ)/|G|² of a known distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalinglab.train.noise_scale import NoiseScale, grad_sq_norm


def test_two_batch_estimator_recovers_a_known_noise_scale() -> None:
    rng = np.random.default_rng(0)
    dim, b_small, b_big = 50, 4, 64
    g = rng.normal(size=dim) * 0.5  # true gradient
    sigma = rng.uniform(0.5, 2.0, size=dim)  # per-example std of each coordinate
    truth = (sigma**2).sum() / (g @ g)
    est = NoiseScale(b_small, b_big)
    for _ in range(3000):
        examples = g + sigma * rng.normal(size=(b_big, dim))  # per-example gradients
        small = examples[:b_small].mean(0)
        big = examples.mean(0)
        out = est.update(float(small @ small), float(big @ big))
    assert out["noise_grad_sq"] == pytest.approx(g @ g, rel=0.15)
    assert out["noise_trace_sigma"] == pytest.approx((sigma**2).sum(), rel=0.15)
    assert out["noise_b_simple"] == pytest.approx(truth, rel=0.2)


def test_state_round_trip_and_grad_norm() -> None:
    a = NoiseScale(8, 32)
    a.update(2.0, 1.0)
    b = NoiseScale(8, 32)
    b.load_state_dict(a.state_dict())
    assert b.update(3.0, 1.5) == a.update(3.0, 1.5)
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([1.0, 2.0, 2.0])
    assert grad_sq_norm([p]) == 9.0
