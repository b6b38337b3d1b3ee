"""The run directory: where a run's files live and how they are written and read back.

One directory per run (docs/contracts.md): ``config.json``, ``env.json``, ``metrics.jsonl``,
``summary.json``, ``status.json`` and ``checkpoints/``. JSON files are replaced atomically (write a
temporary file, fsync, rename) so a reader never sees half a file; ``metrics.jsonl`` is append-only
and its readers skip a truncated last line left by a crash.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from scalinglab.config import to_dict
from scalinglab.errors import DataError
from scalinglab.train.config import RunConfig

CONFIG, ENV, METRICS, SUMMARY, STATUS = "config.json", "env.json", "metrics.jsonl", "summary.json", "status.json"
HEARTBEAT_SECONDS = 10.0
"""How often a running run rewrites status.json (the contract promises at least every 30 s)."""


def run_dir_for(cfg: RunConfig) -> Path:
    """``<runtime.out_dir>/<name>-<identity>``: the same scientific config always maps to the same place."""
    stem = f"{cfg.name}-{cfg.identity()}" if cfg.name else cfg.identity()
    return Path(cfg.runtime.out_dir) / stem


def _clean(value: Any) -> Any:
    """JSON-safe data: non-finite floats become null (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically with ``data`` as indented JSON."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(_clean(data), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when the file does not exist."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``metrics.jsonl``; a truncated last line (a crash mid-write) is skipped with a warning."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise DataError(f"{path}:{i + 1} is not JSON; the file is corrupt before its end, so re-run the run.") from None
            warnings.warn(f"{path}: skipping a truncated last line (the run stopped mid-write)", stacklevel=2)
    return records


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only the records up to ``last_step`` (a resumed run repeats the steps after its checkpoint)."""
    kept = [r for r in read_metrics(run_dir) if r["step"] <= last_step]
    tmp = run_dir / f".{METRICS}.tmp"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(_clean(r)) + "\n" for r in kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / METRICS)


class MetricsWriter:
    """Appends one JSON line per logged step and flushes it, so a kill loses at most the line being written."""

    def __init__(self, run_dir: Path) -> None:
        self._file = open(Path(run_dir) / METRICS, "a")  # noqa: SIM115 (open for the whole run)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(_clean(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """``status.json`` of a run; a directory without one is ``{"state": "pending"}``."""
    return read_json(Path(run_dir) / STATUS) or {"state": "pending"}


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
    write_json(run_dir / CONFIG, to_dict(cfg))

