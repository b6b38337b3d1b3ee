"""Ties, fixed values and bounds on any law; the tied Chinchilla form; user laws that declare their inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import constrain, get_form, law

TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.33, "beta": 0.33}  # generating law, one exponent


def runs(n_side: int = 6, noise: float = 0.002, seed: int = 0, truth: dict[str, float] = TRUTH) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 10, n_side), np.logspace(9, 12, n_side)))
    loss = truth["E"] + truth["A"] / N ** truth["alpha"] + truth["B"] / D ** truth["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(rng.normal(0, noise, N.size))})


def test_tie_recovers_the_shared_exponent_and_matches_the_tied_form() -> None:
    data = runs()
    tied = fit_law("chinchilla", data, tie="alpha=beta")
    assert tied.converged, tied.status
    assert tied.params["alpha"] == tied.params["beta"] == pytest.approx(0.33, rel=0.03)
    assert tied.params["E"] == pytest.approx(1.8, rel=0.02)
    assert tied.constraints == {"tie": {"beta": "alpha"}, "fix": {}, "bounds": {}}
    builtin = fit_law("chinchilla_tied", data)
    assert builtin.params["eta"] == pytest.approx(tied.params["alpha"], rel=1e-6)
    assert builtin.objective == pytest.approx(tied.objective, rel=1e-6)


def test_five_runs_fit_the_tied_law() -> None:
    # Five runs identify four parameters: a design too small for the five-parameter law.
    N = np.array([1e7, 3e7, 1e8, 3e8, 1e9])
    D = 20 * N * np.array([1.0, 0.5, 2.0, 1.0, 0.7])
    loss = 1.8 + 480 / N**0.33 + 2100 / D**0.33
    fit = fit_law("chinchilla_tied", pd.DataFrame({"N": N, "D": D, "loss": loss}))
    assert fit.converged, fit.status
    assert fit.params["eta"] == pytest.approx(0.33, rel=1e-3)
    assert fit.params["E"] == pytest.approx(1.8, rel=1e-3)


def test_fix_recovers_the_other_parameters_and_survives_fit_json(tmp_path: Path) -> None:
    truth = {**TRUTH, "beta": 0.37}
    data = runs(noise=0.001, truth=truth)
    fit = fit_law("chinchilla", data, fix={"E": 1.8}, bootstrap=30)
    assert fit.params["E"] == 1.8
    for name in ("alpha", "beta"):
        assert fit.params[name] == pytest.approx(truth[name], rel=0.02), name
    assert fit.intervals["E"] == [1.8, 1.8]  # held, not estimated
    path = tmp_path / "fit.json"
    fit.to_json(path)
    loaded = FitResult.load(path)
    assert loaded.constraints["fix"] == {"E": 1.8}
    np.testing.assert_array_equal(loaded.predict(data), fit.predict(data))


def test_bound_holds_a_parameter_and_says_so() -> None:
    data = runs()
    fit = fit_law("chinchilla", data, bounds="E=2.0:2.5")
    assert fit.converged, fit.status
    assert fit.params["E"] == pytest.approx(2.0)
    assert any(w["kind"] == "at_bound" and w["param"] == "E" for w in fit.warnings)
    free = fit_law("chinchilla", data)
    assert fit.objective > free.objective


def test_bad_constraints_say_what_to_change() -> None:
    form = get_form("chinchilla")
    with pytest.raises(ConfigError, match="not a parameter.*E, A, B, alpha, beta"):
        constrain(form, tie="alpha=gamma")
    with pytest.raises(ConfigError, match="like with like"):
        constrain(form, tie="E=alpha")
    with pytest.raises(ConfigError, match="NAME=LOW:HIGH"):
        constrain(form, bounds="E=1.5")
    with pytest.raises(ConfigError, match="empty"):
        constrain(form, bounds="E=2:1")
    with pytest.raises(ConfigError, match="above 0"):
        constrain(form, fix="E=-1")
    with pytest.raises(ConfigError, match="at least one free"):
        constrain(get_form("kaplan_n"), fix="N_c=1e13,alpha_N=0.07")


LAW_FILE = '''
import numpy as np


def chin(N, D, E, A, B, alpha, beta):
    """A user Chinchilla whose data amplitude is called B."""
    return E + A / N**alpha + B / D**beta


INPUTS = ("N", "D")


def scaled(T, S, C, k):
    """Inputs declared by the file's INPUTS would be wrong here; --inputs says T."""
    return S + C * T**-k
