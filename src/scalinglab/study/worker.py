"""One unit of work on any executor: claim a run, train (or resume) it, report how it ended.

:func:`execute` runs in a worker process (a local pool process, a Ray task or a SLURM array task).
The claim is taken there, not by the driver, so two drivers or two cluster tasks given the same run
train it once: the loser of the claim returns ``skipped``. A run that raises is recorded as failed in
its ``status.json`` with the error, and the study goes on. A run stopped from outside (SIGTERM at a
SLURM time limit, SIGINT) or by a full disk is ``stopped``: it stays pending and resumes from its
checkpoint when the driver resubmits it; a run whose lock another process holds (a plain
``scalinglab train``) is ``skipped``. Every attempt that trains appends a line to the run's
``attempts.jsonl`` (scheduler job id, host, pid, node, the step it starts from), so a study can show
where each run went and prove that no run was trained twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scalinglab.atomic import dumps, os_errors
from scalinglab.errors import DamagedFile, DiskError, LockedError, Stopped
from scalinglab.study.store import RunStore
from scalinglab.train.checkpoint import latest_checkpoint
from scalinglab.train.config import RunConfig
from scalinglab.train.run import train
from scalinglab.train.rundir import StatusWriter, read_status

ATTEMPTS = "attempts.jsonl"
"""One JSON line per training attempt of a run: time, job, host, pid, node, from_step."""


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to train one run; plain data, so it pickles to any executor."""

    config: RunConfig
    run_dir: str
    stale_seconds: float
    retry_failed: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a job ended: done, failed (with the reason), stopped (resumable) or skipped (finished or held elsewhere)."""

    run_dir: str
    state: Literal["done", "failed", "stopped", "skipped"]
    reason: str = ""
    seconds: float = 0.0
    step: int = 0
    """The step the run reached (a stopped run resumes from its last checkpoint at or before it)."""


def execute(job: Job) -> Outcome:
    """Claim, train and release one run (runs in the worker process)."""
    run_dir = Path(job.run_dir)
    claim = RunStore(run_dir.parent, job.stale_seconds).claim(run_dir)
    if claim is None:
        return Outcome(job.run_dir, "skipped", "claimed by another worker")
    with claim:
        try:
            state = read_status(run_dir)["state"]
        except DamagedFile as e:
            return Outcome(job.run_dir, "skipped", str(e))
        if state == "done" or (state == "failed" and not job.retry_failed):
            return Outcome(job.run_dir, "skipped", f"already {state}")
        start = time.time()
        try:
            _log_attempt(run_dir)
            with _warning_as_stop():
                train(job.config, run_dir)
        except LockedError as e:  # a plain `scalinglab train` holds the run: it is that process's to finish
            return Outcome(job.run_dir, "skipped", str(e), time.time() - start)
        except (Stopped, DiskError) as e:  # the trainer left it pending: resumable, not failed
            step = int(read_status(run_dir).get("step") or 0)
            return Outcome(job.run_dir, "stopped", str(e).splitlines()[0], time.time() - start, step)
        except Exception as e:  # the run failed: keep its error, let the rest of the study go on
            reason = f"{type(e).__name__}: {e}".splitlines()[0]
            if read_status(run_dir)["state"] != "failed":
                StatusWriter(run_dir).set("failed", reason)
            return Outcome(job.run_dir, "failed", reason, time.time() - start)
        return Outcome(job.run_dir, "done", "", time.time() - start)


def scheduler_job() -> dict[str, str]:
    """This process's scheduler identity: SLURM ``<array>_<task>`` (or job id) and node, or Ray task and node."""
    env = os.environ
    if "SLURM_JOB_ID" in env:
        array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        job = f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]
        return {"executor": "slurm", "job": job, "node": env.get("SLURMD_NODENAME", "")}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        context = ray.get_runtime_context()
        return {"executor": "ray", "job": context.get_task_id() or "", "node": context.get_node_id()}
    return {"executor": "local", "job": "", "node": ""}


def _log_attempt(run_dir: Path) -> None:
    """Append this attempt to the run's attempts.jsonl (the claim makes this process its only writer)."""
    found = latest_checkpoint(run_dir)
    record = {"time": time.time(), **scheduler_job(), "host": socket.gethostname(), "pid": os.getpid(),
              "from_step": found[0] if found else 0}  # fmt: skip
    with os_errors(run_dir / ATTEMPTS), open(run_dir / ATTEMPTS, "a") as f:  # a full disk: stopped, like the trainer
        f.write(dumps(record) + "\n")


def read_attempts(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's attempts, oldest first (a line cut short by a kill is skipped)."""
    path = Path(run_dir) / ATTEMPTS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


@contextlib.contextmanager
def _warning_as_stop() -> Iterator[None]:
    """Under SLURM, the time-limit warning (SIGUSR2, sent ahead by ``--signal``) stops the run like SIGTERM.

    submitit's own handler would requeue or abort the task mid-step; the trainer's SIGTERM handler
    instead checkpoints at the end of the step and stops, and the driver resubmits the run.
    """
    if "SLURM_JOB_ID" not in os.environ or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR2, previous)


def init_local_worker(parent_pid: int, threads: int) -> None:
    """Process-pool initializer: one BLAS thread per run, and exit with the driver (kill -9 included).

    Without the watchdog a killed driver would leave its workers training, holding their claims.
    Ctrl-C reaches only the driver, which stops the workers; a run interrupted that way is resumable
    rather than marked failed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="scalinglab-parent-watch", daemon=True).start()
