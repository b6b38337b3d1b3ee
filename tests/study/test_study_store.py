"""The run store's claims: exclusive, released on exit, reclaimed when stale or when their process died."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

from scalinglab.host import pid_space
from scalinglab.study.store import RunStore
from scalinglab.train.rundir import StatusWriter


def test_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    store = RunStore(tmp_path, stale_seconds=60)
    run = tmp_path / "r-abc"
    run.mkdir()
    assert store.state(run).state == "pending"
    claim = store.claim(run)
    assert claim is not None
    with claim:
        assert store.claim(run) is None  # a live claim: nobody else may train the run
        s = store.state(run)
        assert s.state == "running" and s.holder.endswith(f":{__import__('os').getpid()}")
    assert store.state(run).state == "stale"  # released before the run finished: resumable
    again = store.claim(run)
    assert again is not None and again.path.name == "claim.1"
    with again:
        StatusWriter(run).set("done")
    assert store.state(run).state == "done"


def test_stale_heartbeat_is_reclaimed(tmp_path: Path) -> None:
    store = RunStore(tmp_path, stale_seconds=0.3)
    run = tmp_path / "r-abc"
    run.mkdir()
    first = store.claim(run)  # held by this (live) process, but its heartbeat is never refreshed
    assert first is not None and store.claim(run) is None
    time.sleep(0.4)
    assert store.state(run).state == "stale"
    second = store.claim(run)
    assert second is not None and second.path.name == "claim.1"


def test_claim_of_a_killed_process_is_reclaimed_at_once(tmp_path: Path) -> None:
    run = tmp_path / "r-abc"
    run.mkdir()
    code = (
        "import os, sys; from scalinglab.study.store import RunStore; "
        f"c = RunStore({str(tmp_path)!r}, 3600).claim(__import__('pathlib').Path({str(run)!r})); "
        "c.__enter__(); os._exit(0)"  # dies holding the claim, as after kill -9
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    store = RunStore(tmp_path, stale_seconds=3600)
    assert (run / "claim.0").exists() and store.state(run).state == "stale"
    assert store.claim(run) is not None


def test_a_dead_pid_of_another_machine_with_this_host_name_is_not_judged_here(tmp_path: Path) -> None:
    """Sandboxes on a shared filesystem often share a host name (``vm``) but not their pids: a claim from
    another pid namespace stays live until its heartbeat ages, even when its pid does not exist here."""
    run = tmp_path / "r-abc"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {"host": socket.gethostname(), "pid": int(dead.stdout), "time": time.time()}
    store = RunStore(tmp_path, stale_seconds=3600)
    (run / "claim.0").write_text(json.dumps({**holder, "pid_space": "another-boot:4026531836"}))
    assert store.state(run).state == "running" and store.claim(run) is None
    (run / "claim.0").write_text(json.dumps({**holder, "pid_space": pid_space()}))
    assert store.state(run).state == "stale"  # the same pid namespace: its process is known to be gone
    assert store.claim(run) is not None


def _race(root: str, run: str, start, results, finish) -> None:
    start.wait()
    results.put(RunStore(root, 3600).claim(Path(run)) is not None)
    finish.wait()  # the winner stays alive (its claim live) until every process has tried


def test_racing_processes_claim_once(tmp_path: Path) -> None:
    run = tmp_path / "r-abc"
    run.mkdir()
    ctx = multiprocessing.get_context("spawn")
    start, results, finish = ctx.Event(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), str(run), start, results, finish)) for _ in range(4)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    wins = [results.get(timeout=60) for _ in procs]
    finish.set()
    for p in procs:
        p.join()
    assert sum(wins) == 1
    assert sorted(p.name for p in run.glob("claim.*")) == ["claim.0"]