'''


def test_user_laws_declare_their_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "laws.py"
    path.write_text(LAW_FILE)
    form = get_form(f"{path}:chin")
    assert form.inputs == ("N", "D") and form.params == ("E", "A", "B", "alpha", "beta")

    @law(inputs=("T",))
    def curve(T, S, C, k):
        return S + C * T**-k

    from scalinglab.laws.forms import Form

    declared = Form.from_function(curve, start={"S": [1.0, 3.0], "C": [1.0, 10.0], "k": [0.3, 1.0]})
    assert declared.inputs == ("T",) and declared.params == ("S", "C", "k")
    T = np.arange(1.0, 60.0)
    fit = fit_law(declared, pd.DataFrame({"T": T, "loss": 2.0 + 5.0 * T**-0.6}))
    assert fit.params["k"] == pytest.approx(0.6, rel=1e-3)
    assert get_form(f"{path}:scaled", inputs=["T"]).params == ("S", "C", "k")

    table = tmp_path / "runs.csv"
    runs(truth={**TRUTH, "beta": 0.37}).to_csv(table, index=False)
    spec = f"{path}:chin"
    start = ["--starts", "default"]
    assert main(["fit", str(table), "--law", spec, *start, "--bootstrap", "0", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"] == ["N", "D"] and set(out["params"]) == {"E", "A", "B", "alpha", "beta"}


def test_cli_constraints_are_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "runs.csv"
    runs().to_csv(table, index=False)
    fit_json = tmp_path / "fit.json"
    args = ["fit", str(table), "--tie", "alpha=beta", "--fix", "E=1.8", "--bootstrap", "0", "--out", str(fit_json), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["constraints"] == {"tie": {"beta": "alpha"}, "fix": {"E": 1.8}, "bounds": {}}
    assert out["params"]["alpha"] == pytest.approx(0.33, rel=0.02)
    assert json.loads(fit_json.read_text())["constraints"] == out["constraints"]
    assert main(["backtest", str(table), "--train", "N<1e9", "--tie", "alpha=beta", "--bootstrap", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["constraints"]["tie"] == {"beta": "alpha"} and out["mae"] < 0.01
    assert main(["fit", str(table), "--tie", "alpha=gamma"]) == 2
    assert "not a parameter" in capsys.readouterr().err


def test_fit_refuses_options_a_plain_table_or_a_built_in_law_would_ignore(tmp_path: Path, capsys) -> None:
    """--no-lr-correction without --run-column and --inputs that differ from a built-in law's were ignored."""
    path = tmp_path / "runs.csv"
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e9, 1e11, 4)))
    pd.DataFrame({"N": n, "D": d, "loss": 1.8 + 480 / n**0.35 + 2100 / d**0.37}).to_csv(path, index=False)
    assert main(["fit", str(path), "--no-lr-correction", "--bootstrap", "0"]) == 2
    assert "--no-lr-correction) needs runs=COLUMN (--run-column)" in capsys.readouterr().err
    assert main(["fit", str(path), "--inputs", "D,N", "--bootstrap", "0"]) == 2
    assert "law 'chinchilla' has its inputs (N, D); --inputs declares a user function's" in capsys.readouterr().err
    assert main(["fit", str(path), "--inputs", "N,D", "--bootstrap", "0"]) == 0  # the law's own: nothing to refuse
