"""A small study on real clusters started here: SLURM (slurmctld + slurmd) and a two-node Ray.

Each ends with the final losses of the local executor, bit for bit; a SLURM task stopped the way a
time limit stops it (SIGTERM, SIGKILL after KillWait) resumes from its checkpoint when the driver
resubmits it, and a Ray node killed mid-run (kill -9 of its raylet and workers) loses nothing: the
run resumes on the other node. Every run trains once: one attempt from step 0, and a second attempt,
when there is one, starts from a checkpoint (the run's attempts.jsonl, written by the worker).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from tests.cluster.conftest import RAY_ADDRESS, SCRIPT, Cluster, wait_until, write_study

from scalinglab.cli import main
from scalinglab.study import ExecutorConfig, collect, load_study, run_study, study_status
from scalinglab.study.worker import read_attempts
from scalinglab.train.checkpoint import latest_checkpoint

pytestmark = pytest.mark.slow

LAST_KILL_STEP = 60
"""A run is stopped only before this step (of 100), so its resumed attempt still has steps to train."""
WALL: dict[str, float] = {}
"""Wall time of the study on each executor, printed at the end (the issue's acceptance numbers)."""


def final_losses(study_dir: Path) -> pd.Series:
    runs, _ = collect(study_dir)
    return runs.set_index("name")["loss"].sort_index()


def timed_study(path: Path, executor: ExecutorConfig, label: str) -> pd.DataFrame:
    study = load_study(path)
    start = time.monotonic()
    status = run_study(study, executor, progress=False, poll_seconds=0.2)
    WALL[label] = time.monotonic() - start
    return status


def report(line: str) -> None:
    """A measurement for the record: on the terminal with ``pytest -s``, even in a test that captures output."""
    print(line, file=sys.__stdout__, flush=True)


def trained_twice(status: pd.DataFrame) -> list[str]:
    """Runs trained more than once: two attempts from step 0, or an attempt that did not resume."""
    twice = []
    for row in status.itertuples():
        starts = [a["from_step"] for a in read_attempts(row.run_dir)]
        if not starts or starts.count(0) != 1 or starts[0] != 0 or any(s <= 0 for s in starts[1:]):
            twice.append(f"{row.name}: attempts from steps {starts}")
    return twice


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.Series:
    """The study on the local executor: the losses every cluster must reproduce."""
    path = write_study(tmp_path_factory.mktemp("local"))
    status = timed_study(path, ExecutorConfig(kind="local", workers=2), "local (2 workers)")
    report(f"\nwall time of the 2-run study, local (2 workers): {WALL['local (2 workers)']:.1f} s")
    assert (status["state"] == "done").all(), status
    return final_losses(load_study(path).directory)


def test_slurm_study_survives_a_task_stopped_like_a_time_limit(slurm_cluster: Cluster, reference: pd.Series,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys) -> None:  # fmt: skip
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.slurm_conf)
    path = write_study(tmp_path)
    study = load_study(path)
    victim: dict[str, str] = {}

    def cancel_one_after_its_first_checkpoint() -> None:
        def running_past_a_checkpoint() -> bool:
            for job_file in study.directory.glob("*/job.json"):
                run_dir = job_file.parent
                found = latest_checkpoint(run_dir)
                if found and found[0] < LAST_KILL_STEP and read_attempts(run_dir):
                    victim.update(json.loads(job_file.read_text()), run_dir=str(run_dir), step=str(found[0]))
                    return True
            return False

        wait_until(running_past_a_checkpoint, 180, "a slurm task past its first checkpoint", every=0.02)
        # what a time limit does: SIGCONT + SIGTERM to the task, SIGKILL KillWait seconds later
        subprocess.run(["scancel", victim["job"]], check=True, env=slurm_cluster.env | {"SLURM_CONF": slurm_cluster.slurm_conf})

    killer = threading.Thread(target=cancel_one_after_its_first_checkpoint, daemon=True)
    killer.start()
    executor = ExecutorConfig(kind="slurm", slurm_cluster="slurm", workers=2, slurm_partition="main", slurm_time_min=5,
                              slurm_log_dir=str(tmp_path / "logs"))  # fmt: skip
    label = "slurm (real, 2 CPUs, one task cancelled mid-run)"
    status = timed_study(path, executor, label)
    killer.join(timeout=5)
    assert victim, "no task was stopped"
    assert (status["state"] == "done").all(), status
    attempts = read_attempts(victim["run_dir"])
    report(f"\nslurm time-limit test: task {victim['job']} stopped after step {victim['step']}; attempts from steps "
           f"{[a['from_step'] for a in attempts]}; wall time {WALL[label]:.1f} s")  # fmt: skip
    assert len(attempts) == 2 and attempts[1]["from_step"] >= int(victim["step"]) > 0  # resumed, not restarted
    assert attempts[1]["job"] != victim["job"]  # a resubmission: a new array task
    assert trained_twice(status) == []
    assert final_losses(study.directory).tolist() == reference.tolist()  # bit for bit
    logs = {p.name for p in (tmp_path / "logs").glob("*_log.out")}  # in --slurm-log-dir: every attempt's task
    assert {f"{a['job']}_0_log.out" for d in status["run_dir"] for a in read_attempts(d)} <= logs

    def status_json() -> list[dict]:
        capsys.readouterr()
        assert main(["study", "status", str(path), "--json"]) == 0
        return json.loads(capsys.readouterr().out)["runs"]

    # the scheduler's job ids and states: a task may still be exiting (RUNNING) after it reported
    wait_until(lambda: {r["job_state"] for r in status_json()} == {"COMPLETED"}, 60, "squeue to show COMPLETED", 0.5)
    runs = status_json()
    assert {r["executor"] for r in runs} == {"slurm"}
    assert sorted(r["attempts"] for r in runs) == [1, 2]
    assert {r["job"] for r in runs if r["run_dir"] == victim["run_dir"]} == {attempts[1]["job"]}  # the latest


