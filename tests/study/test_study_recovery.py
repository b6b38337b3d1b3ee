"""Crashes and contention on real runs: kill -9 of the driver, two drivers at once, a diverging run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.study.conftest import write_study

from scalinglab.cli import main
from scalinglab.study import load_study, run_study, study_status
from scalinglab.study.store import RunStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def driver(path: Path, *args: str) -> subprocess.Popen:
    """``scalinglab study run`` in its own process, as a user starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "scalinglab", "study", "run", str(path), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def metrics_steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.parent.name.split("_")[1]) for p in run_dir.glob("checkpoints/step_*/COMPLETE"))


def claims(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("claim.*"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


KILL = """
[[design]]
kind = "ladder"
shapes = [[2, 32]]
budget = {steps = 20}

[[design]]
kind = "seeds"
shapes = [[2, 32]]
seeds = [1]
budget = {steps = 1000}
"""
"""The seeds run is long enough that it cannot finish between the short run's end, the kill and the
worker's watchdog (0.5 s): at 250 steps it sometimes did on a fast host."""


def test_kill_9_driver_then_rerun_resumes_and_retrains_nothing(tmp_path: Path) -> None:
    path = write_study(tmp_path, "kill", KILL)
    study = load_study(path)
    dirs = {row.name: Path(row.run_dir) for row in study_status(study).itertuples()}
    short, long = dirs["ladder-L2-d32"], dirs["seeds-L2-d32-s1"]

    proc = driver(path, "--workers", "2")
    deadline = time.time() + 240
    while not ((short / "summary.json").exists() and len(checkpoints(long)) >= 2):
        assert proc.poll() is None and time.time() < deadline, "the study ended before it could be interrupted"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the pool's workers notice their driver is gone and exit, giving up their claims
    worker = json.loads((long / "claim.0").read_text())["pid"]
    deadline = time.time() + 30
    while pid_alive(worker):
        assert time.time() < deadline, "a worker outlived its killed driver"
        time.sleep(0.1)
    assert RunStore(study.directory, study.stale_seconds).state(long).state == "stale"

    done_summary = (short / "summary.json").stat().st_mtime_ns
    resumed_from = checkpoints(long)[-1]
    assert 0 < resumed_from < 1000
    before = [line for line in (long / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] <= resumed_from]

    status = run_study(study, "local", workers=2, progress=False)
    assert (status["state"] == "done").all(), status
    # the finished run was not trained again
    assert (short / "summary.json").stat().st_mtime_ns == done_summary
    assert claims(short) == ["claim.0"]
    # the interrupted run was reclaimed and resumed from its checkpoint: its logged steps up to the
    # checkpoint are the very lines written before the kill (a restart would rewrite them, with new times)
    assert claims(long) == ["claim.0", "claim.1"]
    after = (long / "metrics.jsonl").read_text().splitlines()
    assert after[: len(before)] == before
    assert metrics_steps(long) == list(range(1, 1001))


TWO = """
[[design]]
kind = "ladder"
shapes = [[2, 32], [2, 48]]

[[design]]
kind = "seeds"
shapes = [[2, 32]]
seeds = [1, 2]
"""


def test_two_drivers_train_each_run_exactly_once(tmp_path: Path) -> None:
    path = write_study(tmp_path, "two", TWO)
    procs = [driver(path, "--workers", "1"), driver(path, "--workers", "1")]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = [{line.split()[1] for line in err.splitlines() if line.startswith("done ")} for _, err in outputs]
    names = {row.name for row in study_status(load_study(path)).itertuples()}
    assert len(names) == 4
    assert trained[0] | trained[1] == names and not trained[0] & trained[1]
    for run_dir in load_study(path).directory.iterdir():
        assert claims(run_dir) == ["claim.0"]
        assert metrics_steps(run_dir) == list(range(1, 31))


DIVERGE = """
[[design]]
kind = "ladder"
shapes = [[2, 32], [2, 48]]

[[design]]
kind = "lr_scan"
shapes = [[2, 32]]
lrs = [1e30]
"""


def test_diverging_run_fails_alone_and_is_retried_only_on_request(tmp_path: Path, capsys) -> None:
    path = write_study(tmp_path, "diverge", DIVERGE)
    assert main(["study", "run", str(path), "--workers", "2", "--no-progress", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"done": 2, "failed": 1}
    failed = next(r for r in out["runs"] if r["state"] == "failed")
    assert failed["name"] == "lr_scan-L2-d32-lr1e30" and "diverged" in failed["reason"]
    run_dir = Path(failed["run_dir"])
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"

    study = load_study(path)
    run_study(study, "local", workers=2, progress=False)  # failed runs stay failed
    assert claims(run_dir) == ["claim.0"]
    status = run_study(study, "local", workers=2, progress=False, retry_failed=True)
    assert claims(run_dir) == ["claim.0", "claim.1"]  # tried again, and it diverges again
    assert status.set_index("name").loc["lr_scan-L2-d32-lr1e30", "state"] == "failed"
    assert (status["state"] == "done").sum() == 2
