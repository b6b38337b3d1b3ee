"""The dry run: every run of a study with its shape, size, length, cost and estimated wall time.

``plan_study`` expands the study (so a bad study file fails here, before anything trains) and
tabulates each run. The time estimate comes from this machine: for each distinct (shape, micro-batch)
a few real AdamW steps of the GPT are timed with the run's thread count
(:mod:`scalinglab.study.throughput`, cached), and a run costs

    data_time + RUN_OVERHEAD_SECONDS + steps * step_time + evaluations * eval_time,

where data_time is the measured time to load the run's corpus from the token cache and one evaluation
forwards ``eval.tokens`` tokens per held-out set at a third of the training step's cost per token (a
backward pass costs about two forwards, Kaplan §2.1). The study's wall time with K workers is the
driver's data loading, plus the start-up of K workers at once, plus the longest of K queues filled
longest-run-first, each run slowed by the factor measured when K processes train at once on this
machine (:func:`scalinglab.study.throughput.parallel_costs`).

A cooldown branch (design wsd_ladder) trains only its decay: its ``C`` is the compute of its point
(6·N·D, what a separate run to the same D costs) and ``C_spent`` the compute it adds to its parent's,
which is what the totals and its time count. :func:`branch_savings` sets a wsd_ladder's spent compute
against the same points as separate runs.
"""

from __future__ import annotations

import heapq
import sys
from typing import Any

import pandas as pd
from tqdm import tqdm

from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.study.config import StudyConfig, expand_study
from scalinglab.study.throughput import data_seconds, parallel_costs, step_seconds
from scalinglab.train.budget import resolve_steps, tokens_per_step
from scalinglab.train.lr_rules import peak_lr
from scalinglab.train.schedules import eval_steps, warmup_steps

RUN_OVERHEAD_SECONDS = 0.5
"""Per-run cost besides data, steps and evaluations: model build, run files, the final checkpoint."""

COLUMNS = [
    "name", "design", "group", "n_layer", "d_model", "n_head", "d_ff", "n_ctx", "vocab_size",
    "N", "N_total", "N_with_head", "batch_size", "batch_tokens", "steps", "tokens", "train_tokens_limit",
    "C", "C_structural", "branch_step", "C_spent", "schedule", "lr", "warmup_steps", "init_std", "seed", "schedule_from", "lr_from",
    "warmup_from", "batch_from", "init_from", "est_seconds",
]  # fmt: skip
"""The plan's columns; ``<x>_from`` says where hyper-parameter x came from: study, recipe or default;
``branch_step`` is the parent's step a cooldown branch starts from (0: from scratch)."""