def test_ray_study_survives_losing_a_node(ray_cluster: Cluster, reference: pd.Series, tmp_path: Path) -> None:
    # the driver is `scalinglab study run` in its own process, as a user runs it: Ray reads its
    # authentication mode once per process, and this one has imported Ray already
    path = write_study(tmp_path)
    study = load_study(path)
    node2_dir = f"{ray_cluster.env['SCALINGLAB_CLUSTER_DIR']}/ray/node2/"
    lost: dict[str, str] = {}

    def on_node2(pid: int) -> bool:  # a Ray worker's parent is its node's raylet, whose arguments name its temp dir
        try:
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            return node2_dir.encode() in Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, IndexError):
            return False

    def kill_node2_mid_run() -> None:
        def node2_run_past_a_checkpoint() -> bool:
            for attempts_file in study.directory.glob("*/attempts.jsonl"):
                run_dir = attempts_file.parent
                found = latest_checkpoint(run_dir)
                attempts = read_attempts(run_dir)
                if found and found[0] < LAST_KILL_STEP and len(attempts) == 1 and on_node2(attempts[0]["pid"]):
                    lost.update(run_dir=str(run_dir), step=str(found[0]))
                    return True
            return False

        wait_until(node2_run_past_a_checkpoint, 180, "a run on the second Ray node past its first checkpoint", every=0.02)
        subprocess.run(["bash", str(SCRIPT), "ray", "lose-node"], env=ray_cluster.env, check=True, timeout=30)

    killer = threading.Thread(target=kill_node2_mid_run, daemon=True)
    killer.start()
    command = [str(Path(sys.executable).with_name("scalinglab")), "study", "run", str(path), "--executor", "ray",
               "--ray-address", RAY_ADDRESS, "--workers", "2", "--no-progress", "--json"]  # fmt: skip
    start = time.monotonic()
    driver = subprocess.run(command, env=ray_cluster.env | {"RAY_AUTH_MODE": "token", "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=400)  # fmt: skip
    WALL["ray (two nodes, one lost mid-run)"] = time.monotonic() - start
    killer.join(timeout=5)
    assert driver.returncode == 0, driver.stderr[-3000:]
    assert lost, "no node was lost"
    status = study_status(study)
    assert (status["state"] == "done").all(), status
    attempts = read_attempts(lost["run_dir"])
    report(f"\nray node-loss test: node 2 killed after step {lost['step']} of a run; attempts from steps "
           f"{[a['from_step'] for a in attempts]}, nodes {[a['node'][:8] for a in attempts]}")  # fmt: skip
    assert len(attempts) == 2 and attempts[1]["from_step"] >= int(lost["step"]) > 0  # resumed, not restarted
    assert attempts[1]["node"] != attempts[0]["node"] and not on_node2(attempts[1]["pid"])  # on the surviving node
    assert trained_twice(status) == []
    assert final_losses(study.directory).tolist() == reference.tolist()
    report(f"wall times (s): {json.dumps({k: round(v, 1) for k, v in WALL.items()})}")
