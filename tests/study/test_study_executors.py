"""A real six-run study on the built-in corpus, trained on each executor: same runs, same losses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.study.conftest import SIX, write_study

from scalinglab.cli import main
from scalinglab.study import ExecutorConfig, collect, load_study, run_study
from scalinglab.study.collect import RUN_COLUMNS, STEP_COLUMNS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_study(tmp_path_factory: pytest.TempPathFactory):
    path = write_study(tmp_path_factory.mktemp("local"), "six", SIX)
    study = load_study(path)
    status = run_study(study, "local", workers=2, progress=False)
    return study, status, path


def final_losses(study_dir: Path) -> pd.Series:
    runs, _ = collect(study_dir)
    return runs.set_index("name")["loss"].sort_index()


def test_local_executor_trains_each_run_once(local_study) -> None:
    study, status, _ = local_study
    assert len(status) == 6 and (status["state"] == "done").all(), status
    for run_dir in map(Path, status["run_dir"]):
        assert sorted(p.name for p in run_dir.glob("claim.*")) == ["claim.0"]  # claimed and trained once
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, 31))
    # a second study run is a no-op: nothing is claimed again
    again = run_study(study, "local", workers=2, progress=False)
    assert (again["state"] == "done").all()
    assert all(not (Path(d) / "claim.1").exists() for d in status["run_dir"])


def test_collect_tables(local_study, tmp_path: Path, capsys) -> None:
    study, _, path = local_study
    runs, steps = collect(study.directory)
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert {"loss_valid", "bpb_valid", "wall_time", "designs", "groups"} <= set(runs.columns)
    assert (runs["status"] == "done").all() and runs["loss"].notna().all()
    assert (runs["D"] == 30 * 8 * 32).all()  # steps x batch x n_ctx tokens
    assert runs["C"].tolist() == pytest.approx((6 * runs["N"] * runs["D"]).tolist())
    assert (runs["best_loss"] <= runs["loss"]).all()
    assert runs.set_index("name").loc["ladder-L2-d32", "designs"] == "ladder;seeds"
    assert list(steps.columns[: len(STEP_COLUMNS)]) == STEP_COLUMNS
    assert len(steps) == 2 * 6  # eval.points = 2 evaluations per run
    last = steps.sort_values("step").groupby("run_id").last()["loss"]
    assert last.sort_index().tolist() == runs.set_index("run_id")["loss"].sort_index().tolist()

    assert main(["collect", str(study.directory), "--out", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["runs"] == 6 and out["status"] == {"done": 6}
    seeds = runs[runs["designs"].str.contains("seeds")]["loss"]  # the seeds study reports its noise floor
    assert len(seeds) == 3 and out["noise_sd_log"] == pytest.approx(float(np.log(seeds).std(ddof=1)))
    assert 0 < out["noise_sd_log"] < 0.1
    assert "run-to-run noise: sd of log loss" in captured.err and "over 3 seeded runs in 1 set(s) of replicates" in captured.err
    assert "L(N): 2 of 6 runs on the recipe" in captured.err  # the lr_scan runs are left out
    for name in ("runs.parquet", "runs.csv", "steps.parquet", "steps.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert pd.read_parquet(tmp_path / "runs.parquet")["loss"].tolist() == runs["loss"].tolist()

    assert main(["study", "status", str(path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"done": 6} and len(status["runs"]) == 6


@pytest.mark.parametrize(
    "executor",
    [
        pytest.param(ExecutorConfig(kind="ray", workers=2), id="ray"),
        pytest.param(ExecutorConfig(kind="slurm", workers=2, slurm_cluster="local"), id="submitit-local"),
    ],
)
def test_other_executors_give_identical_losses(executor: ExecutorConfig, local_study, tmp_path: Path) -> None:
    pytest.importorskip("ray" if executor.kind == "ray" else "submitit")
    study = load_study(write_study(tmp_path, "six", SIX))
    status = run_study(study, executor, progress=False)
    assert (status["state"] == "done").all(), status
    ours, reference = final_losses(study.directory), final_losses(local_study[0].directory)
    assert ours.index.tolist() == reference.index.tolist()
    assert ours.tolist() == reference.tolist()  # bit for bit: one thread per run on every executor
