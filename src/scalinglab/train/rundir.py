"""The run directory: where a run's files live and how they are written and read back.

One directory per run (docs/contracts.md): ``config.json``, ``env.json``, ``metrics.jsonl``,
``summary.json``, ``status.json`` and ``checkpoints/``. JSON files are replaced atomically
(:mod:`scalinglab.atomic`) so a reader never sees half a file; ``metrics.jsonl`` is append-only
and its readers skip a truncated last line left by a crash. One process at a time trains a run: it
holds the directory's ``lock`` (:class:`RunLock`), and a directory only ever holds one config.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalinglab.atomic import dumps, os_errors, read_json, temp_name, write_json
from scalinglab.config import to_dict
from scalinglab.errors import DamagedFile, LockedError, ScalinglabError, TrainingError
from scalinglab.paths import inside
from scalinglab.train.config import RunConfig, identity_of

__all__ = ["read_json", "write_json"]  # re-exported: the run directory's JSON is scalinglab.atomic's

CONFIG, ENV, METRICS, SUMMARY, STATUS = "config.json", "env.json", "metrics.jsonl", "summary.json", "status.json"
LOCK = "lock"
"""Held (flock) by the one process training the run; the kernel releases it when that process dies."""
HEARTBEAT_SECONDS = 10.0
"""How often a running run rewrites status.json (the contract promises at least every 30 s)."""


def run_dir_for(cfg: RunConfig) -> Path:
    """``<runtime.out_dir>/<name>-<identity>``: the same scientific config always maps to the same place."""
    stem = f"{cfg.name}-{cfg.identity()}" if cfg.name else cfg.identity()
    return inside(cfg.runtime.out_dir, stem, "run name")


def iter_metrics(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The records of ``metrics.jsonl`` one at a time, in memory independent of the file's length.

    A truncated last line (a crash mid-write) is skipped with a warning; an unreadable line before
    the end means the file is damaged.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    bad = 0  # the line number of an unreadable line, pending: fine only if it is the last
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if bad:
                raise DamagedFile(
                    f"{path}:{bad}",
                    "is not JSON (the file is damaged before its end)",
                    f"delete {path} and the run's checkpoints/ to train it again, or restore the file from a copy",
                )
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad = i
                continue
            yield record
    if bad:
        warnings.warn(f"{path}: skipping a truncated last line (the run stopped mid-write)", stacklevel=2)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``metrics.jsonl`` as a list (see :func:`iter_metrics`)."""
    return list(iter_metrics(run_dir))


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only the records up to ``last_step`` (a resumed run repeats the steps after its checkpoint).

    Streams the file, so resuming a long run costs no memory for its metrics (a 10-minute soak wrote
    86 MB); the file is rewritten only when a record goes (or a truncated last line).
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    tmp = temp_name(path)
    with os_errors(path):
        try:
            kept = total = 0
            with open(tmp, "w") as f:
                for record in iter_metrics(run_dir):
                    total += 1
                    if record["step"] <= last_step:
                        f.write(dumps(record) + "\n")
                        kept += 1
                f.flush()
                os.fsync(f.fileno())
            if kept == total and path.stat().st_size == tmp.stat().st_size:
                tmp.unlink()  # nothing to drop: leave the file as it is
            else:
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class MetricsWriter:
    """Appends one JSON line per logged step and flushes it, so a kill loses at most the line being written."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS
        with os_errors(self.path):
            self._file = open(self.path, "a")  # noqa: SIM115 (open for the whole run)

    def write(self, record: dict[str, Any]) -> None:
        with os_errors(self.path):
            self._file.write(dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the flush of a full disk: write() raised it already
            self._file.close()


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """``status.json`` of a run; a directory without one is ``{"state": "pending"}``; a damaged one raises DamagedFile."""
    path = Path(run_dir) / STATUS
    status = read_json(path)
    if status is None:
        return {"state": "pending"}
    if not isinstance(status, dict) or status.get("state") not in ("pending", "running", "done", "failed"):
        raise DamagedFile(path, "holds no run state")
    return status


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """``summary.json`` of a run, or None before the run has ended."""
    return read_json(Path(run_dir) / SUMMARY)


class StatusWriter:
    """Owns ``status.json``: state changes, and a background heartbeat while the run is running.

    The heartbeat runs in a thread so that long pauses in the main loop (tokenising a corpus, a big
    evaluation) do not make a live run look dead to a study's executor.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / STATUS
        self.step = 0
        self._state = "pending"
        self._reason = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, state: str, reason: str = "") -> None:
        """Record a new state (``running`` starts the heartbeat; ``done``/``failed`` stop it)."""
        with self._lock:
            self._state, self._reason = state, reason
            self._write()
        if state == "running" and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="scalinglab-heartbeat", daemon=True)
            self._thread.start()
        elif state != "running":
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                if self._state == "running":
                    with contextlib.suppress(ScalinglabError):  # a full disk: the main loop meets it next
                        self._write()

    def _write(self) -> None:
        write_json(
            self.path,
            {
                "state": self._state,
                "heartbeat": time.time(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "step": self.step,
                "reason": self._reason,
            },
        )


def stored_identity(run_dir: Path) -> str | None:
    """The identity of the config stored in ``run_dir`` (None when it holds none yet)."""
    stored = read_json(Path(run_dir) / CONFIG)
    if stored is None:
        return None
    if not isinstance(stored, dict):
        raise DamagedFile(Path(run_dir) / CONFIG, "is not a run config")
    return identity_of(stored)  # the same rule as RunConfig.identity


def check_identity(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse a run directory that holds another run, finished or not (a directory is one run)."""
    identity = stored_identity(run_dir)
    if identity is not None and identity != cfg.identity():
        raise TrainingError(
            f"{run_dir} holds a different run (identity {identity}, this config {cfg.identity()}); "
            "pass another --run-dir or the same config."
        )


class RunLock:
    """The one-writer lock of a run directory: ``flock`` on ``<run_dir>/lock``, holder pid and host inside.

    The kernel drops the lock when its process dies (kill -9 included), so it is never stale; the
    file itself stays. A second writer fails at once with :class:`LockedError` naming the holder.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        with os_errors(self.path):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(10):  # a reader's shared probe (lock_holder) holds it for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01)
        else:
            os.close(fd)
            raise LockedError(
                f"{self.path.parent} is being trained by {lock_holder(self.path.parent) or 'another process'}; "
                "wait for it to finish (or stop that process), then run again to resume."
            ) from None
        holder = dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode() + b"\n", 0)
        except OSError:  # a full disk: the lock itself holds, only the holder's name is missing
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(run_dir: Path) -> str:
    """``pid <pid> on <host>`` of the live process holding the run's lock, or '' when it is free."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                info = {}
            return f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return ""
    finally:
        os.close(fd)


def git_commit() -> str | None:
    """The commit of the scalinglab checkout this code runs from, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment(device: str, threads: int, world_size: int) -> dict[str, Any]:
    """What ``env.json`` records: versions, device, threads and host, to explain speed and numerics."""
    import torch

    from scalinglab import __version__

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "scalinglab": __version__,
        "git_commit": git_commit(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine(),
        "threads": threads,
        "world_size": world_size,
        "host": socket.gethostname(),
        "platform": platform.platform(),
    }


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    """config.json: the fully resolved config (its scientific fields are the run's identity)."""
    write_json(run_dir / CONFIG, to_dict(cfg))

