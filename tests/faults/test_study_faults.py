"""Faults in a study: one damaged run among healthy ones, SIGTERM to a worker and to the driver."""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from pathlib import Path

import pytest
from tests import support
from tests.support import cli, tiny_base

from scalinglab.study import load_study, run_study, study_status
from scalinglab.study.collect import collect, refresh_tables, write_tables
from scalinglab.study.store import RunStore
from scalinglab.train.rundir import read_metrics, read_status


def write_study(tmp_path: Path, cache: str, name: str, steps: int, shapes: str) -> Path:
    """A ladder of one-layer tiny runs (a checkpoint every 5 steps) on the session's token cache."""
    base = tiny_base(n_layer=1, steps=steps, checkpoint_steps=5, cache_dir=cache)
    return support.write_study(tmp_path, name, f'[[design]]\nkind = "ladder"\nshapes = {shapes}\n', base=base)


@pytest.mark.slow
def test_one_damaged_file_costs_only_its_run(cache, tmp_path) -> None:
    path = write_study(tmp_path, cache, "four", 6, "[[1, 32], [1, 48], [2, 32], [2, 48]]")
    study = load_study(path)
    table = run_study(study, workers=2, progress=False)
    assert (table["state"] == "done").all()
    a, b, c, d = (Path(p) for p in table["run_dir"])
    (a / "status.json").write_text('{"state": "do')  # a kill mid-write on a file system without atomic rename
    (b / "summary.json").write_bytes(b"\x00" * 64)
    lines = (c / "metrics.jsonl").read_text().splitlines()
    (c / "metrics.jsonl").write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n")
    (d / "labels.json").write_text("[1, 2")

    status = study_status(study).set_index("run_dir")
    for damaged, file in ((a, "status.json"), (b, "summary.json"), (c, "metrics.jsonl:2"), (d, "labels.json")):
        assert status.loc[str(damaged), "state"] == "damaged" and file in status.loc[str(damaged), "reason"]

    again = cli("study", "run", str(path), "--no-progress")  # labels are rewritten; nothing trains again
    _, err = again.communicate(timeout=300)
    assert again.returncode == 1 and "3 run(s) unfinished (3 damaged)" in err, err
    assert json.loads((d / "labels.json").read_text())["design"] == "ladder"
    status = study_status(study).set_index("run_dir")
    assert status.loc[str(d), "state"] == "done" and (status["state"] == "damaged").sum() == 3  # every run listed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, steps = collect(study.directory)
    assert len(runs) == 4  # never dropped: damaged runs are rows that say so
    by_id = runs.set_index("run_id")

    def row(run_dir: Path):
        return by_id.loc[run_dir.name.rsplit("-", 1)[-1]]

    for damaged, file in ((a, "status.json"), (b, "summary.json"), (c, "metrics.jsonl:2")):
        assert row(damaged)["status"] == "damaged" and file in row(damaged)["damage"]
    assert row(d)["status"] == "done" and row(d)["loss"] > 0
    assert sum("is damaged" in str(w.message) for w in caught) == 3
    assert set(steps["run_id"]) == {d.name.rsplit("-", 1)[-1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_tables(study.directory)
        assert refresh_tables(study.directory) is None  # damaged runs are listed: the tables are not stale forever


@pytest.mark.slow
def test_sigterm_to_a_worker_or_the_driver_leaves_the_run_resumable(cache, tmp_path) -> None:
    path = write_study(tmp_path, cache, "long", 100_000, "[[1, 32]]")
    run_dir = Path(study_status(load_study(path))["run_dir"][0])

    def started(proc, after: int = 0) -> dict:
        """The worker's status once it runs and has logged a step past ``after`` (metrics.jsonl shows every step;
        status.json's step moves only with the 10 s heartbeat)."""
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the run never started"
            try:
                status = read_status(run_dir)
            except Exception:  # being replaced right now
                status = {}
            if status.get("state") == "running" and (run_dir / "metrics.jsonl").exists():
                logged = read_metrics(run_dir)
                if logged and logged[-1]["step"] > after:
                    return status
            time.sleep(0.05)

    driver = cli("study", "run", str(path), "--no-progress", "--workers", "1")
    status = started(driver)
    os.kill(status["pid"], signal.SIGTERM)  # the worker alone, as a SLURM time limit would
    _, err = driver.communicate(timeout=240)
    assert driver.returncode == 1 and "1 run(s) unfinished" in err, err
    stopped = read_status(run_dir)
    assert stopped["state"] == "pending" and "stopped by SIGTERM" in stopped["reason"]
    assert RunStore(run_dir.parent).state(run_dir).state == "stale"  # not failed: the next study run resumes it

    driver = cli("study", "run", str(path), "--no-progress", "--workers", "1")
    started(driver, after=stopped["step"])  # resumed past the step it stopped at
    os.kill(driver.pid, signal.SIGTERM)  # the driver, as a scheduler stops a job
    _, err = driver.communicate(timeout=240)
    assert driver.returncode == 130 and "interrupted" in err, err
    deadline = time.monotonic() + 30
    while RunStore(run_dir.parent).state(run_dir).state == "running" and time.monotonic() < deadline:
        time.sleep(0.2)  # its worker is gone once the claim's holder is dead
    assert RunStore(run_dir.parent).state(run_dir).state == "stale"
