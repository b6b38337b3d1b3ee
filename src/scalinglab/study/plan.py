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
    "C", "C_structural", "schedule", "lr", "warmup_steps", "init_std", "seed", "schedule_from", "lr_from",
    "warmup_from", "batch_from", "init_from", "est_seconds",
]  # fmt: skip
"""The plan's columns; ``<x>_from`` says where hyper-parameter x came from: study, recipe or default."""


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


def estimate_seconds(cfg: Any, threads: int = 1, remeasure: bool = False) -> float:
    """Estimated time of one run's training and evaluation on this machine (measured, cached step time)."""
    micro = cfg.optim.micro_batch_size or cfg.optim.batch_size
    step = step_seconds(cfg.model, micro, threads, remeasure) * (cfg.optim.batch_size // micro)
    steps = resolve_steps(cfg)
    evals = len(eval_steps(steps, cfg.eval.points))
    eval_tokens = cfg.eval.tokens * (1 + len(cfg.data.eval_sets))
    eval_seconds = eval_tokens * step / tokens_per_step(cfg) / 3
    return RUN_OVERHEAD_SECONDS + steps * step + evals * eval_seconds


def plan_totals(table: pd.DataFrame, workers: int = 1, remeasure: bool = False) -> dict[str, Any]:
    """Totals of a plan table and the study's estimated wall time with ``workers`` parallel runs.

    The parallel slowdown and start-up are measured for ``workers`` processes (cached; ``remeasure``
    times them again).
    """
    workers = max(1, workers)
    seconds = sorted(table["est_seconds"].dropna(), reverse=True)
    wall = slowdown = float("nan")
    if seconds:
        startup, step = parallel_costs(workers, remeasure)
        slowdown = max(1.0, step / parallel_costs(1, remeasure)[1]) if workers > 1 else 1.0
        queues = [0.0] * workers
        for s in seconds:  # longest first onto the least loaded worker (LPT scheduling)
            heapq.heapreplace(queues, queues[0] + s * slowdown)
        wall = table.attrs.get("data_seconds", 0.0) + startup + max(queues)
    return {
        "runs": len(table),
        "steps": int(table["steps"].sum()),
        "tokens": int(table["tokens"].sum()),
        "C": float(table["C"].sum()),
        "C_structural": float(table["C_structural"].sum()),
        "est_run_seconds": float(sum(seconds)) if seconds else float("nan"),
        "workers": workers,
        "parallel_slowdown": slowdown,
        "est_wall_seconds": wall,
    }
