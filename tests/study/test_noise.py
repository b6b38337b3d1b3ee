"""Seed noise (study.noise) on a real tiny study: only runs that differ in nothing but their seed are pooled."""

from __future__ import annotations

import numpy as np
import pytest
from tests.support import tiny_base, write_study

from scalinglab.study import load_study, run_study
from scalinglab.study.collect import collect
from scalinglab.study.noise import seed_noise

TWO_D = """
[[design]]
kind = "seeds"
name = "short"
shapes = [[1, 16]]
seeds = [0, 1]
budget = {steps = 4}

[[design]]
kind = "seeds"
name = "long"
shapes = [[1, 16]]
seeds = [0, 1]
budget = {steps = 40}
"""
"""One size under two seeds at two D: four runs, two sets of replicates."""


@pytest.fixture(scope="module")
def two_d_runs(tmp_path_factory: pytest.TempPathFactory, token_cache: str):
    base = tiny_base(points=1, d_model=16, n_layer=1, checkpoint_steps=0, cache_dir=token_cache)
    study = load_study(write_study(tmp_path_factory.mktemp("noise"), "two_d", TWO_D, base=base))
    status = run_study(study, "local", workers=2, progress=False)
    assert (status["state"] == "done").all(), status
    return collect(study.directory)[0]


def test_seeds_at_two_d_are_two_sets_of_replicates(two_d_runs) -> None:
    noise = seed_noise(two_d_runs)
    assert len(noise.groups) == 2 and list(noise.groups["runs"]) == [2, 2] and noise.dof == 2
    assert noise.groups["D"].nunique() == 2  # the same size and group label, two D
    within = [np.log(g["loss"].to_numpy()).std(ddof=1) for _, g in two_d_runs.groupby("D")]
    assert noise.sd_log == pytest.approx(np.sqrt(np.mean(np.square(within))))
    # the D difference is no noise: pooling the four runs of the one size would have counted it
    lumped = np.log(two_d_runs["loss"].to_numpy()).std(ddof=1)
    assert lumped > 3 * noise.sd_log
    assert "over 4 seeded runs in 2 set(s) of replicates (2 degrees of freedom)" in noise.line()


def test_a_set_of_one_adds_nothing(two_d_runs) -> None:
    one_long = two_d_runs[~((two_d_runs["design"] == "long") & (two_d_runs["seed"] == 1))]
    noise = seed_noise(one_long)
    assert list(noise.groups["runs"]) == [2] and noise.dof == 1
    short = np.log(two_d_runs.loc[two_d_runs["design"] == "short", "loss"].to_numpy())
    assert noise.sd_log == pytest.approx(short.std(ddof=1))
