"""Run-directory files and atomic checkpoints, on real temporary directories."""

from __future__ import annotations

import os
import time

import pytest
import torch

from scalinglab.config import apply_overrides
from scalinglab.errors import DataError
from scalinglab.train import checkpoint, rundir
from scalinglab.train.config import BudgetConfig, RunConfig
from scalinglab.train.rundir import MetricsWriter, StatusWriter, read_metrics, read_status, run_dir_for


def test_run_dir_depends_on_identity_not_runtime(tmp_path) -> None:
    a = RunConfig(name="a", budget=BudgetConfig(tokens=2_000_000))
    b = apply_overrides(a, [f"runtime.out_dir={tmp_path}", "runtime.threads=1"])
    assert run_dir_for(a).name == run_dir_for(b).name == f"a-{a.identity()}"
    assert run_dir_for(b).parent == tmp_path
    assert run_dir_for(apply_overrides(a, ["budget.tokens=2e6"])) == run_dir_for(a)  # int or float alike
    assert run_dir_for(apply_overrides(a, ["seed=1"])).name != run_dir_for(a).name


def test_metrics_reader_skips_a_truncated_last_line(tmp_path) -> None:
    w = MetricsWriter(tmp_path)
    for step in (1, 2, 3):
        w.write({"step": step, "train_loss": 1.0 / step})
    w.close()
    with open(tmp_path / rundir.METRICS, "a") as f:
        f.write('{"step": 4, "train_lo')  # a kill mid-write
    with pytest.warns(UserWarning, match="truncated"):
        records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 2, 3]
    with pytest.warns(UserWarning):
        rundir.truncate_metrics(tmp_path, 2)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]  # and the broken line is gone


def test_resume_streams_metrics_in_memory_independent_of_their_length(tmp_path) -> None:
    """Truncating a long run's metrics.jsonl on resume holds one record at a time, not the file."""
    import tracemalloc

    w = MetricsWriter(tmp_path)
    for step in range(1, 1501):  # ~2 MB: evaluation records carry per-position losses (Kaplan Fig 20)
        w.write({"step": step, "train_loss": 1.0 / step, "pos_loss_valid": [3.0 + i / step for i in range(64)]})
    w.close()
    size = (tmp_path / rundir.METRICS).stat().st_size
    tracemalloc.start()
    try:
        rundir.truncate_metrics(tmp_path, 1500)  # nothing to drop: the file stays as it is
        rundir.truncate_metrics(tmp_path, 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"
    steps = [r["step"] for r in rundir.iter_metrics(tmp_path)]
    assert steps == list(range(1, 1001))


def test_metrics_reader_refuses_corruption_before_the_end(tmp_path) -> None:
    (tmp_path / rundir.METRICS).write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2 is not JSON"):
        read_metrics(tmp_path)


def test_status_heartbeat_and_states(tmp_path, monkeypatch) -> None:
    assert read_status(tmp_path) == {"state": "pending"}
    monkeypatch.setattr(rundir, "HEARTBEAT_SECONDS", 0.05)
    status = StatusWriter(tmp_path)
    status.set("running")
    first = read_status(tmp_path)["heartbeat"]
    status.step = 7
    time.sleep(0.3)
    s = read_status(tmp_path)
    assert s["state"] == "running" and s["heartbeat"] > first and s["step"] == 7 and s["pid"] == os.getpid()
    status.set("failed", "diverged at step 7")
    time.sleep(0.15)
    s = read_status(tmp_path)
    assert s["state"] == "failed" and s["reason"] == "diverged at step 7"  # the heartbeat stopped for good


def test_checkpoints_are_atomic_and_pruned(tmp_path) -> None:
    for step in (10, 20, 30):
        checkpoint.save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, keep_last=2)
    assert [s for s, _ in checkpoint.complete_checkpoints(tmp_path)] == [20, 30]
    # a checkpoint without its marker (killed mid-write) is never resumed from
    (tmp_path / "checkpoints" / "step_40").mkdir()
    step, path = checkpoint.latest_checkpoint(tmp_path)
    assert step == 30 and checkpoint.load_checkpoint(path)["w"].tolist() == [30.0, 30.0]
    (tmp_path / "checkpoints" / ".tmp-step_50").mkdir()  # a killed writer's temporary directory
    checkpoint.save_checkpoint(tmp_path, 50, {"w": torch.zeros(1)}, keep_last=2)
    assert not (tmp_path / "checkpoints" / ".tmp-step_50").exists()
    assert [s for s, _ in checkpoint.complete_checkpoints(tmp_path)] == [30, 50]
    assert checkpoint.latest_checkpoint(tmp_path / "nowhere") is None
