"""``scalinglab study plan|run|status``: dry-run a study, train it on an executor, see where it stands."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import Any

from scalinglab.cli import _study_next
from scalinglab.cli._common import add_json_flag, command, print_json

DESCRIPTION = """\
A study is one TOML file naming a family of runs: a base run ([base.model], [base.data],
[base.budget], ...), a hyper-parameter recipe (tuned-v1 or kaplan2020) and one or more [[design]]
tables (ladder, dataset_size, nd_grid, isoflop, batch_scan, lr_scan, shape_scan, context_scan,
seeds, wsd_ladder, repeat). See docs/contracts.md ("Study files") and studies/*.toml.

Examples:
  scalinglab study plan studies/ladder.toml                 # every run, its cost and time; trains nothing
  scalinglab study run studies/ladder.toml --workers 2      # local process pool, one thread per run
  scalinglab study run studies/ladder.toml --executor ray --ray-address auto
  scalinglab study run studies/ladder.toml --executor slurm --slurm-partition gpu --num-gpus 1
  scalinglab study status studies/ladder.toml
  scalinglab study watch studies/ladder.toml                # live: states, ETA, curves, the fit as runs finish
  scalinglab study suggest studies/ladder.toml --target-budget 1e15 >> studies/ladder.toml   # the next runs
  scalinglab collect runs/ladder                            # tidy runs/steps tables for `scalinglab fit`
"""

PLAN_HELP = """\
Dry run: expand the study and print one row per run (shape, N, N_total, tokens, FLOPs, steps,
schedule, LR, warmup, batch, init std, estimated time) and the totals, before anything trains. Each
hyper-parameter says where it came from: study (the file sets it: base, design or overrides, which
always win), recipe (the recipe fills what the study leaves unset) or default. A bad study file
(unknown design, impossible shape, budget below one step) fails here with a one-line message.

Times come from a few real training steps per distinct shape, timed on this machine with one thread
per run and cached in $SCALINGLAB_CACHE/throughput.json; --remeasure times them again, --no-measure
skips them.

With --executor slurm or ray the wall time is for the cluster: --workers K runs at once (default:
the cluster's CPUs over --threads-per-run, from sinfo or from the Ray cluster at --ray-address),
each on cores of its own, so without this machine's parallel slowdown; every SLURM array task pays a
process start-up. Per-run times stay this machine's.

Examples:
  scalinglab study plan studies/ladder.toml
  scalinglab study plan studies/ladder.toml --workers 2 --json
  scalinglab study plan studies/ladder.toml --executor slurm --workers 64
  scalinglab study plan studies/ladder.toml --executor ray --ray-address auto
"""

RUN_HELP = """\
Train every run of the study that is not done yet, in parallel, exactly once. Runs live in
<out_dir>/<name>-<identity> (default out_dir: runs/<study name>). Re-running is always safe:
finished runs are skipped, interrupted runs (killed driver or worker, stale heartbeat) resume from
their last checkpoint, and two drivers on one study share the work. Failed runs keep their error in
status.json and are retried only with --retry-failed. SIGTERM or Ctrl-C stops the driver and its
workers, leaving their runs to resume. The exit status is non-zero while any run is failed or
unfinished (stopped, crashed twice, damaged, or held by another process), with a line saying how
many and why.

Examples:
  scalinglab study run studies/ladder.toml                         # local pool, one worker per core
  scalinglab study run studies/ladder.toml --workers 1 --retry-failed
  scalinglab study run studies/ladder.toml --executor ray          # a local Ray; --ray-address joins a cluster
  scalinglab study run studies/ladder.toml --executor ray --ray-address head:6379 --ray-resource a100=1 --ray-spread
  scalinglab study run studies/ladder.toml --executor slurm --slurm-partition gpu --slurm-account proj \
      --slurm-time-min 240 --threads-per-run 8 --num-gpus 1 --workers 16 --slurm-log-dir logs --slurm-option qos=high
  scalinglab study run studies/ladder.toml --executor slurm --slurm-cluster local   # submitit arrays, locally

On a cluster a run stopped by its scheduler (a time limit: SIGUSR2 ahead of it, SIGTERM, SIGKILL; a
preemption) checkpoints and is resubmitted at once, and a run whose node died resumes elsewhere from
its last checkpoint. --workers throttles a SLURM array (%K). See docs/clusters.md.
"""

STATUS_HELP = """\
One row per run of the study: state (pending, waiting = a cooldown branch whose parent has not yet
reached its step, running, stale = interrupted, done, failed, damaged =
one of its files cannot be read), step of steps, and the failure reason, the damaged file, or the
host:pid training it. Runs sent to a cluster also show the executor, the scheduler's job id (SLURM
<array>_<task>, a Ray task id), the job's state as squeue reports it (PENDING, RUNNING, COMPLETED,
CANCELLED, TIMEOUT, ...) and the number of training attempts (more than one: resumed after a time
limit, a preemption or a lost node).

Examples:
  scalinglab study status studies/ladder.toml
  scalinglab study status studies/ladder.toml --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "study", "plan, run and follow a study (ladders, grids, scans)", DESCRIPTION, lambda a: p.print_help())
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    plan = command(actions, "plan", "dry run: every run, its cost and estimated time", PLAN_HELP, run_plan)
    plan.add_argument("study", metavar="STUDY.toml", help="study file (.toml, or .py with a study() function)")
    plan.add_argument("--workers", type=int, default=0,
                      help="parallel runs for the wall-time estimate (default: this machine's cores, or the cluster's size)")  # fmt: skip
    plan.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                      help="estimate for this executor: slurm and ray give each run cores of its own")  # fmt: skip
    plan.add_argument("--threads-per-run", type=int, default=1, help="CPU threads of each run (default: 1)")
    plan.add_argument("--slurm-partition", default="", help="size the SLURM cluster by this partition's nodes")
    plan.add_argument("--ray-address", default="", help="size the Ray cluster at this address ('auto' or host:port)")
    plan.add_argument("--no-measure", action="store_true", help="skip timing steps (no time estimates)")
    plan.add_argument("--remeasure", action="store_true", help="time every shape again (the machine's load changed)")
    add_json_flag(plan)

    run = command(actions, "run", "train every run not yet done, on an executor", RUN_HELP, run_run)
    run.add_argument("study", metavar="STUDY.toml", help="study file (.toml, or .py with a study() function)")
    run.add_argument("--executor", choices=["local", "ray", "slurm"], default="local", help="where runs train (default: local)")
    run.add_argument("--workers", type=int, default=0, help="runs at once (default 0: one per core)")
    run.add_argument("--threads-per-run", type=int, default=1, help="CPU threads of each run (default: 1)")
    run.add_argument("--num-gpus", type=float, default=0, help="GPUs per run (ray, slurm)")
    run.add_argument("--retry-failed", action="store_true", help="train failed runs again")
    run.add_argument("--ray-address", default="", help="join this Ray cluster ('auto' or host:port)")
    run.add_argument("--slurm-cluster", default="", help="submitit cluster: '' detects SLURM, 'local' runs arrays locally")
    run.add_argument("--slurm-partition", default="", help="SLURM partition")
    run.add_argument("--slurm-time-min", type=int, default=240, help="time limit per array task in minutes")
    run.add_argument("--slurm-account", default="", help="SLURM account the tasks are charged to")
    run.add_argument("--slurm-log-dir", default="", help="folder of the tasks' logs (default: <study dir>/.submitit)")
    run.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                     help="another sbatch option, e.g. qos=high or constraint=a100 (repeatable)")  # fmt: skip
    run.add_argument("--ray-resource", action="append", default=[], metavar="NAME=AMOUNT",
                     help="a custom Ray resource each run requests, e.g. node2=1 (repeatable)")  # fmt: skip
    run.add_argument("--ray-spread", action="store_true", help="spread runs over the Ray nodes (SPREAD strategy)")
    run.add_argument("--no-progress", action="store_true", help="no progress display")
    add_json_flag(run)

    status = command(actions, "status", "where each run of a study stands", STATUS_HELP, run_status)
    status.add_argument("study", metavar="STUDY.toml", help="study file (.toml, or .py with a study() function)")
    add_json_flag(status)
    _study_next.register(actions)  # suggest (the next runs for the answer) and watch (a study as it trains)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}"
    if isinstance(value, int) and abs(value) >= 100_000:
        return f"{value:.3g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def run_plan(args: argparse.Namespace) -> int:
    from scalinglab.study import load_study, plan_study, plan_totals
    from scalinglab.study.executors import ExecutorConfig, cluster_workers

    study = load_study(args.study)
    executor = ExecutorConfig(kind=args.executor, workers=args.workers, threads_per_run=args.threads_per_run,
                              slurm_partition=args.slurm_partition, ray_address=args.ray_address)  # fmt: skip
    workers = executor.n_workers if args.executor == "local" or args.workers else cluster_workers(executor)
    table = plan_study(study, measure=not args.no_measure, remeasure=args.remeasure, threads=args.threads_per_run,
                       progress=not args.json)  # fmt: skip
    totals = plan_totals(table, workers, remeasure=args.remeasure, executor=args.executor)
    if args.json:
        print_json({"study": study.name, "directory": str(study.directory), "runs": table.to_dict("records"), "totals": totals})
        return 0
    rows = table.to_dict("records")
    for r in rows:  # each hyper-parameter beside where it came from
        for col, name in (("schedule", "schedule"), ("lr", "lr"), ("warmup_steps", "warmup"), ("batch_size", "batch"),
                          ("init_std", "init")):
            r[col] = f"{_fmt(r[col])} ({r[f'{name}_from']})"
    columns = ["name", "n_layer", "d_model", "N", "tokens", "C", "steps", "schedule", "lr", "warmup_steps", "batch_size",
               "init_std", "est_seconds"]
    print(_table(rows, columns))
    if args.no_measure:
        estimate = "no time estimate (--no-measure); "
    else:
        estimate = (
            f"estimated {_duration(totals['est_run_seconds'])} of training, "
            f"{_duration(totals['est_wall_seconds'])} wall time with {totals['workers']} worker(s) "
            + (f"(each run x{totals['parallel_slowdown']:.2f} slower in parallel, measured); " if args.executor == "local" else
               f"on {args.executor} (cores of their own; this machine's speed per run); ")  # fmt: skip
        )
    print(
        f"\n{totals['runs']} runs, {totals['tokens']:.3g} tokens, C = {totals['C']:.3g} FLOPs (6ND), "
        f"{totals['C_structural']:.3g} FLOPs (structural)\n{estimate}study directory {study.directory}"
    )
    for b in totals["branches"]:  # a wsd_ladder: its points against the same points as separate runs
        print(f"{b['design']}: {b['points']} L(N, D) points from cooldown branches for C = {b['C']:.3g} FLOPs (6ND), "
              f"{b['ratio']:.0%} of the {b['C_separate']:.3g} FLOPs of the same points as separate cosine runs")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from scalinglab.study import load_study, run_study
    from scalinglab.study.executors import ExecutorConfig

    study = load_study(args.study)
    executor = ExecutorConfig(
        kind=args.executor,
        workers=args.workers,
        threads_per_run=args.threads_per_run,
        num_gpus=args.num_gpus,
        ray_address=args.ray_address,
        slurm_cluster=args.slurm_cluster,
        slurm_partition=args.slurm_partition,
        slurm_time_min=args.slurm_time_min,
        slurm_account=args.slurm_account,
        slurm_log_dir=args.slurm_log_dir,
        slurm_options=tuple(args.slurm_option),
        ray_resources=tuple(args.ray_resource),
        ray_spread=args.ray_spread,
    )
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # a scheduler's stop: like Ctrl-C, runs stay resumable
    try:
        status = run_study(study, executor, retry_failed=args.retry_failed, progress=not (args.no_progress or args.json))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _print_status(study, status, args.json, failed_exit=True)


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_status(args: argparse.Namespace) -> int:
    from scalinglab.study import load_study, study_status

    study = load_study(args.study)
    return _print_status(study, study_status(study), args.json)


def _print_status(study: Any, status: Any, as_json: bool, failed_exit: bool = False) -> int:
    rows = status.to_dict("records")
    counts = status["state"].value_counts().to_dict()
    if as_json:
        print_json({"study": study.name, "directory": str(study.directory), "counts": counts, "runs": rows})
    else:
        scheduled = ["executor", "job", "job_state", "attempts"] if any(r["job"] for r in rows) else []
        print(_table(rows, ["name", "design", "group", "state", "step", "steps", *scheduled, "reason"]))
        print("\n" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; study directory {study.directory}")
    if not failed_exit:
        return 0
    unfinished = {s: n for s, n in sorted(counts.items()) if s not in ("done", "failed")}
    if unfinished:  # stopped (SIGTERM, full disk), crashed twice, damaged, or held by another driver
        what = ", ".join(f"{n} {s}" for s, n in unfinished.items())
        print(
            f"scalinglab study run: {sum(unfinished.values())} run(s) unfinished ({what}); see the reason column, "
            "fix what it names, then run the same command again to resume them.",
            file=sys.stderr,
        )
    return 1 if counts.get("failed") or unfinished else 0
