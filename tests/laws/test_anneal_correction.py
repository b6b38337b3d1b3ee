"""Checkpoint tables with an lr column: intermediate checkpoints of decaying runs are moved to the loss
of runs whose schedules end there (laws.curves.anneal_corrected), so a joint law sees valid (N, D) points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError
from scalinglab.laws.curves import ANNEAL_PSEUDO_STEPS, anneal_corrected, annealing_areas
from scalinglab.laws.fit import fit_law
from scalinglab.laws.frontier import envelope_frontier


def cosine(x: np.ndarray, end: float, peak: float = 1e-3) -> np.ndarray:
    return peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * x / end)))


def true_loss(schedule: tuple[np.ndarray, np.ndarray], at: np.ndarray, per_step: float, scale: float) -> np.ndarray:
    """A run drawn from the LR-annealing law itself (Tissue et al. 2024), scale shifting the model size."""
    s1, s2 = annealing_areas(schedule, at, per_step)
    return scale * (1.8 + 2.0 * (s1 / 1e-3 / 50) ** -0.4) - 25.0 * s2


def checkpoint_run(name: str, end: float, scale: float, k: int = 24) -> tuple[pd.DataFrame, np.ndarray]:
    """A cosine run's checkpoints, and the loss each would have had as its own run of that length."""
    per_step = end / ANNEAL_PSEUDO_STEPS
    xs = np.linspace(end / k, end, k)
    grid = np.linspace(0, end, 400)
    schedule = (grid, cosine(grid, end))
    loss = true_loss(schedule, xs, per_step, scale)
    own = np.array([true_loss((grid * t / end, cosine(grid, end)), np.array([t]), per_step, scale)[0] for t in xs])
    lr = np.interp(xs, *schedule)
    return pd.DataFrame({"run": name, "N": 1e6 * scale, "D": xs, "lr": lr, "loss": loss}), own


def test_the_correction_gives_each_checkpoint_the_loss_of_a_run_that_ends_there():
    frame, own = checkpoint_run("a", 2e7, 1.0)
    corrected, notes = anneal_corrected(frame, "run")
    middle = slice(4, -1)  # past the transient the per-run fit leaves out
    before = np.abs(frame["loss"].to_numpy()[middle] / own[middle] - 1)
    after = np.abs(corrected["loss"].to_numpy()[middle] / own[middle] - 1)
    assert before.max() > 0.02  # the bias is real: mid-run checkpoints sit above their own runs' ends
    assert after.max() < 0.2 * before.max()
    assert corrected["loss"].iloc[-1] == frame["loss"].iloc[-1]  # the run's end is a run that ends there
    assert "moved to runs whose schedules end" in notes[0]


def test_runs_without_decay_or_points_are_left_and_named():
    frame, _ = checkpoint_run("a", 2e7, 1.0)
    flat = frame.assign(run="flat", lr=1e-3)
    few = frame.head(3).assign(run="few")
    corrected, notes = anneal_corrected(pd.concat([flat, few], ignore_index=True), "run")
    assert np.array_equal(corrected["loss"].to_numpy(), pd.concat([flat, few])["loss"].to_numpy())
    assert notes == ["no LR correction for 1 run(s) with too few points or LRs to fit: few"]


def test_fit_law_corrects_a_checkpoint_table_with_an_lr_column_and_can_be_told_not_to():
    frames = [checkpoint_run(f"r{i}", end, scale)[0] for i, (end, scale) in enumerate([(1e7, 1.2), (2e7, 1.0), (4e7, 0.9)])]
    table = pd.concat(frames, ignore_index=True)
    fit = fit_law("kaplan_d", table, runs="run")
    raw = fit_law("kaplan_d", table, runs="run", anneal=False)
    assert any("moved to runs whose schedules end" in n for n in fit.notes)
    assert not any("moved to runs" in n for n in raw.notes)
    assert fit.params != raw.params


def test_a_checkpoint_table_whose_run_column_is_missing_or_has_gaps_is_named() -> None:
    # With an lr column the correction groups by run before anything else: a missing column was a pandas KeyError.
    table = pd.concat([checkpoint_run(f"r{i}", end, 1.0)[0] for i, end in enumerate([1e7, 2e7])], ignore_index=True)
    with pytest.raises(DataError, match="--run-column 'nope' not in the table"):
        fit_law("kaplan_d", table, runs="nope")
    gap = table.assign(run=table["run"].where(table.index != 5))
    with pytest.raises(DataError, match="column 'run' names no run in row\\(s\\) 5"):
        fit_law("kaplan_d", gap, runs="run")
    with pytest.raises(DataError, match="names no run in row\\(s\\) 5"):  # the envelope's bootstrap met it as a KeyError: nan
        envelope_frontier(gap.assign(C=6 * gap["N"] * gap["D"]), run_col="run")
