"""The run store: one directory per run under the study directory, and who may train each one.

A run lives in ``<study dir>/<name>-<identity>`` (the identity hashes its scientific fields only), so
the same config always finds the same directory and a finished run is never trained twice. Its state
comes from the trainer's ``status.json`` (done / failed) and from a *claim*: before training, a worker
creates ``claim.<g>`` with ``O_CREAT | O_EXCL``, which succeeds for exactly one process, and keeps
the file's modification time fresh while it trains (a heartbeat). A claim is dead when that heartbeat
is older than ``stale_seconds`` or when its process, in this pid namespace (host.pid_space: the
same kernel and namespace, not merely the same host name), no longer exists; the next worker
then creates ``claim.<g+1>`` (again exclusive, so two reclaimers cannot both win) and the trainer
resumes the run from its last checkpoint. A finished worker releases its claim by ageing the file.
``labels.json`` keeps the run's study labels (design, group, recipe) for ``collect``. A claim agrees
with the trainer's own lock (train/rundir.py): a run whose lock is held, by a study worker or a
plain ``scalinglab train``, is running and is not claimed. A run whose status.json is damaged is
``damaged``, naming the file; the rest of the study is unaffected.

A cooldown branch (design wsd_ladder) is ``waiting`` until its parent has a complete checkpoint at
the branch step: the driver starts a branch only then, so a branch waits for its parent rather than
holding a worker, while the parent trains on through its later branch points. ``labels.json`` names
the parent's identity and the step.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scalinglab.errors import DamagedFile
from scalinglab.host import pid_space
from scalinglab.paths import inside
from scalinglab.study.config import StudyRun
from scalinglab.train.checkpoint import branch_point, complete_checkpoints
from scalinglab.train.config import BranchConfig
from scalinglab.train.rundir import (
    METRICS,
    iter_metrics,
    lock_holder,
    read_json,
    read_status,
    read_summary,
    write_json,
)

LABELS = "labels.json"
METRICS_CHECKED = "metrics.checked.json"
"""The size and modification time of the metrics.jsonl that ``study status`` last read through whole, undamaged."""
_FIX = "restore that file, or delete the run directory to train the run again (study run rewrites labels.json)"
CLAIM = "claim."

State = Literal["pending", "waiting", "running", "stale", "done", "failed", "damaged"]


@dataclass(frozen=True)
class RunState:
    """Where a run stands: pending, waiting (a branch whose parent has not reached its step), running (a
    live claim or lock), stale (interrupted: resumable), done, failed, or damaged (a file of its own
    cannot be read; ``reason`` names it)."""

    state: State
    step: int = 0
    reason: str = ""
    holder: str = ""
    """host:pid of the live claim, when running."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _generations(run_dir: Path) -> list[int]:
    gens = []
    for p in run_dir.glob(f"{CLAIM}*"):
        suffix = p.name[len(CLAIM) :]
        if suffix.isdigit():
            gens.append(int(suffix))
    return sorted(gens)


