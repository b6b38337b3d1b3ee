"""The study driver: train every run of a study exactly once, on any executor, resumable after a crash.

:func:`run_study` loops until nothing is left to do: it reads every run's state from the store,
submits the pending and interrupted runs (and, with ``retry_failed``, the failed ones, once), waits
for runs held by another driver to finish (or to go stale, then takes them over), and shows
done / running / failed and an ETA. Re-running a study is always safe: finished runs are skipped and
interrupted ones resume from their checkpoints. On a cluster (ray, slurm) a run its scheduler stopped
(a time limit, a preemption) is resubmitted at once while each attempt gets further; a run whose
node died goes stale and is resubmitted too. Each submission's scheduler job id is kept in the run's
``job.json``, which ``study status`` shows with the scheduler's state of that job.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from scalinglab.atomic import write_json
from scalinglab.config import replace_fields
from scalinglab.errors import DamagedFile, ScalinglabError
from scalinglab.study.config import StudyConfig, StudyRun, expand_study
from scalinglab.study.executors import ExecutorConfig, Handle, make_executor, squeue_states
from scalinglab.study.plan import spent_flops
from scalinglab.study.store import RunStore
from scalinglab.study.worker import Job, Outcome, read_attempts
from scalinglab.train.budget import resolve_steps
from scalinglab.train.rundir import read_json

MAX_CRASHES = 2
"""A run whose worker dies this many times in one study run is left for the next one (no crash loop)."""
JOB = "job.json"
"""The run's latest submission: executor, scheduler job id, time."""


def _prepare_data(runs: list[StudyRun], progress: bool) -> None:
    """Tokenise each distinct corpus once in the driver, so parallel workers find a warm cache."""
    from scalinglab.data import prepare

    seen = set()
    for run in runs:
        key = (run.config.data, run.config.runtime.cache_dir)
        if key not in seen:
            seen.add(key)
            prepare(run.config.data, cache_dir=run.config.runtime.cache_dir or None, progress=progress)


def run_study(
    study: StudyConfig,
    executor: str | ExecutorConfig = "local",
    workers: int | None = None,
    *,
    retry_failed: bool = False,
    progress: bool = True,
    poll_seconds: float = 0.5,
) -> pd.DataFrame:
    """Train every run of ``study`` not yet done; return the final :func:`study_status` table.

    ``executor`` is 'local', 'ray', 'slurm' or a full :class:`ExecutorConfig`; ``workers`` overrides its
    worker count. Failed runs keep their error and are retried only with ``retry_failed``.
    """
    cfg = executor if isinstance(executor, ExecutorConfig) else ExecutorConfig(kind=executor)  # type: ignore[arg-type]
    if workers is not None:
        cfg = dataclasses.replace(cfg, workers=workers)
    runs = expand_study(study)
    store = RunStore(study.directory.resolve(), study.stale_seconds)
    dirs = {store.prepare(run, study.name): run for run in runs}
    runtime = {
        "runtime.threads": cfg.threads_per_run,
        "runtime.progress": False,
        "runtime.out_dir": str(store.root),
    }
    jobs = {d: Job(replace_fields(r.config, runtime), str(d), study.stale_seconds, retry_failed) for d, r in dirs.items()}
    _prepare_data(runs, progress)

    inflight: dict[Path, Handle] = {}
    crashes: Counter[Path] = Counter()
    stopped_at: dict[Path, int] = {}  # the step each run's last scheduler stop reached
    cluster = cfg.kind == "ray" or (cfg.kind == "slurm" and cfg.slurm_cluster != "local")
    retried: set[Path] = set()
    states = {d: store.state(d) for d in dirs}
    finished = sum(s.state in ("done", "failed") for s in states.values())
    bar = tqdm(
        total=len(dirs), initial=finished, unit="run", desc=study.name, file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(), dynamic_ncols=True,
    )  # fmt: skip
    ex = make_executor(cfg, store.root)
    eta = _Eta({d: spent_flops(r.config) for d, r in dirs.items()}, {d for d, s in states.items() if s.state in ("done", "failed")})
    try:
        while True:
            for d, handle in list(inflight.items()):
                if handle.done():
                    del inflight[d]
                    outcome = _result(handle, d, crashes)
                    if outcome.state == "stopped":  # on a cluster, a time limit or preemption: resubmitted while it
                        if not (cluster and outcome.step > stopped_at.get(d, 0)):  # progresses; else (SIGTERM here,
                            crashes[d] = MAX_CRASHES  # a full disk, no progress) left pending for the next study run
                        stopped_at[d] = outcome.step
                    if outcome.state != "skipped" and progress:  # one line per run: readable in a log too
                        left = eta.finish(d) if outcome.state in ("done", "failed") else eta.left()
                        bar.write(f"{outcome.state:6s} {dirs[d].name} ({outcome.seconds:.0f} s) [{len(eta.done)}/{len(dirs)} "
                                  f"done, ETA {left}] {outcome.reason}".rstrip(), file=sys.stderr)
            states = {d: store.state(d) for d in dirs}
            todo = []
            for d, s in states.items():
                if d in inflight or crashes[d] >= MAX_CRASHES:
                    continue
                if s.state in ("pending", "stale") or (s.state == "failed" and retry_failed and d not in retried):
                    todo.append(d)
            todo.sort(key=eta.costs.__getitem__, reverse=True)  # longest first, so no worker idles at the end (LPT)
            if ex.capacity is not None:
                todo = todo[: max(0, ex.capacity - len(inflight))]
            retried.update(d for d in todo if states[d].state == "failed")
            for d, handle in zip(todo, ex.submit([jobs[d] for d in todo])):
                inflight[d] = handle
            _record_jobs(cfg.kind, [(d, inflight[d]) for d in todo])
            counts = Counter(s.state for s in states.values())
            bar.n = counts["done"] + counts["failed"]
            bar.set_postfix(done=counts["done"], running=counts["running"], failed=counts["failed"], refresh=True)
            if not inflight and not todo and not counts["running"]:
                break  # nothing in flight here, nothing to start, nobody else training
            time.sleep(poll_seconds)
    except BaseException:
        bar.close()
        ex.close(abort=True)
        raise
    bar.close()
    ex.close()
    return study_status(study)


