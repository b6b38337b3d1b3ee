"""Warnings a fit cannot be read without: floorless laws, held bounds, unidentified parameters, failed refits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.laws.backtest import backtest
from scalinglab.laws.diagnostics import interval_bound_warnings
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form


def floorless_runs(seed: int = 0) -> pd.DataFrame:
    # 8 small runs of a power law with no floor, like a CPU demo's cheapest runs.
    N = np.array([1.4e4, 1.4e4, 2.5e4, 2.5e4, 2.5e4, 5.7e4, 5.7e4, 1e5])
    D = np.array([5e5, 1e6, 7e5, 1e6, 2e6, 1e6, 1.3e6, 1e6])
    noise = np.exp(np.random.default_rng(seed).normal(0, 0.01, N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": (18 / N**0.39 + 38 / D**0.158) * noise})


def kinds(fit) -> dict[str, set]:
    out: dict[str, set] = {}
    for w in fit.warnings:
        out.setdefault(w["kind"], set()).add(w["param"])
    return out


def test_a_floorless_power_law_warns_naming_e() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw library warning may escape the fit
        fit = fit_law("chinchilla", floorless_runs(), bootstrap=30)
    found = kinds(fit)
    assert found["floorless"] == {"E"}
    assert "unidentified" in found  # A and alpha trade off along a flat valley on these 8 runs
    assert found["bootstrap_failed"] == {None} and fit.bootstrap_dropped > 3
    message = next(w["message"] for w in fit.warnings if w["kind"] == "floorless")
    assert "E =" in message and "--bound E=" in message


def test_a_law_no_bootstrap_refit_can_fit_gets_no_intervals_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A user law whose amplitude the runs do not determine (the loss does not move with N): every refit fails
    # its convergence test. It was an IndexError from inside np.percentile.
    law = tmp_path / "law.py"
    law.write_text("def flat(N, D, E, A):\n    return E + A / N\n")
    N = np.geomspace(1e8, 1e10, 30)
    runs = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": 20 * N, "loss": 2.0 * np.exp(0.01 * np.random.default_rng(0).standard_normal(30))}).to_csv(runs, index=False)
    assert main(["fit", str(runs), "--law", f"{law}:flat", "--bootstrap", "20", "--json"]) == 1  # 1: not converged
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["intervals"] == {}
    [failed] = [w for w in out["warnings"] if w["kind"] == "bootstrap_failed"]
    assert "20 of 20 bootstrap refits did not converge, so the fit has no intervals" in failed["message"]
    assert "Traceback" not in captured.err and "the fit did not converge" in captured.err


def test_a_well_determined_fit_has_no_warnings(epoch240: pd.DataFrame) -> None:
    fit = fit_law("chinchilla", epoch240, bootstrap=100)
    assert fit.bootstrap_dropped <= 10
    # Only the outlier note (runs at extreme tokens per parameter) remains on Epoch's 240 runs.
    assert set(kinds(fit)) <= {"outlier"}


def test_fit_cli_prints_warnings_on_stderr_and_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.csv"
    floorless_runs().to_csv(path, index=False)
    main(["fit", str(path), "--bootstrap", "0", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert any(w["kind"] == "floorless" and w["param"] == "E" for w in out["warnings"])
    assert "scalinglab fit: warning: E = " in captured.err
    assert "RuntimeWarning" not in captured.err and "Traceback" not in captured.err


def test_outliers_drop_and_downweight_refit_without_the_bad_run() -> None:
    rng = np.random.default_rng(1)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 10, 6), np.logspace(9, 12, 6)))
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.003, N.size))
    loss[7] *= 1.25  # a diverged run
    runs = pd.DataFrame({"N": N, "D": D, "loss": loss})
    flagged = fit_law("chinchilla", runs)
    assert any(f["row"] == "7" and f["reason"] == "residual" for f in flagged.outliers)
    assert fit_law("chinchilla", runs, outliers="keep").outliers == []
    dropped = fit_law("chinchilla", runs, outliers="drop")
    assert dropped.data.loc[7, "weight"] == 0.0
    assert next(f for f in dropped.outliers if f["row"] == "7")["action"] == "dropped"
    gone = [int(f["row"]) for f in dropped.outliers if f.get("action") == "dropped"]
    clean = fit_law("chinchilla", runs.drop(index=gone))
    assert dropped.params["alpha"] == pytest.approx(clean.params["alpha"], rel=1e-4)
    down = fit_law("chinchilla", runs, outliers="downweight")
    assert 0 < down.data.loc[7, "weight"] < 1
    assert down.outlier_mode == "downweight"


def checkpoint_table(seed: int = 0) -> pd.DataFrame:
    """Six runs, each logged at 4 to 40 checkpoints: loss at each D on the law, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (n, count) in enumerate(zip(np.logspace(7, 9.5, 6), (40, 4, 25, 6, 30, 8))):
        D = np.geomspace(2e8, 20 * n * 10, count)
        loss = (1.8 + 480 / n**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.002, count))
        rows.append(pd.DataFrame({"run": f"r{i}", "N": n, "D": D, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def test_checkpoint_tables_count_runs_not_rows() -> None:
    table = checkpoint_table()
    fit = fit_law("chinchilla", table, runs="run", bootstrap=40, skip_fraction=0.05)
    assert fit.converged, fit.status
    per_run = fit.data["weight"].groupby(table.loc[fit.data.index, "run"]).sum()
    np.testing.assert_allclose(per_run.to_numpy(), 1.0)  # each run counts once, whatever its checkpoints
    assert len(fit.data) < len(table)  # the first 5% of each run's tokens left out
    assert fit.params["alpha"] == pytest.approx(0.35, rel=0.05)
    # Early checkpoints sit at few tokens per parameter by design: never flagged.
    assert not any(f["reason"] == "tokens_per_param" for f in fit.outliers)
    assert fit.run_column == "run" and fit.to_dict()["run_column"] == "run"


def test_a_checkpoint_backtest_scores_each_held_out_run_once() -> None:
    table = checkpoint_table()
    result = backtest("chinchilla", table, "N<1e9", bootstrap=0, runs="run", skip_fraction=0.05)
    held = table[table["N"] >= 1e9]
    assert result.n_test == held["run"].nunique() == 2  # one final checkpoint per held-out run
    assert set(result.table["D"]) == set(held.groupby("run")["D"].max())
    assert result.mae < 0.01


def test_a_small_exponent_well_inside_its_box_is_not_near_its_bound():
    """Kaplan's α_N = 0.076 on a (1e-6, 10) box is an estimate, not a degenerate fit; 1e-5 is at the floor."""
    from scalinglab.laws.diagnostics import form_bound_warnings
    from scalinglab.laws.forms import get_form

    form = get_form("kaplan_n")
    ok = form_bound_warnings(form, form.to_theta({"N_c": 8.8e13, "alpha_N": 0.076}))
    low = form_bound_warnings(form, form.to_theta({"N_c": 8.8e13, "alpha_N": 1.5e-6}))
    assert [w["param"] for w in ok] == []
    assert [w["param"] for w in low] == ["alpha_N"]


def test_an_interval_that_runs_to_the_box_warns_naming_the_parameter_and_the_bound() -> None:
    """Ten noisy runs of L(N, D): where the bootstrap's upper end of alpha_D is the box's 10 (the demo's joint
    alpha_D was printed 0.199 [0.168, 10] with no word on it), the fit says the box ends the interval."""
    form = get_form("kaplan_nd")
    truth = {"N_c": 1e10, "alpha_N": 0.1, "D_c": 5e8, "alpha_D": 0.2}
    n, d = np.repeat(np.geomspace(1e4, 3e5, 5), 2), np.tile([2e6, 2e7], 5)
    seen = []
    for seed in range(6):
        loss = form.predict(truth, {"N": n, "D": d}) * np.exp(0.02 * np.random.default_rng(seed).standard_normal(n.size))
        fit = fit_law("kaplan_nd", {"N": n, "D": d, "loss": loss}, bootstrap=100)
        found = [w for w in fit.warnings if w["kind"] == "interval_at_bound"]
        on_bound = any(w["param"] == "alpha_D" and w["kind"] == "at_bound" for w in fit.warnings)
        runs_to_box = fit.intervals["alpha_D"][1] > 10 - 1e-3
        assert bool(found) == (runs_to_box and not on_bound), (seed, fit.intervals["alpha_D"], fit.warnings)
        if found:
            assert found[0]["param"] == "alpha_D" and "runs to its upper bound 10" in found[0]["message"]
            seen.append(seed)
    assert seen  # the case occurs on these runs
    (low,) = interval_bound_warnings(form, {"N_c": [float(np.exp(-200.0)), 1e12]}, 0.95)  # a log parameter's floor
    assert low["param"] == "N_c" and "lower bound" in low["message"]
    assert interval_bound_warnings(form, {"alpha_D": [0.15, 10.0]}, 0.95, skip=["alpha_D"]) == []


def test_an_allocation_exponent_whose_interval_leaves_zero_to_one_warns() -> None:
    """a ≤ 0 would mean the optimal size does not grow with compute, a ≥ 1 that the tokens do not: an interval
    reaching either (the demo's envelope printed 0.232 [-0.012, 0.496]) says these runs do not establish a."""
    from scalinglab.laws.diagnostics import allocation_warnings

    (low,) = allocation_warnings("approach 1, envelope", (-0.012, 0.496))
    assert (low["kind"], low["param"]) == ("unidentified", "a") and "[-0.012, 0.496], reaches a ≤ 0" in low["message"]
    (high,) = allocation_warnings("approach 2, isoflop", (0.7, 1.05))
    assert "reaches a ≥ 1" in high["message"] and high["message"].startswith("approach 2, isoflop: ")
    assert allocation_warnings("approach 2", (0.45, 0.55)) == [] and allocation_warnings("approach 2", None) == []
