"""Executors: where a study's runs train. The same jobs, the same results, whatever the backend.

- ``local`` (default): a process pool (spawn context) of ``workers`` processes, one thread per run;
  two one-thread runs beat one two-thread run on a small CPU (DESIGN.md, CPU facts).
- ``ray``: Ray Core tasks with ``num_cpus`` = threads per run, ``num_gpus`` and any custom resources
  per run (``ray_resources``, e.g. to place runs on nodes that offer them) and an optional SPREAD over
  nodes; ``ray_address`` joins a running cluster (only when given: never a cluster found by chance),
  otherwise a local Ray starts with ``workers`` CPUs, bound to 127.0.0.1 so nothing listens on other
  interfaces. A task lost with its node fails its handle; its run's claim dies with it and the driver
  resumes the run from its checkpoint on another node.
- ``slurm``: submitit job arrays (``%workers`` throttles the array), with partition, account, time
  limit, CPUs and GPUs per task and any other sbatch option; logs in ``slurm_log_dir``.
  ``slurm_cluster='local'`` runs the same arrays as local processes (submitit's LocalExecutor). Before
  the time limit SLURM sends SIGUSR2 (see :func:`signal_lead_seconds`), then SIGTERM, then SIGKILL: the
  worker turns the first into the trainer's stop, so the run checkpoints and the driver resubmits it.

Each executor submits :class:`~scalinglab.study.worker.Job` s and hands back handles with ``done()``,
``result()`` and ``job_id`` (the scheduler's id: SLURM ``<array>_<task>``, a Ray task id; '' locally).
``capacity`` is how many jobs the driver keeps in flight; None lets the backend queue them all.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from scalinglab.config import check
from scalinglab.errors import ConfigError, ScalinglabError
from scalinglab.study.worker import Job, Outcome, execute, init_local_worker

ExecutorKind = Literal["local", "ray", "slurm"]
RAY_SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch between cluster mode (node IP, all interfaces) and single-node mode (loopback only)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """How a study executes; never part of any run's identity."""

    kind: ExecutorKind = "local"
    """'local' (process pool), 'ray' (Ray Core tasks) or 'slurm' (submitit job arrays)."""
    workers: int = 0
    """Runs trained at once; 0 means one per CPU core (local, local Ray, submitit's local arrays) or no
    throttle on a SLURM array (the cluster's own limits apply)."""
    threads_per_run: int = 1
    """CPU threads of each run (torch and BLAS)."""
    num_gpus: float = 0
    """GPUs per run (Ray num_gpus, SLURM gpus_per_node)."""
    ray_address: str = ""
    """Join this Ray cluster ('auto' or host:port); empty starts a local Ray on 127.0.0.1 only."""
    slurm_cluster: str = ""
    """submitit cluster: '' detects SLURM, 'local' runs arrays as local processes (tests), 'slurm' forces it."""
    slurm_partition: str = ""
    """SLURM partition (empty: the cluster's default)."""
    slurm_time_min: int = 240
    """Time limit of each array task in minutes; a run cut off checkpoints, and the driver resubmits it."""
    slurm_account: str = ""
    """SLURM account the tasks are charged to (sbatch --account; empty: the user's default)."""
    slurm_log_dir: str = ""
    """Folder of the tasks' logs (<job>_<task>_log.out/.err) and pickles; empty: <study dir>/.submitit."""
    slurm_options: tuple[str, ...] = ()
    """Further sbatch options as key=value (qos=high, constraint=a100, mem=16G), passed as --key=value."""
    ray_resources: tuple[str, ...] = ()
    """Custom Ray resources each run requests, as name=amount (node2=1: only nodes offering node2 take runs)."""
    ray_spread: bool = False
    """Spread runs over the cluster's nodes (Ray's SPREAD strategy) instead of filling one node first."""

    def __post_init__(self) -> None:
        check(self.kind in ("local", "ray", "slurm"), f"executor {self.kind!r} is unknown; choose local, ray or slurm.")
        check(self.workers >= 0, f"workers must be >= 0 (0 = one per core), got {self.workers}.")
        check(self.threads_per_run >= 1, f"threads per run must be at least 1, got {self.threads_per_run}.")
        check(self.num_gpus >= 0, f"num_gpus must be >= 0, got {self.num_gpus}.")
        check(self.slurm_time_min >= 1, f"the slurm time limit must be at least 1 minute, got {self.slurm_time_min}.")
        key_values(self.slurm_options, "slurm option", str)
        key_values(self.ray_resources, "ray resource", float)

    @property
    def n_workers(self) -> int:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return self.workers or max(1, cores // self.threads_per_run)


def key_values(items: Sequence[str], what: str, kind: type) -> dict[str, Any]:
    """``['a=1', 'b=2']`` as a dict with values of ``kind``; a malformed item is a ConfigError naming it."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        check(bool(sep and key.strip() and value.strip()), f"{what} {item!r} is not key=value; write it as name=value.")
        try:
            out[key.strip()] = kind(value.strip())
        except ValueError:
            raise ConfigError(f"{what} {item!r}: {value!r} is not a {kind.__name__}; give a number.") from None
    return out


def signal_lead_seconds(time_min: int) -> int:
    """Seconds before the time limit at which SLURM warns a task (SIGUSR2): 90, or a quarter of short limits.

    The warning leaves the trainer time to checkpoint and exit before SIGTERM and SIGKILL; a lead longer
    than the limit would stop every task as it starts.
    """
    return min(90, time_min * 15)


class Handle(Protocol):
    job_id: str

    def done(self) -> bool: ...

    def result(self) -> Outcome: ...


class Executor(Protocol):
    capacity: int | None

    def submit(self, jobs: Sequence[Job]) -> list[Handle]: ...

    def close(self, abort: bool = False) -> None:
        """Wait for the jobs in flight, or with ``abort`` (Ctrl-C) stop the local ones at once."""
        ...


class _Future:
    """A concurrent future as a :class:`Handle`; ``job_id`` is the scheduler's id of the task ('' locally)."""

    def __init__(self, future: Any, job_id: str = "") -> None:
        self._future, self.job_id = future, job_id

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Outcome:
        return self._future.result()


class LocalExecutor:
    """A spawn-context process pool; its workers exit when the driver dies."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.capacity: int | None = cfg.n_workers
        self._cfg = cfg
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._cfg.n_workers,
            mp_context=multiprocessing.get_context("spawn"),  # no forked torch state, same on every OS
            initializer=init_local_worker,
            initargs=(os.getpid(), self._cfg.threads_per_run),
        )

    def submit(self, jobs: Sequence[Job]) -> list[Handle]:
        try:
            return [_Future(self._pool.submit(execute, job)) for job in jobs]
        except BrokenProcessPool:  # a worker was killed (OOM): its runs went stale; start a fresh pool
            self._pool = self._new_pool()
            return [_Future(self._pool.submit(execute, job)) for job in jobs]

    def close(self, abort: bool = False) -> None:
        if abort:  # SIGKILL, not SIGTERM (which the trainer records as a failure): the runs stop at their
            # last checkpoint, their claims die with them, and the next study run resumes them
            for process in list(self._pool._processes.values()):  # no public API before Python 3.14
                process.kill()
        self._pool.shutdown(wait=not abort, cancel_futures=True)


class RayExecutor:
    """Ray Core tasks, one per run, with CPU and GPU requests the scheduler honours."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        if not cfg.ray_address:
            # Ray's single-node mode (its default on macOS and Windows) binds every server to 127.0.0.1;
            # read at import by Ray and inherited by its raylet and workers
            os.environ[RAY_SINGLE_NODE] = "0"
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray executor needs Ray: pip install 'scalinglab[ray]'.") from None
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            if cfg.ray_address:
                ray.init(address=cfg.ray_address, log_to_driver=False)
            else:  # a light local Ray: loopback only (a study is no network service), no dashboard
                os.environ.pop("RAY_ADDRESS", None)  # joining a cluster is explicit: --ray-address
                ray._private.ray_constants.ENABLE_RAY_CLUSTER = False  # the same, when Ray was imported earlier
                ray.init(
                    address="local",
                    num_cpus=cfg.n_workers * cfg.threads_per_run,
                    include_dashboard=False,
                    log_to_driver=False,
                )
        options: dict[str, Any] = {"num_cpus": cfg.threads_per_run, "num_gpus": cfg.num_gpus, "max_retries": 0}
        if cfg.ray_resources:
            options["resources"] = key_values(cfg.ray_resources, "ray resource", float)
        if cfg.ray_spread:
            options["scheduling_strategy"] = "SPREAD"
        # no retries by Ray: a task lost with its node is resubmitted by the driver, which knows the run's claim
        self._task = ray.remote(**options)(execute)
        self.capacity = None  # Ray queues tasks until resources free up

    def submit(self, jobs: Sequence[Job]) -> list[Handle]:
        refs = [self._task.remote(job) for job in jobs]
        return [_Future(ref.future(), ref.task_id().hex()) for ref in refs]

    def close(self, abort: bool = False) -> None:
        if self._owns:  # a local Ray takes its workers down with it
            self._ray.shutdown()


SLURM_ENDED = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
)
"""Job states after which a task runs no more (``squeue --states=all`` keeps them for MinJobAge)."""


