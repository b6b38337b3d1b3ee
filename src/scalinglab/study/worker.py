"""One unit of work on any executor: claim a run, train (or resume) it, report how it ended.

:func:`execute` runs in a worker process (a local pool process, a Ray task or a SLURM array task).
The claim is taken there, not by the driver, so two drivers or two cluster tasks given the same run
train it once: the loser of the claim returns ``skipped``. A run that raises is recorded as failed in
its ``status.json`` with the error, and the study goes on. A run stopped from outside (SIGTERM at a
SLURM time limit, SIGINT) or by a full disk is ``stopped``: it stays pending and resumes on the next
study run; a run whose lock another process holds (a plain ``scalinglab train``) is ``skipped``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scalinglab.errors import DamagedFile, DiskError, LockedError, Stopped
from scalinglab.study.store import RunStore
from scalinglab.train.config import RunConfig
from scalinglab.train.run import train
from scalinglab.train.rundir import StatusWriter, read_status


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
            train(job.config, run_dir)
        except LockedError as e:  # a plain `scalinglab train` holds the run: it is that process's to finish
            return Outcome(job.run_dir, "skipped", str(e), time.time() - start)
        except (Stopped, DiskError) as e:  # the trainer left it pending: resumable, not failed
            return Outcome(job.run_dir, "stopped", str(e).splitlines()[0], time.time() - start)
        except Exception as e:  # the run failed: keep its error, let the rest of the study go on
            reason = f"{type(e).__name__}: {e}".splitlines()[0]
            if read_status(run_dir)["state"] != "failed":
                StatusWriter(run_dir).set("failed", reason)
            return Outcome(job.run_dir, "failed", reason, time.time() - start)
        return Outcome(job.run_dir, "done", "", time.time() - start)


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
