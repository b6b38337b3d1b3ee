"""Choosing a law by rollout cross-validation: the folds, the choice, the intervals, and backtests with --law auto."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.laws.auto import CANDIDATES, axis_steps, cv_error, fit_auto, largest_from_rest, rollout
from scalinglab.laws.backtest import backtest


def ladder(eta: float = 0.33, noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Six sizes, three token budgets each, from a law with one exponent (the tied form is the truth)."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.logspace(7, 9.5, 6), 3)
    D = N * np.tile([5.0, 20.0, 80.0], 6)
    loss = (1.8 + 480 / N**eta + 2100 / D**eta) * np.exp(rng.normal(0, noise, N.size))
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss})


def test_axis_steps_and_rollout_fit_the_smaller_and_predict_the_next() -> None:
    assert axis_steps(np.array([3.0, 1.0, 2.0, 1.0])).tolist() == [2, 0, 1, 0]
    assert axis_steps(np.linspace(0, 1, 100)).max() == 9  # many values: quantile steps
    assert axis_steps(np.array([])).size == 0  # a study with no runs of the law: no steps, no crash
    runs = ladder()
    table = rollout("chinchilla_tied", runs, axis="N", folds=3)
    assert sorted(table["fold"].unique()) == [3, 4, 5]  # the three largest sizes, each predicted from those below
    predicted_rows = set(table["row"])
    assert predicted_rows == {str(i) for i in runs.index[runs["N"] >= np.sort(runs["N"].unique())[3]]}
    assert cv_error(table) < 0.01  # the true form extrapolates to within the noise


def test_fit_auto_scores_every_candidate_and_widens_intervals_by_their_spread() -> None:
    runs = ladder()
    fit = fit_auto(runs, axis="N", bootstrap=10, folds=2)
    names = [c["name"] for c in fit.candidates]
    assert names == [c.name for c in CANDIDATES]
    chosen = next(c for c in fit.candidates if c["chosen"])
    scored = [c["cv_error"] for c in fit.candidates if c["cv_error"] is not None]
    assert chosen["cv_error"] == min(scored)
    assert fit.law in ("chinchilla", "chinchilla_tied")  # kaplan_nd has no floor: it cannot follow these runs
    kaplan = next(c for c in fit.candidates if c["name"] == "kaplan_nd")
    assert kaplan["cv_error"] > chosen["cv_error"]
    assert sum(c["weight"] for c in fit.candidates) == pytest.approx(1.0)
    far = pd.DataFrame({"N": [3e10], "D": [6e11]})
    spread = fit.candidate_spread(far)
    assert spread[0] >= 0
    lo, hi = fit.prediction_interval(far)
    fit_alone = dataclasses.replace(fit, candidates=[])
    lo1, hi1 = fit_alone.prediction_interval(far)
    assert hi[0] / lo[0] >= hi1[0] / lo1[0]  # never narrower than the chosen law alone
    assert "rollout" in fit.notes[-1]


@pytest.mark.slow
def test_largest_model_predicted_from_the_rest() -> None:
    runs = ladder()
    table, fit = largest_from_rest("auto", runs, column="N", bootstrap=10, folds=2)
    assert (table["N"] == runs["N"].max()).all() and len(table) == 3
    assert fit.data["N"].max() < runs["N"].max()  # the largest model never reaches the fit
    assert np.all(np.abs(table["rel_error"]) < 0.02)
    assert np.all((table["lo"] <= table["actual"]) & (table["actual"] <= table["hi"]))


@pytest.mark.slow
def test_backtest_auto_selects_inside_the_training_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = ladder()
    result = backtest("auto", runs, "N<1e9", bootstrap=10, folds=2)
    # The selection saw only the training runs: every candidate's fits are of rows below the split.
    assert result.fit.data["N"].max() < 1e9
    assert result.n_test == int((runs["N"] >= 1e9).sum())
    assert result.mae < 0.02
    out = result.to_dict()
    assert len(out["candidates"]) == len(CANDIDATES) and sum(c["chosen"] for c in out["candidates"]) == 1
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    assert main(["fit", str(path), "--law", "auto", "--axis", "N", "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "candidate kaplan_nd" in text and "<- chosen" in text
    assert main(["fit", str(path), "--law", "auto", "--tie", "alpha=beta"]) == 2
    assert "--law NAME" in capsys.readouterr().err


def test_the_law_line_names_the_chosen_candidate_with_its_constraint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A floorless truth (E = 0, exponents apart): auto chooses chinchilla[E=0], and says so, not 'chinchilla'."""
    rng = np.random.default_rng(0)
    N = np.repeat(np.logspace(7, 9.5, 6), 3)
    D = N * np.tile([5.0, 20.0, 80.0], 6)
    loss = (480 / N**0.30 + 2100 / D**0.36) * np.exp(rng.normal(0, 0.002, N.size))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(path, index=False)
    assert main(["fit", str(path), "--law", "auto", "--axis", "N", "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "candidate chinchilla[E=0]" in text and text.splitlines()[0].startswith("law: chinchilla[E=0] ")
    assert main(["backtest", str(path), "--law", "auto", "--train", "N<1e9", "--bootstrap", "0"]) == 0
    assert capsys.readouterr().out.startswith("law: chinchilla[E=0]; fitted on N<1e+09")
