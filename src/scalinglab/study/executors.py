"""Executors: where a study's runs train. The same jobs, the same results, whatever the backend.

- ``local`` (default): a process pool (spawn context) of ``workers`` processes, one thread per run;
  two one-thread runs beat one two-thread run on a small CPU (DESIGN.md, CPU facts).
- ``ray``: Ray Core tasks with ``num_cpus`` = threads per run and ``num_gpus`` per run;
  ``ray_address`` joins a running cluster (only when given: never a cluster found by chance), otherwise
  a local Ray starts with ``workers`` CPUs, bound to 127.0.0.1 so nothing listens on other interfaces.
- ``slurm``: submitit job arrays (``slurm_array_parallelism`` = workers); ``slurm_cluster='local'``
  runs the same arrays as local processes (submitit's LocalExecutor), which is how it is tested.

Each executor submits :class:`~scalinglab.study.worker.Job` s and hands back handles with ``done()``
and ``result()`` (futures or submitit jobs). ``capacity`` is how many jobs the driver keeps in flight;
None lets the backend queue them all.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from scalinglab.config import check
from scalinglab.errors import ConfigError
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
    """Runs trained at once; 0 means one per CPU core (local, local Ray) or the array limit (slurm)."""
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
    """Time limit of each array task in minutes; a run cut off resumes from its checkpoint on the next study run."""

    def __post_init__(self) -> None:
        check(self.kind in ("local", "ray", "slurm"), f"executor {self.kind!r} is unknown; choose local, ray or slurm.")
        check(self.workers >= 0, f"workers must be >= 0 (0 = one per core), got {self.workers}.")
        check(self.threads_per_run >= 1, f"threads per run must be at least 1, got {self.threads_per_run}.")
        check(self.num_gpus >= 0, f"num_gpus must be >= 0, got {self.num_gpus}.")

    @property
    def n_workers(self) -> int:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return self.workers or max(1, cores // self.threads_per_run)


class Handle(Protocol):
    def done(self) -> bool: ...

    def result(self) -> Outcome: ...


class Executor(Protocol):
    capacity: int | None

    def submit(self, jobs: Sequence[Job]) -> list[Handle]: ...

    def close(self, abort: bool = False) -> None:
        """Wait for the jobs in flight, or with ``abort`` (Ctrl-C) stop the local ones at once."""
        ...


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
            return [self._pool.submit(execute, job) for job in jobs]
        except BrokenProcessPool:  # a worker was killed (OOM): its runs went stale; start a fresh pool
            self._pool = self._new_pool()
            return [self._pool.submit(execute, job) for job in jobs]

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
        self._task = ray.remote(num_cpus=cfg.threads_per_run, num_gpus=cfg.num_gpus, max_retries=0)(execute)
        self.capacity = None  # Ray queues tasks until resources free up

    def submit(self, jobs: Sequence[Job]) -> list[Handle]:
        return [self._task.remote(job).future() for job in jobs]

    def close(self, abort: bool = False) -> None:
        if self._owns:  # a local Ray takes its workers down with it
            self._ray.shutdown()


class SlurmExecutor:
    """submitit job arrays: one array per submission, at most ``workers`` tasks running at once."""

    def __init__(self, cfg: ExecutorConfig, folder: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("the slurm executor needs submitit: pip install 'scalinglab[slurm]'.") from None
        self._ex = submitit.AutoExecutor(folder=folder, cluster=cfg.slurm_cluster or None)
        params: dict[str, Any] = {
            "name": "scalinglab",
            "timeout_min": cfg.slurm_time_min,
            "cpus_per_task": cfg.threads_per_run,
            "gpus_per_node": int(cfg.num_gpus),
            "slurm_array_parallelism": cfg.n_workers,
        }
        if cfg.slurm_partition:
            params["slurm_partition"] = cfg.slurm_partition
        self._ex.update_parameters(**params)
        # SLURM queues the array itself; submitit's local executor starts every job at once, so the driver meters it
        self.capacity = None if self._ex.cluster == "slurm" else cfg.n_workers

    def submit(self, jobs: Sequence[Job]) -> list[Handle]:
        return self._ex.map_array(execute, list(jobs)) if jobs else []

    def close(self, abort: bool = False) -> None:
        pass  # array tasks keep their claims and finish; the next study run waits for them


def make_executor(cfg: ExecutorConfig, study_dir: Path) -> Executor:
    """The executor ``cfg`` asks for (slurm logs and pickles go to ``<study_dir>/.submitit``)."""
    if cfg.kind == "ray":
        return RayExecutor(cfg)
    if cfg.kind == "slurm":
        return SlurmExecutor(cfg, study_dir / ".submitit")
    return LocalExecutor(cfg)
