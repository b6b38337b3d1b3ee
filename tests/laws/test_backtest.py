"""Backtests: split parsing, scores on known laws, Epoch's Chinchilla runs, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.errors import ConfigError, FitError
from scalinglab.laws.backtest import backtest, parse_split
from scalinglab.laws.fit import fit_law
from scalinglab.laws.uncertainty import t_quantile


def test_parse_split() -> None:
    s = parse_split("C<1e21")
    assert (s.column, s.op, s.value) == ("C", "<", 1e21)
    s = parse_split(" N >= 3.5E+8 ")
    assert (s.column, s.op, s.value) == ("N", ">=", 3.5e8)
    mask = parse_split("N<=2").train_mask(pd.DataFrame({"N": [1, 2, 3]}))
    assert mask.tolist() == [True, True, False]
    for bad in ["C<1e21; import os", "__import__('os')<1", "C<<1", "C=1e21", "C<"]:
        with pytest.raises(ConfigError, match="COLUMN<VALUE"):
            parse_split(bad)


def known_law_runs(noise: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 10, 8), np.logspace(9, 12, 8)))
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, noise, N.size))
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss})


def test_backtest_on_a_known_law() -> None:
    runs = known_law_runs(noise=0.005)
    result = backtest("chinchilla", runs, "C<1e20", bootstrap=100)
    assert result.n_train + result.n_test == len(runs)
    assert result.n_train == int((runs["C"] < 1e20).sum())
    held = runs[runs["C"] >= 1e20]
    truth = 1.8 + 480 / held["N"] ** 0.35 + 2100 / held["D"] ** 0.37
    np.testing.assert_allclose(result.table["predicted"], truth, rtol=0.03)
    assert result.mae < 0.03 and abs(result.bias) < 0.02
    assert result.max_abs_error == pytest.approx(np.max(np.abs(result.table["error"])))
    d = result.to_dict(points=True)
    assert len(d["points"]) == result.n_test and {"actual", "predicted", "lo", "hi", "covered"} <= set(d["points"][0])


def test_intervals_cover_a_known_law() -> None:
    # 95% intervals on data the law really describes, averaged over noise draws (one draw is 14 runs).
    coverage = [backtest("chinchilla", known_law_runs(0.005, seed), "C<1e20", bootstrap=100).coverage for seed in range(4)]
    assert np.mean(coverage) >= 0.85


def test_intervals_from_few_runs_cover_new_runs() -> None:
    # Five sizes, two parameters: the fit passes through about two runs, so the plain MAD of the residuals saw half
    # the noise (coverage 69%); without them and with Student's t on 3 degrees of freedom, 91% (60 ladders here).
    rng = np.random.default_rng(0)
    N, new = np.logspace(6, 8, 5), np.array([10**8.5, 10**7.25])  # one size beyond the ladder, one between its sizes
    law = lambda n: (1e13 / n) ** 0.08  # noqa: E731
    covered, s0 = [], []
    for _ in range(60):
        fit = fit_law("kaplan_n", pd.DataFrame({"N": N, "loss": law(N) * np.exp(rng.normal(0, 0.01, N.size))}))
        actual = law(new) * np.exp(rng.normal(0, 0.01, new.size))
        lo, hi = fit.prediction_interval(pd.DataFrame({"N": new}), 0.95)
        covered.extend((lo <= actual) & (actual <= hi))
        s0.append(fit.noise.s0)
    assert np.mean(covered) >= 0.85
    assert 0.7 < np.median(s0) / 0.01 < 1.6  # the noise estimate is the noise drawn, not a fraction of it
    assert fit.noise.dof == 3
    assert t_quantile(0.975, 3) == pytest.approx(3.1824, rel=2e-3)  # Student's t tables
    assert t_quantile(0.975, 30) == pytest.approx(2.0423, rel=1e-4) and t_quantile(0.975, np.inf) == pytest.approx(1.959964)


@pytest.mark.parametrize(
    ("q", "dof", "table"),  # Student's t tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 4 significant digits
    [(0.975, 1, 12.706), (0.995, 1, 63.657), (0.975, 2, 4.303), (0.95, 2, 2.920), (0.975, 3, 3.182), (0.9995, 3, 12.924),
     (0.975, 4, 2.776), (0.995, 5, 4.032), (0.975, 9, 2.262), (0.975, 10, 2.228), (0.9995, 10, 4.587), (0.975, 60, 2.000)],
)
def test_t_quantile_matches_the_tables_at_few_degrees_of_freedom(q: float, dof: float, table: float) -> None:
    # A fit of few runs has 1-3 degrees of freedom, where the expansion alone was 11% low at 1 (intervals too narrow).
    assert t_quantile(q, dof) == pytest.approx(table, rel=5e-4)
    assert t_quantile(1 - q, dof) == pytest.approx(-table, rel=5e-4)  # symmetric


def test_t_quantile_is_scipys_at_any_degrees_of_freedom() -> None:
    from scipy import stats

    # Fractional dof come from the curve fits' effective sample size; 100 and beyond take the expansion alone.
    for dof in [1.0, 1.3, 2.0, 2.7, 3.0, 4.5, 8.67, 9.99, 25.0, 99.0, 100.0, 1e4]:
        for q in [0.6, 0.9, 0.975, 0.995, 0.9995, 0.025]:
            assert t_quantile(q, dof) == pytest.approx(stats.t.ppf(q, dof), rel=1e-8), (q, dof)


def test_backtest_predicts_a_few_held_out_runs() -> None:
    runs = known_law_runs(noise=0.005)
    top = np.sort(runs["C"].to_numpy())[-2]
    held = int((runs["C"] >= top).sum())
    assert held < 6  # fewer held-out runs than the law has parameters
    result = backtest("chinchilla", runs, f"C<{top:.17g}", bootstrap=0)
    assert result.n_test == held == len(result.table) and np.isfinite(result.max_rel_error)


def test_backtest_refuses_empty_sides() -> None:
    runs = known_law_runs(noise=0.005)
    with pytest.raises(FitError, match="holds some out"):
        backtest("chinchilla", runs, "C<1e40", bootstrap=0)
    with pytest.raises(FitError, match="no training runs"):
        backtest("chinchilla", runs, "C<1", bootstrap=0)


def test_epoch_extrapolation_beyond_1e21(epoch240: pd.DataFrame) -> None:
    result = backtest("chinchilla", epoch240, "C<1e21", bootstrap=400)
    assert (result.n_train, result.n_test) == (217, 23)
    assert result.mae <= 0.024  # SOURCE.md: about 0.024 nats with a correct fitter
    assert result.coverage >= 0.90  # the 95% intervals of a new run


def test_epoch_intervals_widen_at_the_ends_of_isoflop_profiles(epoch240: pd.DataFrame) -> None:
    # Below 1e21 the runs with about one token per parameter miss the law by ~5x the typical residual;
    # forward chaining sees it, so the intervals of the held-out runs at those ends are the widest.
    result = backtest("chinchilla", epoch240, "C<1e21", bootstrap=0)
    assert result.fit.noise.spread > 0
    t = result.table.assign(width=np.log(result.table["hi"] / result.table["lo"]), tpp=result.table["D"] / result.table["N"])
    near = t[t["C"] < 1.1e21]  # one IsoFLOP budget: its widest interval is at its fewest tokens per parameter
    assert near["width"].idxmax() == near["tpp"].idxmin()


def test_backtest_and_fit_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.csv"
    known_law_runs(noise=0.005).drop(columns="D").to_csv(path, index=False)  # D derived from C
    assert main(["backtest", str(path), "--law", "chinchilla", "--train", "C<1e20", "--bootstrap", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"mae", "bias", "max_abs_error", "max_rel_error", "coverage", "n_train", "n_test"} <= set(out)

    fit_json = tmp_path / "fit.json"
    assert main(["fit", str(path), "--law", "chinchilla", "--bootstrap", "50", "--out", str(fit_json), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"law", "params", "objective", "converged", "n_points", "intervals"} <= set(out)
    assert out["params"]["alpha"] == pytest.approx(0.35, rel=0.05)
    assert json.loads(fit_json.read_text())["params"] == out["params"]

    assert main(["fit", str(path), "--law", "chinchilla", "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "converged" in text and "alpha" in text

    assert main(["fit", str(path), "--columns", "loss=val/loss"]) == 2
    assert "val/loss" in capsys.readouterr().err


def test_fit_and_backtest_where_keep_one_configuration_of_several(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two configurations in one table (as Porian et al.'s ten): --where fits each on its own rows (their
    alphas differ), says how many it kept, and keeps the file's row numbers in what it reports."""
    steep = known_law_runs(noise=0.003, seed=1)
    steep["loss"] = 1.8 + 480 / steep["N"] ** 0.5 + 2100 / steep["D"] ** 0.37
    table = pd.concat([known_law_runs(noise=0.003).assign(config="base"), steep.assign(config="steep|v2")])
    path = tmp_path / "two.csv"
    table.to_csv(path, index=False)
    alpha = {}
    for config in ("base", "steep|v2"):
        assert main(["fit", str(path), "--where", f"config={config}", "--bootstrap", "0", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        alpha[config] = out["params"]["alpha"]
        assert out["n_points"] == 64 and f"kept the 64 of 128 rows where config={config}" in out["notes"]
        assert "mixed" not in [w["kind"] for w in out["warnings"]]
    # without --where the two are fitted as one law, and the fit says which column tells them apart
    assert main(["fit", str(path), "--bootstrap", "0", "--json"]) == 0
    (mixed,) = [w for w in json.loads(capsys.readouterr().out)["warnings"] if w["kind"] == "mixed"]
    assert "64 groups of rows share their N, D but differ in config" in mixed["message"]
    assert "--where config=VALUE (config takes base, steep|v2)" in mixed["message"]
    assert alpha["base"] == pytest.approx(0.35, rel=0.05) and alpha["steep|v2"] == pytest.approx(0.5, rel=0.05)
    assert main(["backtest", str(path), "--where", "config=steep|v2", "--train", "C<1e20", "--bootstrap", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_train"] + out["n_test"] == 64 and out["mae"] < 0.01
    assert main(["fit", str(path), "--where", "config=flat"]) == 2
    assert "no row has config = 'flat'; it takes base, steep|v2" in capsys.readouterr().err
    table.iloc[70, table.columns.get_loc("loss")] = np.nan  # the file's row 70, the 7th of steep|v2
    table.to_csv(path, index=False)
    assert main(["fit", str(path), "--where", "config=steep|v2"]) == 2
    assert "column 'loss' has non-positive or missing values in row(s) 70;" in capsys.readouterr().err


def test_a_learning_curve_backtest_scores_each_held_out_runs_last_step() -> None:
    # S = S_min is not monotone along a run (B_crit grows as the loss falls) and rows need not come in order:
    # the final checkpoint is the one of the largest step, not of the largest S nor the last row
    rng = np.random.default_rng(0)
    rows = []
    for run, n in enumerate([1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6]):
        for step in [200, 400, 800, 1600, 3200]:
            s = step / (1 + 0.3 * np.log2(step / 100))  # S_min-like: grows slower than the step
            rows.append({"run_id": f"r{run}", "step": step, "N": n, "S": s,
                         "loss": ((4e6 / n) ** 0.08 + (200 / s) ** 0.7) * np.exp(rng.normal(0, 0.002))})
    table = pd.DataFrame(rows)
    last = table.groupby("run_id")["step"].idxmax()
    table.loc[last, "S"] = table.loc[last, "S"] * 0.9  # the last step's S_min below the one before it
    table = table.sample(frac=1.0, random_state=1)  # rows out of order
    result = backtest("kaplan_ns", table, "N<1e6", bootstrap=0, runs="run_id")
    held = table[table["N"] >= 1e6]
    assert result.n_test == held["run_id"].nunique() == 2
    final = held.loc[held.groupby("run_id")["step"].idxmax()].sort_values("N")
    np.testing.assert_allclose(result.table.sort_values("N")["actual"], final["loss"])


def test_a_backtest_whose_intervals_cover_too_few_held_out_runs_says_so(epoch240: pd.DataFrame) -> None:
    """Kaplan's L(N, D) on Epoch's runs below 1e19 FLOPs covers 61% of the 192 larger runs with its 95%
    intervals: the backtest now says the intervals are too narrow (before: the number alone)."""
    from scalinglab.laws.backtest import coverage_warning

    narrow = backtest("kaplan_nd", epoch240, "C<1e19", bootstrap=20, outliers="keep")
    (found,) = [w for w in narrow.warnings if w["kind"] == "coverage"]
    assert narrow.coverage < 0.9 and f"covered {narrow.coverage:.0%} of the {narrow.n_test} held-out runs" in found["message"]
    assert found in narrow.to_dict()["warnings"] and found not in narrow.fit.warnings
    # on the true law the warning is a rare false alarm: 14 held-out runs, 16 noise draws
    true_law = [backtest("chinchilla", known_law_runs(0.005, seed), "C<1e20", bootstrap=50) for seed in range(16)]
    alarms = sum("coverage" in [w["kind"] for w in r.warnings] for r in true_law)
    assert alarms <= 2, [r.coverage for r in true_law]
    assert coverage_warning(0.5, 0.95, 4) == [] and coverage_warning(0.6, 0.95, 5) != []  # four runs are too few to judge
