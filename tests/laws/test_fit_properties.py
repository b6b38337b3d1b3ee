"""Property tests: runs drawn from a known law with noise give the law's parameters back, for every form."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import FORMS

EXAMPLES = int(os.environ.get("SCALINGLAB_PROPERTY_EXAMPLES", "4"))


def grid(**axes: np.ndarray) -> dict[str, np.ndarray]:
    """Every combination of the given input values, flattened."""
    mesh = np.meshgrid(*axes.values())
    return {name: m.ravel() for name, m in zip(axes, mesh)}


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(np.log(lo), np.log(hi)).map(np.exp)


def _repeat_grid() -> dict[str, np.ndarray]:
    """Three unique-data sizes U, 1 to 64 epochs of each, and sizes from below to far above U's optimal N."""
    u, epochs, n = (a.ravel() for a in np.meshgrid([1e8, 1e9, 1e10], [1, 2, 4, 8, 16, 32, 64], np.geomspace(1e6, 1e9, 6)))
    return {"N": n, "D": epochs * u, "U": u}


# form -> (true-parameter strategy, inputs, relative tolerance per parameter)
CASES: dict[str, tuple[st.SearchStrategy[dict], Callable[[], dict], dict[str, float]]] = {
    "kaplan_n": (
        st.fixed_dictionaries({"N_c": log_uniform(1e12, 1e15), "alpha_N": st.floats(0.05, 0.2)}),
        lambda: {"N": np.logspace(5, 10, 20)},
        {"N_c": 0.5, "alpha_N": 0.05},
    ),
    "kaplan_d": (
        st.fixed_dictionaries({"D_c": log_uniform(1e12, 1e15), "alpha_D": st.floats(0.05, 0.2)}),
        lambda: {"D": np.logspace(6, 11, 20)},
        {"D_c": 0.5, "alpha_D": 0.05},
    ),
    "kaplan_c": (
        st.fixed_dictionaries({"C_c": log_uniform(1e25, 1e28), "alpha_C": st.floats(0.04, 0.1)}),
        lambda: {"C": np.logspace(12, 20, 20)},
        {"C_c": 0.5, "alpha_C": 0.05},
    ),
    "kaplan_cmin": (
        st.fixed_dictionaries({"C_c_min": log_uniform(1e25, 1e28), "alpha_C_min": st.floats(0.04, 0.1)}),
        lambda: {"C_min": np.logspace(12, 20, 20)},
        {"C_c_min": 0.5, "alpha_C_min": 0.05},
    ),
    "kaplan_nd": (  # around Kaplan Table 2
        st.fixed_dictionaries(
            {"N_c": log_uniform(3e13, 1e14), "alpha_N": st.floats(0.06, 0.09),
             "D_c": log_uniform(1e13, 3e13), "alpha_D": st.floats(0.09, 0.12)}  # fmt: skip
        ),
        lambda: grid(N=np.logspace(5, 10, 8), D=np.logspace(6, 11, 8)),
        {"N_c": 0.5, "alpha_N": 0.1, "D_c": 0.5, "alpha_D": 0.1},
    ),
    "kaplan_ns": (  # around Kaplan Table 3
        st.fixed_dictionaries(
            {"N_c": log_uniform(3e13, 1e14), "alpha_N": st.floats(0.06, 0.09),
             "S_c": log_uniform(1e3, 5e3), "alpha_S": st.floats(0.6, 0.9)}  # fmt: skip
        ),
        lambda: grid(N=np.logspace(5, 9, 6), S=np.logspace(2, 5, 10)),
        {"N_c": 0.5, "alpha_N": 0.1, "S_c": 0.2, "alpha_S": 0.1},
    ),
    "bcrit": (  # around Kaplan eq 1.4
        st.fixed_dictionaries({"B_star": log_uniform(1e8, 1e9), "alpha_B": st.floats(0.15, 0.3)}),
        lambda: {"loss": np.linspace(2.0, 6.0, 20)},
        {"B_star": 0.1, "alpha_B": 0.05},
    ),
    "position": (  # around Kaplan Fig 20
        st.fixed_dictionaries({"a": st.floats(2.0, 4.0), "b": st.floats(3.0, 6.0), "c": st.floats(0.4, 0.7)}),
        lambda: {"T": np.unique(np.logspace(0, np.log10(1024), 40).round())},
        {"a": 0.05, "b": 0.05, "c": 0.05},
    ),
    "chinchilla": (  # around Epoch's refit
        st.fixed_dictionaries(
            {"E": st.floats(1.5, 2.0), "A": log_uniform(200, 800), "B": log_uniform(500, 3000),
             "alpha": st.floats(0.3, 0.4), "beta": st.floats(0.3, 0.4)}  # fmt: skip
        ),
        lambda: grid(N=np.logspace(7, 11, 9), D=np.logspace(9, 13, 9)),
        {"E": 0.03, "A": 0.3, "B": 0.3, "alpha": 0.05, "beta": 0.05},
    ),
    "chinchilla_tied": (  # one exponent for both terms
        st.fixed_dictionaries(
            {"E": st.floats(1.5, 2.0), "A": log_uniform(200, 800), "B": log_uniform(500, 3000), "eta": st.floats(0.3, 0.4)}
        ),
        lambda: grid(N=np.logspace(7, 11, 9), D=np.logspace(9, 13, 9)),
        {"E": 0.03, "A": 0.3, "B": 0.3, "eta": 0.05},
    ),
    "data_constrained": (  # around Chinchilla's approach 3 with Muennighoff et al. 2023's R* (C4)
        st.fixed_dictionaries(
            {"E": st.floats(1.6, 1.9), "A": log_uniform(300, 500), "B": log_uniform(300, 500),
             "alpha": st.floats(0.3, 0.36), "beta": st.floats(0.26, 0.32),
             "R_D_star": st.floats(10.0, 20.0), "R_N_star": st.floats(4.0, 7.0)}  # fmt: skip
        ),
        lambda: _repeat_grid(),
        {"E": 0.05, "A": 0.5, "B": 0.5, "alpha": 0.1, "beta": 0.1, "R_D_star": 0.3, "R_N_star": 0.3},
    ),
    "chinchilla_c": (
        st.fixed_dictionaries({"E": st.floats(1.5, 2.5), "gamma": st.floats(0.1, 0.3), "at_1e19": st.floats(0.5, 2.0)}).map(
            lambda p: {"E": p["E"], "k": p["at_1e19"] * 1e19 ** p["gamma"], "gamma": p["gamma"]}
        ),
        lambda: {"C": np.logspace(15, 23, 25)},
        {"E": 0.03, "k": 0.5, "gamma": 0.05},
    ),
}


def check_recovery(name: str, truth: dict[str, float], noise: float, seed: int) -> None:
    form = FORMS[name]
    _, make_inputs, rtol = CASES[name]
    X = make_inputs()
    y = form.predict(truth, X) * np.exp(np.random.default_rng(seed).normal(0, noise, len(next(iter(X.values())))))
    result = fit_law(form, pd.DataFrame({**X, form.target: y}))
    assert result.converged, result.status
    for p, value in truth.items():
        got = result.params[p]
        assert abs(got / value - 1) <= rtol[p], f"{name}: {p} = {got:.6g}, true {value:.6g} (noise {noise:.2g})"


def make_test(name: str):
    params, _, _ = CASES[name]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
    @given(truth=params, noise=st.floats(0.0, 2e-3), seed=st.integers(0, 2**16))
    def test(truth: dict[str, float], noise: float, seed: int) -> None:
        check_recovery(name, truth, noise, seed)

    test.__name__ = f"test_recovers_{name}"
    return test


for _name in CASES:
    globals()[f"test_recovers_{_name}"] = make_test(_name)


def test_every_registered_form_has_a_property_test() -> None:
    assert set(CASES) == set(FORMS)
