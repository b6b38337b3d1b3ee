"""Law forms: analytic gradients against finite differences, published constants, user functions."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.errors import ConfigError, DataError
from scalinglab.laws.forms import FORMS, Form, get_form


def inputs_for(form: Form, n: int = 25, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible positive inputs for a form (sizes, tokens, steps, positions, losses)."""
    rng = np.random.default_rng(seed)
    ranges = {"N": (1e6, 1e10), "D": (1e8, 1e12), "C": (1e17, 1e23), "C_min": (1e17, 1e23), "S": (1e2, 1e5),
              "T": (1, 1024), "loss": (2.0, 6.0), "U": (1e7, 1e11)}  # fmt: skip
    return {k: np.exp(rng.uniform(*np.log(ranges[k]), size=n)) for k in form.inputs}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_analytic_jacobian_matches_finite_differences(name: str) -> None:
    form = FORMS[name]
    logx = form.log_inputs(inputs_for(form))
    rng = np.random.default_rng(1)
    grid = form.start_grid("full")
    theta = grid[rng.choice(len(grid), size=4)] + rng.normal(0, 0.05, size=(4, grid.shape[1]))
    theta = np.clip(theta, [b[0] + 0.1 for b in form.bounds], [b[1] for b in form.bounds])
    _, J = form.evaluate(theta, logx, True)  # (K, P, n)
    for i in range(theta.shape[1]):
        h = 1e-6 * np.maximum(1.0, np.abs(theta[:, i]))
        up, down = theta.copy(), theta.copy()
        up[:, i] += h
        down[:, i] -= h
        numeric = (form.evaluate(up, logx, False)[0] - form.evaluate(down, logx, False)[0]) / (2 * h[:, None])
        np.testing.assert_allclose(J[:, i, :], numeric, rtol=1e-5, atol=1e-6, err_msg=f"{name} d/d{form.theta_names[i]}")


def test_kaplan_published_constants() -> None:
    # Kaplan eq 1.1: L(N_c) = 1 and doubling N multiplies the loss by 2^-alpha_N = 0.95 (§1.2).
    law = get_form("kaplan_n")
    p = {"N_c": 8.8e13, "alpha_N": 0.076}
    assert law.predict(p, {"N": [8.8e13]})[0] == pytest.approx(1.0)
    ratio = law.predict(p, {"N": [2e9]})[0] / law.predict(p, {"N": [1e9]})[0]
    assert ratio == pytest.approx(2**-0.076)
    # Kaplan eq 1.5 reduces to L(N) = (N_c/N)^alpha_N at D = infinity (Table 2 constants).
    nd = get_form("kaplan_nd")
    pnd = {"N_c": 6.4e13, "alpha_N": 0.076, "D_c": 1.8e13, "alpha_D": 0.103}
    assert nd.predict(pnd, {"N": [1e8], "D": [1e30]})[0] == pytest.approx((6.4e13 / 1e8) ** 0.076, rel=1e-9)
    # Kaplan eq 1.4: B_crit = 2.1e8 tokens at L = 1 and doubles per ~13% lower loss (Table 5, §5.1).
    b = get_form("bcrit")
    pb = {"B_star": 2.1e8, "alpha_B": 0.21}
    assert b.predict(pb, {"loss": [1.0]})[0] == pytest.approx(2.1e8)
    assert b.predict(pb, {"loss": [0.87]})[0] / b.predict(pb, {"loss": [1.0]})[0] == pytest.approx(2.0, rel=0.05)
    # Kaplan App D.5 largest model: L(T) = 2.3 + 5.4 T^-0.62.
    pos = get_form("position")
    assert pos.predict({"a": 2.3, "b": 5.4, "c": 0.62}, {"T": [100.0]})[0] == pytest.approx(2.3 + 5.4 * 100**-0.62)


def test_chinchilla_predict_matches_equation_and_batches() -> None:
    law = get_form("chinchilla")
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann eq 10
    N, D = np.array([7e10, 1e9]), np.array([1.4e12, 2e10])
    expected = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    np.testing.assert_allclose(law.predict(p, {"N": N, "D": D}), expected, rtol=1e-12)
    batch = law.predict(np.array([[1.69, 406.4, 410.7, 0.34, 0.28]] * 3), {"N": N, "D": D})
    assert batch.shape == (3, 2)
    np.testing.assert_allclose(batch[2], expected, rtol=1e-12)
    assert law.derived_values(p)["a"] == pytest.approx(0.28 / 0.62)
    theta = law.to_theta(p)
    assert law.theta_names == ("log_E", "log_A", "log_B", "alpha", "beta")
    assert law.param_dict(theta) == pytest.approx(p)


def test_hoffmann_grid_has_4500_starts() -> None:
    grid = get_form("chinchilla").start_grid("full")
    assert grid.shape == (4500, 5)  # Hoffmann App D.2
    assert len(get_form("chinchilla").start_grid("default")) < 500


def user_law(N, D, E, A, alpha):
    """Loss with an offset and a model-size term only."""
    return E + A / N**alpha


def test_from_function_matches_registered_and_gradients() -> None:
    form = Form.from_function(user_law, log_params=["A"], start={"E": 1.5, "A": [100.0, 1000.0], "alpha": 0.3})
    assert form.inputs == ("N", "D") and form.params == ("E", "A", "alpha")
    x = {"N": np.array([1e7, 1e8, 1e9]), "D": np.array([1e9, 1e9, 1e9])}
    p = {"E": 1.8, "A": 400.0, "alpha": 0.33}
    np.testing.assert_allclose(form.predict(p, x), 1.8 + 400.0 / x["N"] ** 0.33, rtol=1e-12)
    assert form.start_grid().shape == (2, 3)
    # Numerical Jacobian of the user function agrees with the analytic chinchilla one (B -> 0).
    chin = get_form("chinchilla")
    logx = chin.log_inputs(x)
    theta_c = chin.to_theta({"E": 1.8, "A": 400.0, "B": 1e-300, "alpha": 0.33, "beta": 0.3})[None, :]
    _, Jc = chin.evaluate(theta_c, logx, True)
    _, Ju = form.evaluate(form.to_theta(p)[None, :], logx, True)
    np.testing.assert_allclose(Ju[0, 1], Jc[0, 1], rtol=1e-5)  # d/dlog A
    np.testing.assert_allclose(Ju[0, 2], Jc[0, 3], rtol=1e-5)  # d/dalpha


def test_get_form_errors_and_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="chinchilla"):
        get_form("chinchila")
    with pytest.raises(ConfigError, match="not found"):
        get_form(str(tmp_path / "missing.py") + ":law")
    path = tmp_path / "my_laws.py"
    path.write_text("def offset_power(C, E, k, gamma):\n    return E + k * C**-gamma\n")
    form = get_form(f"{path}:offset_power")
    assert form.inputs == ("C",) and form.params == ("E", "k", "gamma")
    assert form.name == f"{path}:offset_power"
    with pytest.raises(ConfigError, match="no function"):
        get_form(f"{path}:nope")


def test_predict_rejects_missing_or_bad_inputs() -> None:
    law = get_form("chinchilla")
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    with pytest.raises(DataError, match="needs column 'D'"):
        law.predict(p, {"N": [1e9]})
    with pytest.raises(DataError, match="positive"):
        law.predict(p, {"N": [1e9], "D": [0.0]})
    with pytest.raises(ConfigError, match="missing beta"):
        law.predict({k: v for k, v in p.items() if k != "beta"}, {"N": [1e9], "D": [1e9]})
