"""Kaplan's learning-rate and context analyses: Fig 22 (LR scans) and Figs 20 right, 21 (loss by position).

Like :mod:`scalinglab.report.analyses`, each function takes the collected tables (the runs table,
the metrics records and the per-position losses of :mod:`scalinglab.study.collect`) and returns a
frozen dataclass, or raises :class:`~scalinglab.errors.DataError` naming the design to add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.study.selection import data_limited, finished, in_design, law_runs

# --------------------------------------------------------------------------------------------------
# Fig 22: learning-rate scans


@dataclass(frozen=True)
class LearningRateScan:
    """Kaplan App D.6, Fig 22: final loss against the LR summed over training, and against the peak LR."""

    points: pd.DataFrame
    """One row per finished lr_scan run: ``run_id``, ``N``, ``design`` (its label: a schedule), ``lr`` (peak),
    ``lr_sum`` (Σ_step LR), ``loss``."""
    schedules: pd.DataFrame
    """The LR at each logged step: ``run_id``, ``N``, ``step``, ``lr``."""

    def best(self) -> pd.DataFrame:
        """Per model size and schedule (design) that scans 2 or more LRs, the run with the lowest final loss
        (``N``, ``design``, ``lr``, ``loss``) and ``edge``: its LR is the lowest or highest scanned, so the
        optimum is not bracketed."""
        p = self.points.dropna(subset=["loss"])
        p = p[p.groupby(["N", "design"])["lr"].transform("nunique") > 1]
        g = p.groupby(["N", "design"])
        best = p.loc[g["loss"].idxmin()].sort_values(["N", "design"])
        lo, hi = g["lr"].transform("min")[best.index], g["lr"].transform("max")[best.index]
        edge = np.isclose(best["lr"], lo) | np.isclose(best["lr"], hi)
        return best[["N", "design", "lr", "loss"]].assign(edge=edge).reset_index(drop=True)


def summed_lr(step: np.ndarray, lr: np.ndarray) -> float:
    """Σ over optimiser steps of the LR, from a logged schedule (trapezoids between logged steps, from step 0)."""
    order = np.argsort(step)
    s, v = np.concatenate([[0.0], step[order]]), np.concatenate([[lr[order][0]], lr[order]])
    return float(np.sum((s[1:] - s[:-1]) * (v[1:] + v[:-1]) / 2))


def lr_scan(runs: pd.DataFrame, records: pd.DataFrame) -> LearningRateScan:
    """Final loss of every lr_scan run against its summed and its peak LR (Kaplan: the sum matters most)."""
    df = finished(runs)
    df = df[in_design(df, "lr_scan")]
    if df.empty:
        raise DataError("no learning-rate scan in this study; add an lr_scan design (see studies/lr_schedules.toml).")
    rec = records[records["run_id"].isin(df["run_id"]) & records["lr"].notna()] if "lr" in records.columns else records.iloc[:0]
    if rec.empty:
        raise DataError("the lr_scan runs logged no learning rate; re-run them (metrics.jsonl records 'lr').")
    sums = {r: summed_lr(g["step"].to_numpy(float), g["lr"].to_numpy(float)) for r, g in rec.groupby("run_id")}
    pts = df.assign(lr_sum=df["run_id"].map(sums)).dropna(subset=["lr_sum"])
    pts = pts.assign(design=pts["design"] if "design" in pts.columns else "lr_scan")  # a schedule per design (Fig 22)
    points = pts[["run_id", "N", "design", "lr", "lr_sum", "loss"]].reset_index(drop=True)
    schedules = rec[["run_id", "step", "lr"]].merge(df[["run_id", "N"]], on="run_id")
    return LearningRateScan(points, schedules.sort_values(["run_id", "step"]).reset_index(drop=True))


# --------------------------------------------------------------------------------------------------
# Figs 20 right and 21: loss by position in the context


@dataclass(frozen=True)
class ContextLoss:
    """Per-token loss at chosen context positions: against N (Fig 21) and against step (Fig 20 right)."""

    final: pd.DataFrame
    """Final per-position loss: ``run_id``, ``N``, ``n_ctx``, ``T`` (1-based), ``loss``, ``short`` (a
    context_scan run shorter than the ladder's context)."""
    during: pd.DataFrame
    """The largest model's per-position loss at each evaluation: ``step``, ``T``, ``loss`` (may be empty)."""
    n_ctx: int
    """The ladder's context length."""
    largest: float
    """N of the model in ``during``."""


def log_positions(n_ctx: int) -> list[int]:
    """Positions 1, 2, 4, ... up to ``n_ctx`` (Kaplan Fig 21: 1, 2, 4, 8, 16, 64, 256, 1024)."""
    return sorted({2**k for k in range(int(np.log2(n_ctx)) + 1)} | {n_ctx})


def context_loss(runs: pd.DataFrame, positions: pd.DataFrame) -> ContextLoss:
    """The best run per size of the ladder and every shorter context_scan run, at log-spaced positions.

    ``positions`` is the long table of :func:`scalinglab.study.collect.collect_positions`: ``run_id``,
    ``step``, ``T``, ``loss`` and ``final`` (the summary's last evaluation).
    """
    law = law_runs(runs)
    law = law[~data_limited(law)]
    law = law.loc[law.groupby("N")["loss"].idxmin()] if not law.empty else law
    ctx = finished(runs)
    ctx = ctx[in_design(ctx, "context_scan")]
    chosen = pd.concat([law, ctx[~ctx["run_id"].isin(law["run_id"])]])
    final = positions[positions["final"] & positions["run_id"].isin(chosen["run_id"])]
    if final["run_id"].nunique() < 2:
        raise DataError("no per-position losses for 2 or more model sizes; train a ladder with eval.per_position = true.")
    n_ctx = int(law["n_ctx"].max()) if not law.empty else int(chosen["n_ctx"].max())
    final = final.merge(chosen[["run_id", "N", "n_ctx"]], on="run_id")
    final = final[final["T"].isin(set(log_positions(n_ctx)) | set(range(1, 9)))]
    final = final.assign(short=final["n_ctx"] < n_ctx)
    largest = float(law["N"].max()) if not law.empty else float("nan")
    big = law.loc[law["N"] == largest, "run_id"]
    during = positions[~positions["final"] & positions["run_id"].isin(big) & positions["T"].isin(log_positions(n_ctx))]
    cols = ["run_id", "N", "n_ctx", "T", "loss", "short"]
    return ContextLoss(final[cols].reset_index(drop=True), during[["step", "T", "loss"]].reset_index(drop=True), n_ctx, largest)
