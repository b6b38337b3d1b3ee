"""Faults around a real training: two writers, kill -9, signals, a garbled checkpoint, another config."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
from tests.faults.conftest import cli, tiny, train_args
from tests.support import training_records

from scalinglab.errors import LockedError
from scalinglab.study.store import RunStore
from scalinglab.train.run import train
from scalinglab.train.rundir import RunLock, lock_holder, read_metrics, read_status


def _same_run(a: Path, b: Path) -> None:
    """Bitwise the same training: every logged record (but timings) and the final and best losses."""
    assert training_records(a) == training_records(b)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert (sa["final"], sa["best"], sa["steps"]) == (sb["final"], sb["best"], sb["steps"])


def _wait_for_steps(run_dir: Path, proc, n: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "metrics.jsonl").exists() or len(read_metrics(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


def test_a_run_directory_has_one_writer(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        assert lock_holder(run) == f"pid {os.getpid()} on {os.uname().nodename}"
        with pytest.raises(LockedError, match=rf"{run} is being trained by pid {os.getpid()}.*wait for it"):
            RunLock(run).acquire()
        store = RunStore(tmp_path)
        assert store.state(run).state == "running"  # the study store agrees with the lock
        assert store.claim(run) is None
    assert lock_holder(run) == "" and RunStore(tmp_path).claim(run) is not None


def test_a_second_train_is_refused_and_kill_9_frees_the_lock(cache, tmp_path) -> None:
    run = tmp_path / "run"
    first = cli(*train_args(cache, run, "budget.steps=100000", "runtime.log_every=1"))
    try:
        _wait_for_steps(run, first, 2)
        second = cli(*train_args(cache, run, "budget.steps=100000", "runtime.log_every=1"))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and len(err.strip().splitlines()) == 1, err
        assert f"is being trained by pid {first.pid}" in err
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert lock_holder(run) == ""  # released by the kernel: nothing stale to clean up
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == list(range(1, len(steps) + 1))  # one writer: no record lost or interleaved


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_is_bitwise_identical(cache, tmp_path) -> None:
    overrides = ("budget.steps=120", "runtime.checkpoint_steps=10", "runtime.log_every=1")
    train(tiny(cache, *overrides), tmp_path / "ref")
    rng = random.Random(13)
    run = tmp_path / "killed"
    done_before = 0
    for _ in range(2):  # the benchmark (benchmarks/kill_resume.py) kills it 20 times
        proc = cli(*train_args(cache, run, *overrides))
        _wait_for_steps(run, proc, done_before + rng.randint(1, 25))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert read_status(run)["state"] == "running"  # as a kill leaves it: resumable
        done_before = len(read_metrics(run))
    proc = cli(*train_args(cache, run, *overrides))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _same_run(run, tmp_path / "ref")


def test_a_garbled_checkpoint_is_skipped_and_the_run_still_matches(cache, tmp_path) -> None:
    cfg = tiny(cache, "budget.steps=30", "runtime.checkpoint_steps=10", "runtime.keep_last=3")
    train(cfg, tmp_path / "ref")
    run = tmp_path / "garbled"
    shutil.copytree(tmp_path / "ref", run)
    for name in ("summary.json", "status.json"):  # as if killed after the last checkpoint
        (run / name).unlink()
    state = run / "checkpoints" / "step_30" / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"skipping checkpoint .*step_30 is damaged: state.pt does not match"):
        train(cfg, run)
    _same_run(run, tmp_path / "ref")


def test_sigint_leaves_the_run_pending(cache, tmp_path) -> None:
    run = tmp_path / "run"
    proc = cli(*train_args(cache, run, "budget.steps=100000", "runtime.log_every=1"))
    _wait_for_steps(run, proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "stopped by SIGINT" in err and len(err.strip().splitlines()) == 1, err
    status = read_status(run)
    assert status["state"] == "pending" and "run again to resume" in status["reason"]


def test_a_directory_of_another_run_is_refused_even_when_finished(cache, tmp_path) -> None:
    run = tmp_path / "run"
    train(tiny(cache, "budget.steps=4"), run)
    assert read_status(run)["state"] == "done"
    proc = cli(*train_args(cache, run, "budget.steps=4", "seed=7"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "holds a different run" in err and len(err.strip().splitlines()) == 1, err
    assert out == ""  # the finished run's results are not printed as this config's
