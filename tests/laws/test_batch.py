"""Critical batch size: recovery from synthetic scans that follow McCandlish et al.'s model exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError, FitError
from scalinglab.laws.batch import (
    BcritLaw,
    adjusted_compute,
    adjusted_steps,
    critical_batch_scan,
    fit_bcrit_law,
    fit_steps_examples,
    noise_scale_by_loss,
    steps_to_loss,
)

TRUE = BcritLaw(B_star=3.0e7, alpha_B=0.25)


def s_min_of_loss(loss: np.ndarray) -> np.ndarray:
    """Steps at B ≫ B_crit to reach a loss, inverting L = 2.0 + 8.0 * S^-0.6."""
    return ((loss - 2.0) / 8.0) ** (-1 / 0.6)


def synthetic_scan(batches: list[float], noise: float, seed: int = 0) -> pd.DataFrame:
    """Eval curves of runs at several batch sizes with S(L) = S_min(L) (1 + B_crit(L)/B) (eq 5.1 / M18)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(5.5, 2.6, 4000)  # losses from early in training to late
    rows = []
    for i, b in enumerate(batches):
        steps_needed = s_min_of_loss(grid) * (1 + TRUE(grid) / b)  # increasing as the loss falls
        steps = np.unique(np.geomspace(steps_needed[0], steps_needed[-1], 120).round())
        loss = np.interp(steps, steps_needed, grid) * np.exp(noise * rng.standard_normal(len(steps)))
        rows += [{"run_id": f"b{i}", "batch_tokens": b, "step": s, "loss": v} for s, v in zip(steps, loss)]
    return pd.DataFrame(rows)


def test_fit_steps_examples_recovers_eq_5_1() -> None:
    batch = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    s_min, e_min = 2000.0, 4e8
    s_min_hat, e_min_hat = fit_steps_examples(batch, s_min + e_min / batch)
    assert s_min_hat == pytest.approx(s_min, rel=1e-6)
    assert e_min_hat == pytest.approx(e_min, rel=1e-6)
    # every point satisfies (S/S_min - 1)(E/E_min - 1) = 1
    steps = s_min + e_min / batch
    assert np.allclose((steps / s_min_hat - 1) * (batch * steps / e_min_hat - 1), 1.0)


def test_steps_to_loss_interpolates_first_crossing() -> None:
    steps = np.array([0, 10, 20, 30])
    loss = np.array([5.0, 4.0, 4.2, 3.0])  # a noisy bump must not count as a second crossing
    got = steps_to_loss(steps, loss, np.array([4.5, 4.0, 3.5, 2.0]))
    assert got[:3] == pytest.approx([5.0, 10.0, 25.0])
    assert np.isnan(got[3])


def test_scan_recovers_bcrit_and_its_law() -> None:
    scan = synthetic_scan([2**k * 1e4 for k in range(0, 10)], noise=0.002)
    points = critical_batch_scan(scan)
    assert len(points) >= 6
    loss = np.array([p.loss for p in points])
    b_crit = np.array([p.b_crit for p in points])
    assert np.allclose(b_crit, TRUE(loss), rtol=0.08)
    assert np.allclose([p.s_min for p in points], s_min_of_loss(loss), rtol=0.05)
    fit = fit_bcrit_law(points)
    assert fit.converged and fit.n_points == len(points)
    law = BcritLaw.from_fit(fit)
    assert law.alpha_B == pytest.approx(TRUE.alpha_B, rel=0.1)
    assert law(3.0) == pytest.approx(TRUE(3.0), rel=0.15)


def test_scan_with_too_few_batch_sizes_is_refused() -> None:
    with pytest.raises(FitError, match="3 or more batch sizes"):
        critical_batch_scan(synthetic_scan([1e4, 1e5], noise=0.0))
    with pytest.raises(DataError, match="batch_tokens"):
        critical_batch_scan(synthetic_scan([1e4, 1e5, 1e6], noise=0.0).drop(columns="batch_tokens"))


def test_adjustments_match_kaplan_eqs_5_4_and_5_5_at_bcrit() -> None:
    # training at B = B_crit takes 2 S_min steps and 2 C_min compute (Kaplan eq 5.2)
    b = TRUE(3.0)
    assert adjusted_steps(2000.0, b, b) == pytest.approx(1000.0)
    assert adjusted_compute(1e18, b, b) == pytest.approx(5e17)
    # far from B_crit the adjustment vanishes on one side
    assert adjusted_steps(2000.0, 1e3 * b, b) == pytest.approx(2000.0, rel=1e-2)
    assert adjusted_compute(1e18, 1e-3 * b, b) == pytest.approx(1e18, rel=1e-2)


def test_noise_scale_summary_tracks_the_trend() -> None:
    rng = np.random.default_rng(1)
    loss = np.linspace(6.0, 3.0, 500)
    noise = TRUE(loss) * np.exp(0.3 * rng.standard_normal(len(loss)))
    table = noise_scale_by_loss(pd.DataFrame({"train_loss": loss, "noise_b_simple": noise}), bins=6)
    assert len(table) == 6 and table["n"].sum() == len(loss)
    assert np.allclose(table["b_simple"], TRUE(table["loss"]), rtol=0.2)
    law = BcritLaw.from_fit(fit_bcrit_law(table.rename(columns={"b_simple": "B_crit"})))
    assert law.alpha_B == pytest.approx(TRUE.alpha_B, rel=0.1)
    with pytest.raises(DataError, match="noise-scale callback"):
        noise_scale_by_loss(pd.DataFrame({"train_loss": loss}))