class Claim:
    """The exclusive right of this process to train one run; the claim file's mtime is its heartbeat.

    Use as a context manager: a daemon thread refreshes the heartbeat every ``interval`` seconds and
    the claim is released (aged, so the next driver may take the run) on exit.
    """

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="scalinglab-claim", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        os.utime(self.path, (0, 0))  # an epoch-old heartbeat: stale for everyone at once

    def __enter__(self) -> Claim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunStore:
    """Run directories of one study, their states and their claims."""

    def __init__(self, root: str | Path, stale_seconds: float = 120.0) -> None:
        self.root = Path(root)
        self.stale_seconds = stale_seconds

    def run_dir(self, run: StudyRun) -> Path:
        """The run's directory: an existing one with the same identity (even if renamed), else a new name."""
        existing = sorted(p for p in self.root.glob(f"*{run.identity}") if p.name.endswith(f"-{run.identity}"))
        return existing[0] if existing else inside(self.root, f"{run.name}-{run.identity}", "run name")

    def prepare(self, run: StudyRun, study: str) -> Path:
        """Create the run's directory and its labels; return the directory."""
        path = self.run_dir(run)
        path.mkdir(parents=True, exist_ok=True)
        labels = run.labels(study)
        if run.config.branch.parent:  # what state() needs to tell a waiting branch, before config.json exists
            labels |= {"parent": run.config.branch.parent, "branch_step": run.config.branch.step}
        try:
            current = read_json(path / LABELS)
        except DamagedFile:  # the labels follow from the study file: write them again
            current = None
        if current != labels:
            write_json(path / LABELS, labels)
        return path

    def run_dirs(self) -> list[Path]:
        """Every run directory under the study directory (those with labels or a config)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if (p / LABELS).exists() or (p / "config.json").exists())

    def _live_holder(self, run_dir: Path) -> str:
        """``host:pid`` of the live claim on the run, or '' when there is none."""
        gens = _generations(run_dir)
        if not gens:
            return ""
        path = run_dir / f"{CLAIM}{gens[-1]}"
        try:
            age = time.time() - path.stat().st_mtime
            holder = json.loads(path.read_text() or "{}")
        except FileNotFoundError:
            return ""
        except json.JSONDecodeError:  # being written right now: its creator is alive
            holder = {}
        if age > self.stale_seconds:
            return ""
        host, pid = holder.get("host"), holder.get("pid")
        if holder.get("pid_space") == pid_space() and isinstance(pid, int) and not _pid_alive(pid):
            return ""  # its process died (kill -9, OOM): no need to wait for the heartbeat to age
        return f"{host}:{pid}"

    def state(self, run_dir: Path) -> RunState:
        try:
            status = read_status(run_dir)
        except DamagedFile as e:
            return RunState("damaged", 0, f"{e.path} {e.problem}; {_FIX}")
        step, reason = int(status.get("step") or 0), status.get("reason") or ""
        if status["state"] in ("done", "failed"):
            return RunState(status["state"], step, reason)
        holder = self._live_holder(run_dir) or lock_holder(run_dir)
        if holder:
            return RunState("running", step, holder=holder)
        waits = self._waits(run_dir)
        if waits:
            return RunState("waiting", step, waits)
        if status["state"] == "running" or _generations(run_dir):
            return RunState("stale", step, "interrupted; resumes from its last checkpoint")
        return RunState("pending")

    def _waits(self, run_dir: Path) -> str:
        """Why a cooldown branch cannot start yet (its parent lacks the checkpoint at its step), or ''."""
        try:
            labels = read_json(run_dir / LABELS) or {}
        except DamagedFile:  # checked_state names it
            return ""
        if not labels.get("parent") or complete_checkpoints(run_dir):
            return ""  # no branch, or a branch that has started: it resumes from its own checkpoints
        branch = BranchConfig(parent=labels["parent"], step=int(labels["branch_step"]))
        parent, point = branch_point(run_dir, branch)
        if point is not None:
            return ""
        if parent is None:
            return f"waits for its parent run {branch.parent} to reach step {branch.step} (not started)"
        s = self.state(parent)
        if s.state == "done":
            return (
                f"its parent {parent.name} finished without keeping step {branch.step}; delete {parent.name} "
                "to train it again with the branch points kept"
            )
        return f"waits for its parent {parent.name} to reach step {branch.step} ({s.state} at step {s.step})"

    def checked_state(self, run_dir: Path) -> RunState:
        """:meth:`state`, after reading every file of the run (labels, summary, metrics): ``damaged`` names the first bad one.

        A finished run's metrics.jsonl is read through once per version of the file (:func:`_check_metrics`),
        so ``study status`` costs the same however long the runs' metrics grew; not for the driver's loop.
        """
        state = self.state(run_dir)
        if state.state == "damaged":
            return state
        try:
            read_json(run_dir / LABELS)
            if state.state == "done":
                read_summary(run_dir)
                _check_metrics(run_dir)
        except DamagedFile as e:
            return RunState("damaged", state.step, f"{e.path} {e.problem}; {_FIX}")
        return state

    def claim(self, run_dir: Path) -> Claim | None:
        """Claim the run for this process, or None when another live process holds it."""
        gens = _generations(run_dir)
        if (gens and self._live_holder(run_dir)) or lock_holder(run_dir):
            return None
        path = run_dir / f"{CLAIM}{gens[-1] + 1 if gens else 0}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:  # another process claimed the same generation first
            return None
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "pid_space": pid_space(), "time": time.time()}, f)
        return Claim(path, interval=min(10.0, self.stale_seconds / 4))


def _check_metrics(run_dir: Path) -> None:
    """Raise :class:`DamagedFile` when a finished run's metrics.jsonl is damaged: read through (streamed) only
    when its size or modification time differs from :data:`METRICS_CHECKED`'s, then stamped there (a finished
    run's file no longer changes, so a later call reads two small files instead)."""
    path = run_dir / METRICS
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        if read_json(run_dir / METRICS_CHECKED) == stamp:
            return
    except DamagedFile:  # a damaged stamp only costs a read of the metrics
        pass
    for _ in iter_metrics(run_dir):
        pass
    with contextlib.suppress(OSError):  # a read-only study directory: checked again next time
        write_json(run_dir / METRICS_CHECKED, stamp)
