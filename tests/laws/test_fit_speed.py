"""The fitter's fast paths give the fit they replace: blocked sums, counts per run, the Newton steps, the NNLS."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import nnls

from scalinglab.constants import HOFFMANN_APPROACH3
from scalinglab.laws import objective
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import _lse, get_form
from scalinglab.laws.objective import Problem, minimize_batch
from scalinglab.laws.uncertainty import nonnegative_least_squares


def checkpoints(runs: int, per_run: int, seed: int = 0) -> pd.DataFrame:
    """``runs`` runs on Hoffmann's law, each logged at ``per_run`` points of its training, 1% log noise."""
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), runs))
    d_final = n * np.exp(rng.uniform(np.log(2), np.log(200), runs))
    N, D = np.repeat(n, per_run), (d_final[:, None] * np.geomspace(0.05, 1.0, per_run)[None, :]).ravel()
    h = HOFFMANN_APPROACH3
    loss = (h["E"] + h["A"] / N ** h["alpha"] + h["B"] / D ** h["beta"]) * np.exp(rng.normal(0, 0.01, len(N)))
    return pd.DataFrame({"run": np.repeat(np.arange(runs), per_run), "N": N, "D": D, "loss": loss})


@pytest.fixture(scope="module")
def problem() -> Problem:
    table = checkpoints(60, 5)
    form = get_form("chinchilla")
    return Problem(form, form.log_inputs(table), np.log(table["loss"].to_numpy()), np.ones(len(table)), penalty=0.5)


def test_blocked_sums_equal_one_block(problem: Problem, monkeypatch: pytest.MonkeyPatch) -> None:
    theta = problem.form.start_grid("default")[::6]  # 41 starts, some far outside the data's range
    whole = problem.evaluate(theta, jac=True, exact=True)
    monkeypatch.setattr(objective, "BLOCK", 64)  # blocks of starts and of rows both
    blocked = problem.evaluate(theta, jac=True, exact=True)
    for a, b in zip(whole, blocked):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=0)


def test_counts_per_run_weigh_like_rows(problem: Problem) -> None:
    groups = np.repeat(np.arange(60), 5)
    counts = np.random.default_rng(1).multinomial(60, np.full(60, 1 / 60), size=7).astype(float)
    theta = np.repeat(problem.form.start_grid("default")[100:101], 7, axis=0)
    by_run = dataclasses.replace(problem, groups=groups, counts=counts).evaluate(theta, jac=True)
    by_row = dataclasses.replace(problem, weights=counts[:, groups]).evaluate(theta, jac=True)
    for a, b in zip(by_row, by_run):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_newton_steps_reach_the_irls_optimum_in_fewer_evaluations(problem: Problem) -> None:
    calls = {"n": 0}
    form = problem.form

    def counted(theta, logx, jac):
        calls["n"] += 1
        return form.evaluate(theta, logx, jac)

    counting = dataclasses.replace(problem, form=dataclasses.replace(form, evaluate=counted))
    start = form.to_theta({"E": 1.5, "A": 300.0, "B": 600.0, "alpha": 0.3, "beta": 0.3})[None, :]
    found = {}
    for newton in (False, True):
        calls["n"] = 0
        theta, f = minimize_batch(counting, start, max_iter=2000, ftol=1e-15, newton=newton)
        found[newton] = (theta[0], f[0], calls["n"])
    assert found[True][1] <= found[False][1] * (1 + 1e-10)
    np.testing.assert_allclose(found[True][0], found[False][0], rtol=1e-4)
    assert found[True][2] * 2 < found[False][2], found  # 23 against 53 when written


def test_screening_a_sample_finds_the_full_screenings_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    table = checkpoints(120, 5)  # 600 rows: more than the screening sample
    assert len(table) > objective.SCREEN_ROWS
    sampled = fit_law("chinchilla", table, runs="run", calibrate=False)
    monkeypatch.setattr(objective, "SCREEN_ROWS", len(table))
    full = fit_law("chinchilla", table, runs="run", calibrate=False)
    assert sampled.converged and full.converged
    assert sampled.objective == pytest.approx(full.objective, rel=1e-10)
    for name, value in full.params.items():
        assert sampled.params[name] == pytest.approx(value, rel=1e-6), name


def test_nonnegative_least_squares_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(5, 200))
        A = np.column_stack([np.ones(m), rng.exponential(1, m) ** 2, rng.exponential(1, m), rng.exponential(1, m) ** 3])
        b = A @ rng.normal(0, 1, 4) + rng.normal(0, 0.5, m)
        ours, theirs = nonnegative_least_squares(A, b), nnls(A, b)[0]
        assert np.all(ours >= 0)
        assert np.sum((A @ ours - b) ** 2) <= np.sum((A @ theirs - b) ** 2) * (1 + 1e-12)


def test_log_sum_exp_shifted_per_member_matches_row_by_row() -> None:
    # The shift by each member's largest term (one exp per member for a term constant across rows) gives the
    # row-by-row log-sum-exp and softmax; terms spread over thousands of e-folds take the row-by-row path.
    rng = np.random.default_rng(3)
    const = rng.normal(0, 3, (6, 1))  # like chinchilla's log E
    for spread in (5.0, 3000.0):
        terms = [const, rng.normal(0, spread, (6, 40)), rng.normal(0, spread, (6, 40))]
        value, weights = _lse(*terms)
        full = np.broadcast_arrays(*terms)
        expected = np.logaddexp(np.logaddexp(full[0], full[1]), full[2])
        assert np.all(np.isfinite(value))
        np.testing.assert_allclose(value, expected, rtol=1e-13, atol=1e-13)
        for w, u in zip(weights, full):
            np.testing.assert_allclose(w, np.exp(u - expected), rtol=1e-12, atol=1e-300)


def test_derivatives_only_below_a_bound_are_those_of_the_full_evaluation(problem: Problem) -> None:
    theta = problem.form.start_grid("default")[::6]  # 41 starts, in two blocks of members
    f, g, H, Hx = problem.evaluate(theta, jac=True, exact=True)
    finite = np.isfinite(f)
    below = np.where(np.arange(len(f)) % 2 == 0, f * 1.5, f)  # every other member wanted (f < 1.5 f), the rest not
    f2, g2, H2, Hx2 = problem.evaluate(theta, jac=True, exact=True, below=below)
    wanted = f < below
    assert 5 < wanted.sum() < finite.sum() - 5
    np.testing.assert_array_equal(f2, f)
    for full, part in ((g, g2), (H, H2), (Hx, Hx2)):
        np.testing.assert_allclose(part[wanted], full[wanted], rtol=1e-13, atol=0)
        assert not part[~wanted].any()
