"""`study suggest`'s choice of runs: the answer and its gradient, equal-cost baselines, and the simulation that validates it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ConfigError
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form
from scalinglab.laws.frontier import chinchilla_allocation
from scalinglab.study.suggest import answer, equal_cost_design, simulate_trial, suggest

FORM = get_form("chinchilla")
TRUTH = {"E": 2.0, "A": 60.0, "B": 100.0, "alpha": 0.34, "beta": 0.28}  # CPU-scale, not a paper's constants


def existing() -> pd.DataFrame:
    n = np.repeat([1e4, 3e4, 1e5], 3)
    return pd.DataFrame({"N": n, "D": n * np.tile([5.0, 20.0, 80.0], 3)})


def test_the_answer_is_the_closed_form_optimum_and_its_gradient_matches_finite_differences() -> None:
    theta = FORM.to_theta(np.array([[TRUTH[p] for p in FORM.params], [1.5, 200.0, 400.0, 0.4, 0.35]]))
    best = chinchilla_allocation(**TRUTH, compute=1e15)  # Hoffmann eq 4, the frontier's own closed form
    for target, exact in (("loss", best.loss), ("n_opt", best.n_opt)):
        value, grad = answer(FORM, theta, 1e15, target)
        assert np.exp(value[0]) == pytest.approx(float(exact), rel=1e-5)
        h = 1e-5
        numeric = np.array([(answer(FORM, theta + h * e, 1e15, target)[0] - answer(FORM, theta - h * e, 1e15, target)[0]) / (2 * h)
                            for e in np.eye(theta.shape[1])]).T  # fmt: skip
        np.testing.assert_allclose(grad, numeric, rtol=2e-3, atol=1e-4)  # N_opt by central differences in log N


def test_equal_cost_baselines_cost_what_they_are_compared_with() -> None:
    for kind in ("ladder", "grid"):
        runs = equal_cost_design(kind, 1e4, 4, 7e12)
        assert len(runs) == 4 and sum(c.flops for c in runs) == pytest.approx(7e12, rel=1e-6)
        assert min(c.N for c in runs) == pytest.approx(1e4)
    assert {round(c.D / c.N) for c in equal_cost_design("ladder", 1e4, 4, 7e12)} == {20}


def test_suggested_runs_shrink_the_interval_more_than_a_ladder_or_grid_of_equal_cost() -> None:
    # One trial of benchmarks/suggest_sim.py, which reports the mean over several laws and seeds (and the smallest).
    trial = simulate_trial(FORM, TRUTH, existing(), 0.01, 1e15, k=4, bootstrap=40, reps=20, seed=0)
    s = trial.suggestion
    assert 1 <= len(s.runs) <= 4 and s.cost <= s.spend * (1 + 1e-6)
    assert 0 < s.shrink < 1 and s.sd_after == sorted(s.sd_after, reverse=True)
    assert trial.ratios["ladder"] > 1.0 and trial.ratios["grid"] > 1.2, trial.ratios


def test_bad_requests_say_what_to_change() -> None:
    rng = np.random.default_rng(1)
    table = existing().assign(loss=lambda df: FORM.predict(TRUTH, df) * np.exp(rng.normal(0, 0.01, len(df))))
    fit = fit_law(FORM, table, bootstrap=0)
    with pytest.raises(Exception, match="--bootstrap 200"):
        suggest(fit, 1e15)
    fit = fit_law("kaplan_n", table.groupby("N", as_index=False)["loss"].min(), bootstrap=0)
    with pytest.raises(ConfigError, match="not a law of N and D"):
        suggest(fit, 1e15)
