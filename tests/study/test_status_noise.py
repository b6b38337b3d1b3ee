"""One real tiny seeds study (one size under two seeds at two D), trained once for two questions: seed noise pools
only runs that differ in nothing but their seed (study.noise), and ``study status`` reads a finished run's
metrics.jsonl through once, not on every call (study.store)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests.support import tiny_base, write_study

from scalinglab.study import load_study, run_study, study_status
from scalinglab.study.collect import collect
from scalinglab.study.noise import seed_noise
from scalinglab.study.store import METRICS_CHECKED

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
def two_d(tmp_path_factory: pytest.TempPathFactory, token_cache: str):
    base = tiny_base(points=1, d_model=16, n_layer=1, checkpoint_steps=0, cache_dir=token_cache)
    study = load_study(write_study(tmp_path_factory.mktemp("noise"), "two_d", TWO_D, base=base))
    status = run_study(study, "local", workers=1, progress=False)  # one worker: the start-up, not the runs, costs here
    assert (status["state"] == "done").all(), status
    return study, collect(study.directory)[0]


def test_seeds_at_two_d_are_two_sets_of_replicates(two_d) -> None:
    _, runs = two_d
    noise = seed_noise(runs)
    assert len(noise.groups) == 2 and list(noise.groups["runs"]) == [2, 2] and noise.dof == 2
    assert noise.groups["D"].nunique() == 2  # the same size and group label, two D
    within = [np.log(g["loss"].to_numpy()).std(ddof=1) for _, g in runs.groupby("D")]
    assert noise.sd_log == pytest.approx(np.sqrt(np.mean(np.square(within))))
    # the D difference is no noise: pooling the four runs of the one size would have counted it
    lumped = np.log(runs["loss"].to_numpy()).std(ddof=1)
    assert lumped > 3 * noise.sd_log
    assert "over 4 seeded runs in 2 set(s) of replicates (2 degrees of freedom)" in noise.line()


def test_a_set_of_one_adds_nothing(two_d) -> None:
    _, runs = two_d
    noise = seed_noise(runs[~((runs["design"] == "long") & (runs["seed"] == 1))])
    assert list(noise.groups["runs"]) == [2] and noise.dof == 1
    short = np.log(runs.loc[runs["design"] == "short", "loss"].to_numpy())
    assert noise.sd_log == pytest.approx(short.std(ddof=1))


def test_status_does_not_read_a_checked_metrics_file_again(two_d) -> None:
    study, runs = two_d  # the runs table is collected: damaging a file now changes no other test
    run_dir = study.directory / runs["run_dir"].iloc[0]
    metrics = run_dir / "metrics.jsonl"
    assert (run_dir / METRICS_CHECKED).is_file()  # run_study's closing status read it through
    st = metrics.stat()
    metrics.write_bytes((b"{\n" * st.st_size)[: st.st_size])  # same size and time; read, it is damaged at line 1
    os.utime(metrics, ns=(st.st_atime_ns, st.st_mtime_ns))
    by_dir = study_status(study).set_index("run_dir")["state"]
    assert by_dir[str(run_dir)] == "done" and (by_dir == "done").all()  # so it was not read
    os.utime(metrics, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a changed file is read through again
    row = study_status(study).set_index("run_dir").loc[str(run_dir)]
    assert row["state"] == "damaged" and "metrics.jsonl:1" in row["reason"]
