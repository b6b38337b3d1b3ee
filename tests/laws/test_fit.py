"""The fitter on Chinchilla's published runs (Epoch's digitisation) and on synthetic runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from scalinglab.errors import ConfigError, FitError
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import Form, get_form
from scalinglab.laws.objective import Problem

# Optimum of the summed-Huber objective on Epoch's 240 points (shared/data/runs/SOURCE.md).
EPOCH_OPTIMUM = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.34731, "beta": 0.36717}
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann eq 10, rounded


def assert_epoch_optimum(result: FitResult) -> None:
    assert result.converged, result.status
    assert result.n_points == 240
    assert result.objective <= 1.0183e-3
    for name, value in EPOCH_OPTIMUM.items():
        assert result.params[name] == pytest.approx(value, rel=5e-3), name


def test_epoch_optimum_from_default_starts(epoch240: pd.DataFrame) -> None:
    assert_epoch_optimum(fit_law("chinchilla", epoch240))


def test_epoch_optimum_from_hoffmann_grid(epoch240: pd.DataFrame) -> None:
    result = fit_law("chinchilla", epoch240, starts="hoffmann")
    assert result.n_starts == 4500
    assert_epoch_optimum(result)


def test_hoffmann_constants_are_not_the_optimum(epoch240: pd.DataFrame) -> None:
    # Started exactly at Hoffmann's published constants, the fitter must still reach the optimum ...
    assert_epoch_optimum(fit_law("chinchilla", epoch240, starts=HOFFMANN))
    # ... where scipy's L-BFGS-B with default tolerances stops early, leaving A and B where they were.
    form = get_form("chinchilla")
    problem = Problem(form, form.log_inputs(epoch240), np.log(epoch240["loss"].to_numpy()), np.ones(240))

    def fun(theta):
        f, g, _ = problem.evaluate(theta[None, :], jac=True)
        return f[0], g[0]

    naive = form.param_dict(minimize(fun, form.to_theta(HOFFMANN), jac=True, method="L-BFGS-B").x)
    assert naive["A"] == pytest.approx(HOFFMANN["A"], rel=0.01)
    assert naive["B"] == pytest.approx(HOFFMANN["B"], rel=0.01)


def test_bootstrap_intervals_match_epoch(epoch240: pd.DataFrame, tmp_path: Path) -> None:
    result = fit_law("chinchilla", epoch240, bootstrap=300, seed=1)
    assert len(result.bootstrap) + result.bootstrap_dropped == 300
    assert result.bootstrap_dropped <= 3
    # Epoch's 95% bootstrap intervals: alpha (0.317, 0.373), beta (0.331, 0.415), E (1.769, 1.871).
    for name, (lo, hi) in {"alpha": (0.317, 0.373), "beta": (0.331, 0.415), "E": (1.769, 1.871)}.items():
        assert result.intervals[name][0] == pytest.approx(lo, abs=0.012), name
        assert result.intervals[name][1] == pytest.approx(hi, abs=0.012), name
    a_lo, a_hi = result.intervals["a"]  # compute-optimal exponent beta/(alpha+beta): Epoch's 0.513
    assert a_lo < result.derived["a"] < a_hi and a_lo < 0.513 < a_hi

    path = tmp_path / "fit.json"
    result.to_json(path)
    loaded = FitResult.load(path)
    assert loaded.params == result.params  # unrounded through JSON
    assert loaded.intervals == result.intervals
    X = epoch240.iloc[:5]
    np.testing.assert_array_equal(loaded.predict(X), result.predict(X))
    lo, hi = loaded.prediction_interval(X)
    np.testing.assert_allclose((lo, hi), result.prediction_interval(X))
    assert np.all(lo < result.predict(X)) and np.all(result.predict(X) < hi)


def test_outliers_flag_epochs_worst_runs(epoch_runs: pd.DataFrame) -> None:
    runs = epoch_runs
    result = fit_law("chinchilla", runs)
    worst = runs["loss"].nlargest(5).index.astype(str)
    assert set(worst) <= {f["row"] for f in result.outliers}  # the 5 runs Epoch drop stand out
    tiny = str((runs["D"] / runs["N"]).idxmin())  # 0.04 tokens per parameter
    assert any(f["row"] == tiny and f["reason"] == "tokens_per_param" for f in result.outliers)
    (message,) = [w["message"] for w in result.warnings if w["kind"] == "outlier"]
    named = [int(r) for r in message.split("(row ")[1].split(")")[0].rstrip(" .").split(", ")]
    assert named == sorted(named)  # in row order, not as strings (0, 1, 10, 11, 2, ...)


def synthetic_chinchilla(n_side: int = 7, noise: float = 0.003, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 10, n_side), np.logspace(9, 12, n_side)))
    loss = 1.8 + 480 / N**0.35 + 2100 / D**0.37
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss * np.exp(rng.normal(0, noise, N.size))})


def test_zero_weight_equals_dropping_the_run() -> None:
    runs = synthetic_chinchilla()
    runs.loc[3, "loss"] *= 1.3  # a bad run
    weights = np.ones(len(runs))
    weights[3] = 0.0
    weighted = fit_law("chinchilla", runs, weights=weights)
    dropped = fit_law("chinchilla", runs.drop(index=3))
    for name in weighted.params:
        assert weighted.params[name] == pytest.approx(dropped.params[name], rel=1e-5)


def test_overprediction_penalty_lowers_the_bias() -> None:
    runs = synthetic_chinchilla(noise=0.02, seed=3)
    plain = fit_law("chinchilla", runs)
    penalised = fit_law("chinchilla", runs, overpredict_penalty=5.0)
    over = lambda r: np.mean(r.residuals() > 0)  # noqa: E731
    assert over(penalised) < over(plain)


def test_few_runs_with_the_floor_at_its_bound_converge() -> None:
    # 8 small runs of a law without a floor, like a CPU demo's cheapest runs: E sits at its lower bound
    # and the problem is ill-conditioned, where L-BFGS-B alone stalls in about half of the draws.
    N = np.array([1.4e4, 1.4e4, 2.5e4, 2.5e4, 2.5e4, 5.7e4, 5.7e4, 1e5])
    D = np.array([5e5, 1e6, 7e5, 1e6, 2e6, 1e6, 1.3e6, 1e6])
    for seed in range(6):
        noise = np.exp(np.random.default_rng(seed).normal(0, 0.01, N.size))
        fit = fit_law("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": (18 / N**0.39 + 38 / D**0.158) * noise}))
        assert fit.converged, (seed, fit.status)


def test_user_function_fit_recovers_parameters() -> None:
    rng = np.random.default_rng(0)
    C = np.logspace(17, 22, 30)
    runs = pd.DataFrame({"C": C, "loss": (2.0 + 3000 * C**-0.2) * np.exp(rng.normal(0, 1e-3, C.size))})

    def offset_power(C, E, k, gamma):
        return E + k * C**-gamma

    form = Form.from_function(offset_power, log_params=["E", "k"], start={"E": [1.0, 3.0], "k": [100.0, 1e4], "gamma": [0.1, 0.5]})
    result = fit_law(form, runs)
    assert result.converged, result.status
    assert result.params["gamma"] == pytest.approx(0.2, rel=0.03)
    assert result.params["E"] == pytest.approx(2.0, rel=0.02)
    # A bound the optimum lies beyond holds the parameter there, and the fit still converges.
    bounded = Form.from_function(offset_power, log_params=["E", "k"], bounds={"gamma": (0.25, 1.0)},
                                 start={"E": [1.0, 3.0], "k": [100.0, 1e4], "gamma": [0.3, 0.5]})  # fmt: skip
    held = fit_law(bounded, runs)
    assert held.converged and held.params["gamma"] == pytest.approx(0.25)
    assert held.objective > result.objective


def test_bad_options_raise_clear_errors() -> None:
    runs = synthetic_chinchilla()
    with pytest.raises(ConfigError, match="starts"):
        fit_law("chinchilla", runs, starts="everything")
    with pytest.raises(ConfigError, match="delta"):
        fit_law("chinchilla", runs, delta=0)
    with pytest.raises(FitError, match="5 parameters"):
        fit_law("chinchilla", runs.iloc[:4])