class SlurmQueue:
    """The states of SLURM jobs from ``squeue`` (accounting, which ``sacct`` needs, is not required).

    One ``squeue`` call answers every job, at most once per ``refresh_seconds``.
    """

    def __init__(self, refresh_seconds: float = 2.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._states: dict[str, str] = {}
        self._at = -float("inf")

    def states(self) -> dict[str, str]:
        """Job id (``<array>_<task>`` for array tasks) -> state, for every job squeue still lists."""
        if time.monotonic() - self._at >= self.refresh_seconds:
            self._states = squeue_states()
            self._at = time.monotonic()
        return self._states

    def state(self, job_id: str) -> str:
        """The job's state, or 'GONE' once squeue no longer lists it."""
        return self.states().get(job_id, "GONE")

    def forget(self) -> None:
        """Ask squeue again on the next call (jobs were just submitted)."""
        self._at = -float("inf")


def squeue_states() -> dict[str, str]:
    """Every job of this user that squeue lists, array tasks one by one: {job id: state}; empty without squeue."""
    if shutil.which("squeue") is None:
        return {}
    try:
        out = subprocess.run(
            ["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%i|%T"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        raise ScalinglabError(f"squeue failed ({e}); check that slurmctld is up (sinfo) and SLURM_CONF.") from None
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


SLURM_ARRAY_CAP = 256
"""The array throttle when --workers is not given: submitit's default, above most clusters' own limits."""
REPORT_GRACE_SECONDS = 10.0
"""How long a task SLURM has ended (cancelled, timed out) may still take to write its result: the job's
state changes at once, while its process finishes the step, checkpoints and reports."""


class _SlurmTask:
    """A submitted array task as a :class:`Handle`: done when its result is written, or when SLURM ended
    it and no result came within :data:`REPORT_GRACE_SECONDS`.

    submitit learns that a task ended from ``sacct``, which needs accounting; a task SIGKILLed before it
    could write its result would otherwise stay in flight forever.
    """

    def __init__(self, job: Any, queue: SlurmQueue) -> None:
        self._job, self._queue, self.job_id = job, queue, job.job_id
        self._ended_at: float | None = None

    def done(self) -> bool:
        if self._job.paths.result_pickle.exists():
            return True
        if self._queue.state(self.job_id) not in (*SLURM_ENDED, "GONE"):
            self._ended_at = None
            return False
        self._ended_at = self._ended_at or time.monotonic()
        return time.monotonic() - self._ended_at >= REPORT_GRACE_SECONDS

    def result(self) -> Outcome:
        if not self._job.paths.result_pickle.exists():
            state = self._queue.state(self.job_id)
            raise RuntimeError(f"slurm task {self.job_id} ended ({state}) before it could report; see {self._job.paths.stderr}")
        return self._job.result()


class SlurmExecutor:
    """submitit job arrays: one array per submission, at most ``workers`` tasks running at once."""

    def __init__(self, cfg: ExecutorConfig, folder: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("the slurm executor needs submitit: pip install 'scalinglab[slurm]'.") from None
        folder = Path(cfg.slurm_log_dir) if cfg.slurm_log_dir else folder
        self._ex = submitit.AutoExecutor(folder=folder, cluster=cfg.slurm_cluster or None)
        params: dict[str, Any] = {
            "name": "scalinglab",
            "timeout_min": cfg.slurm_time_min,
            "cpus_per_task": cfg.threads_per_run,
            "gpus_per_node": int(cfg.num_gpus),
            # --workers K throttles the array (%K); 0 leaves it to the cluster's own limits
            "slurm_array_parallelism": cfg.workers or (cfg.n_workers if cfg.slurm_cluster == "local" else SLURM_ARRAY_CAP),
            "slurm_signal_delay_s": signal_lead_seconds(cfg.slurm_time_min),
        }
        if cfg.slurm_partition:
            params["slurm_partition"] = cfg.slurm_partition
        if cfg.slurm_account:
            params["slurm_account"] = cfg.slurm_account
        if cfg.slurm_options:
            params["slurm_additional_parameters"] = key_values(cfg.slurm_options, "slurm option", str)
        self._ex.update_parameters(**params)
        self.queue = SlurmQueue()
        # SLURM queues the array itself; submitit's local executor starts every job at once, so the driver meters it
        self.capacity = None if self._ex.cluster == "slurm" else cfg.n_workers

    def submit(self, jobs: Sequence[Job]) -> list[Handle]:
        if not jobs:
            return []
        submitted = self._ex.map_array(execute, list(jobs))
        if self._ex.cluster != "slurm":
            return submitted  # submitit's local jobs know when they end
        self.queue.forget()
        return [_SlurmTask(job, self.queue) for job in submitted]

    def close(self, abort: bool = False) -> None:
        pass  # array tasks keep their claims and finish; the next study run waits for them


def cluster_workers(cfg: ExecutorConfig) -> int:
    """How many runs the cluster ``cfg`` names can train at once: its CPUs over the threads of a run.

    SLURM: the CPUs of the partition's nodes (``sinfo``); Ray: the cluster's CPUs (joins ``ray_address``).
    """
    if cfg.kind == "slurm":
        if shutil.which("sinfo") is None:
            raise ConfigError("no sinfo here to size the SLURM cluster; give --workers (the runs it trains at once).")
        command = ["sinfo", "--noheader", "--Node", "--format=%N %c"]
        if cfg.slurm_partition:
            command.append(f"--partition={cfg.slurm_partition}")
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise ConfigError(f"sinfo failed ({e}); check SLURM_CONF, or give --workers.") from None
        cpus = {node: int(n) for node, n in (line.split() for line in out.splitlines() if line.strip())}
    elif cfg.kind == "ray" and cfg.ray_address:
        ex = RayExecutor(cfg)
        try:
            cpus = {"cluster": int(ex._ray.cluster_resources().get("CPU", 0))}
        finally:
            ex.close()
    else:
        raise ConfigError(f"the {cfg.kind} executor's size is unknown here; give --workers or --ray-address.")
    slots = sum(cpus.values()) // cfg.threads_per_run
    check(slots >= 1, f"the {cfg.kind} cluster has no free CPUs for a run of {cfg.threads_per_run} thread(s).")
    return slots


def make_executor(cfg: ExecutorConfig, study_dir: Path) -> Executor:
    """The executor ``cfg`` asks for (slurm logs and pickles go to ``<study_dir>/.submitit``)."""
    if cfg.kind == "ray":
        return RayExecutor(cfg)
    if cfg.kind == "slurm":
        return SlurmExecutor(cfg, study_dir / ".submitit")
    return LocalExecutor(cfg)