def plan_study(
    study: StudyConfig, *, measure: bool = True, remeasure: bool = False, threads: int = 1, progress: bool = True
) -> pd.DataFrame:
    """One row per run (columns :data:`COLUMNS`); ``est_seconds`` is NaN when ``measure`` is False.

    ``C`` is Kaplan's 6·N·D; ``C_structural`` counts every matmul (Hoffmann App F). Speeds are
    measured once per shape and cached; ``remeasure`` times them again (the machine's load changed).
    Totals and the wall-time estimate for K workers come from :func:`plan_totals`.
    """
    runs = expand_study(study)
    rows: list[dict[str, Any]] = []
    for run in runs:
        cfg, m = run.config, run.config.model
        counts = count_params(m)
        steps = resolve_steps(cfg)
        tokens = steps * tokens_per_step(cfg)
        flops = flops_per_token(m)
        rows.append(
            {
                "name": run.name,
                "design": run.design,
                "group": run.group,
                "n_layer": m.n_layer,
                "d_model": m.d_model,
                "n_head": m.n_head,
                "d_ff": m.ff_width,
                "n_ctx": m.n_ctx,
                "vocab_size": m.vocab_size,
                "N": counts["N"],
                "N_total": counts["N_total"],
                "N_with_head": counts["N_with_head"],
                "batch_size": cfg.optim.batch_size,
                "batch_tokens": tokens_per_step(cfg),
                "steps": steps,
                "tokens": tokens,
                "train_tokens_limit": cfg.data.train_tokens,
                "C": flops["6N"] * tokens,
                "C_structural": flops["structural"] * tokens,
                "branch_step": cfg.branch.step,
                "C_spent": spent_flops(cfg, "6N"),
                "schedule": cfg.schedule.kind,
                "lr": peak_lr(cfg.optim, m),
                "warmup_steps": warmup_steps(cfg.schedule, steps),
                "init_std": m.init_std,
                "seed": cfg.seed,
                **{f"{name}_from": src for name, src in run.origin},
                "est_seconds": float("nan"),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["data_seconds"] = float("nan")
    if measure:
        data: dict[tuple[Any, str], float] = {}
        timed: set[tuple[Any, int]] = set()
        bar = tqdm(runs, desc="timing shapes", unit="run", disable=not progress or not sys.stderr.isatty(), leave=False)
        for i, run in enumerate(bar):
            cfg = run.config
            key = (cfg.data, cfg.runtime.cache_dir)
            if key not in data:
                data[key] = data_seconds(*key)
            shape = (cfg.model, cfg.optim.micro_batch_size or cfg.optim.batch_size)
            refresh = remeasure and shape not in timed
            timed.add(shape)
            table.loc[i, "est_seconds"] = data[key] + estimate_seconds(cfg, threads, refresh)
        table.attrs["data_seconds"] = sum(data.values())  # the driver loads each corpus once, first
    return table


def spent_flops(cfg: Any, convention: str = "structural") -> float:
    """The FLOPs a run trains (counted in ``convention``, default every matmul): its tokens times the FLOPs per
    token, a cooldown branch only the steps after its parent's. The plan's C_spent and the ETA of study run/watch."""
    return (resolve_steps(cfg) - cfg.branch.step) * tokens_per_step(cfg) * flops_per_token(cfg.model)[convention]


def estimate_seconds(cfg: Any, threads: int = 1, remeasure: bool = False) -> float:
    """Estimated time of one run's training and evaluation on this machine (measured, cached step time)."""
    batch = cfg.optim.batch_size
    micro = cfg.optim.micro_batch_size or batch
    step = step_seconds(cfg.model, micro, threads, remeasure) * (batch // micro)
    every = cfg.eval.noise_scale_every
    if cfg.eval.noise_scale and every > 1 and micro < batch:  # micro-batches only on the measured steps
        step = (step + (every - 1) * step_seconds(cfg.model, batch, threads, remeasure)) / every
    total = resolve_steps(cfg)
    steps = total - cfg.branch.step  # a cooldown branch starts at its parent's step
    evals = sum(s > cfg.branch.step for s in eval_steps(total, cfg.eval.points))
    eval_tokens = cfg.eval.tokens * (1 + len(cfg.data.eval_sets))
    eval_seconds = eval_tokens * step / tokens_per_step(cfg) / 3
    return RUN_OVERHEAD_SECONDS + steps * step + evals * eval_seconds


def plan_totals(table: pd.DataFrame, workers: int = 1, remeasure: bool = False, executor: str = "local") -> dict[str, Any]:
    """Totals of a plan table and the study's estimated wall time with ``workers`` parallel runs.

    Locally the parallel slowdown and start-up are measured for ``workers`` processes on this machine
    (cached; ``remeasure`` times them again). On a cluster (``executor`` 'slurm' or 'ray') each of the
    ``workers`` slots has cores of its own, so runs are not slowed by each other; the start-up of one
    fresh process is paid by every SLURM array task (a new process per run) and once per Ray worker
    (Ray reuses its worker processes). Per-run times are this machine's: a faster cluster node is faster.
    """
    workers = max(1, workers)
    seconds = sorted(table["est_seconds"].dropna(), reverse=True)
    wall = slowdown = float("nan")
    if seconds:
        if executor == "local":
            startup, slowdown = parallel_costs(workers, remeasure)
            per_run = 0.0
        else:
            startup, slowdown = parallel_costs(1, remeasure)[0], 1.0
            per_run, startup = (startup, 0.0) if executor == "slurm" else (0.0, startup)
        queues = [0.0] * workers
        for s in seconds:  # longest first onto the least loaded worker (LPT scheduling)
            heapq.heapreplace(queues, queues[0] + s * slowdown + per_run)
        wall = table.attrs.get("data_seconds", 0.0) + startup + max(queues)
    trained = 1 - table["branch_step"] / table["steps"].clip(lower=1)  # the share of each run it trains itself
    return {
        "runs": len(table),
        "steps": int((table["steps"] - table["branch_step"]).sum()),
        "tokens": int(((table["steps"] - table["branch_step"]) * table["batch_tokens"]).sum()),
        "C": float(table["C_spent"].sum()),
        "C_structural": float((table["C_structural"] * trained).sum()),
        "est_run_seconds": float(sum(seconds)) if seconds else float("nan"),
        "workers": workers,
        "executor": executor,
        "parallel_slowdown": slowdown,
        "est_wall_seconds": wall,
        "branches": branch_savings(table),
    }


def branch_savings(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per design with cooldown branches: its points (the branches), the compute it spends (parents and
    decays, 6ND) and the compute of the same points as separate runs, each trained from scratch to its D."""
    out = []
    for design, rows in table.groupby("design", sort=False):
        branches = rows[rows["branch_step"] > 0]
        if branches.empty:
            continue
        spent, separate = float(rows["C_spent"].sum()), float(branches["C"].sum())
        out.append({"design": design, "points": len(branches), "C": spent, "C_separate": separate,
                    "ratio": spent / separate})  # fmt: skip
    return out