def _record_jobs(kind: str, submitted: Sequence[tuple[Path, Handle]]) -> None:
    """Keep each run's scheduler job id in its job.json, for ``study status`` (local runs have none)."""
    for run_dir, handle in submitted:
        job_id = getattr(handle, "job_id", "")
        if job_id:
            write_json(run_dir / JOB, {"executor": kind, "job": job_id, "submitted": time.time()})


def _job_states(jobs: list[dict[str, Any]]) -> dict[str, str]:
    """The scheduler's state of each recorded SLURM job (one squeue call); Ray's tasks end with their driver."""
    if not any(j.get("executor") == "slurm" for j in jobs):
        return {}
    try:
        return squeue_states()
    except ScalinglabError:  # the cluster is down: the run states still stand
        return {}


class _Eta:
    """Time left: the cost of the runs still to train over the cost trained per second so far."""

    def __init__(self, costs: dict[Path, float], done: set[Path]) -> None:
        self.costs, self.done = costs, set(done)
        self.start, self.trained = time.monotonic(), 0.0

    def finish(self, run_dir: Path) -> str:
        """Count ``run_dir`` as trained; the time left."""
        if run_dir not in self.done:
            self.done.add(run_dir)
            self.trained += self.costs[run_dir]
        return self.left()

    def left(self) -> str:
        left = sum(c for d, c in self.costs.items() if d not in self.done)
        if not left:
            return "0 s"
        if not self.trained:
            return "unknown"
        seconds = left * (time.monotonic() - self.start) / self.trained
        return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _result(handle: Handle, run_dir: Path, crashes: Counter[Path]) -> Outcome:
    try:
        return handle.result()
    except Exception as e:  # the worker process itself died (OOM kill, broken pool): count it, go on
        crashes[run_dir] += 1
        return Outcome(str(run_dir), "failed", f"worker crashed: {type(e).__name__}: {e}".splitlines()[0])


def study_status(study: StudyConfig) -> pd.DataFrame:
    """One row per run of the study: name, design, group, state, step of steps, reason, directory, and
    where it went: the scheduler's job id and that job's state (SLURM; '' when unknown) and the number
    of training attempts (more than one: resumed after a stop or a lost node)."""
    store = RunStore(study.directory.resolve(), study.stale_seconds)
    rows, jobs = [], []
    for run in expand_study(study):
        d = store.run_dir(run)
        s = store.checked_state(d)
        try:
            job = read_json(d / JOB) or {}
        except DamagedFile:  # only the display of the job id is lost
            job = {}
        jobs.append(job)
        rows.append(
            {
                "name": run.name,
                "design": run.design,
                "group": run.group,
                "state": s.state,
                "step": s.step,
                "steps": resolve_steps(run.config),
                "reason": s.reason or s.holder,
                "run_dir": str(d),
                "executor": job.get("executor", ""),
                "job": job.get("job", ""),
                "attempts": len(read_attempts(d)),
            }
        )
    states = _job_states(jobs)
    for row in rows:
        row["job_state"] = states.get(row["job"], "") if row["executor"] == "slurm" else ""
    return pd.DataFrame(rows)
