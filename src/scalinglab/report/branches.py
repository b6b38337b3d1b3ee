"""The report's cooldown-branch section: which points of the laws are branches of a wsd_ladder, and what they cost.

A wsd_ladder (study.designs.WSDLadder) trains one constant-LR run per size and branches it into short
decays at several D (Hägele et al. 2024). The branches are points of L(N, D), L(D) and L(N)
(study.selection); their stable-phase parents are none. The figure draws each parent's evaluation
curve against tokens (dashed) and each branch from the parent's loss where its decay starts to its
final loss (filled), and the caption lists the branch points and the compute they saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scalinglab.errors import DataError
from scalinglab.report import figures as fg
from scalinglab.study.selection import finished, is_branch


@dataclass(frozen=True)
class CooldownBranches:
    """The finished branches of a study and their parents' stable-phase curves."""

    points: pd.DataFrame
    """One row per branch: ``run_id``, ``name``, ``N``, ``D``, ``loss`` (final), ``start_tokens`` (where its
    decay starts), ``start_loss`` (the parent's loss there, interpolated between its evaluations), ``parent``."""
    stable: pd.DataFrame
    """The parents' evaluations: ``run_id``, ``N``, ``tokens``, ``loss``."""
    compute_ratio: float
    """Compute of the branches and their parents (6ND, each step once) over that of the same points as separate runs."""


def cooldown_branches(runs: pd.DataFrame, curves: pd.DataFrame) -> CooldownBranches:
    """The branches of the study's wsd_ladder designs; DataError (the section's note) without one."""
    done = finished(runs)
    branches = done[is_branch(done)]
    if branches.empty:
        raise DataError("no finished cooldown branch in this study; add a wsd_ladder design (see studies/wsd_ladder.toml)")
    parents = runs[runs["run_id"].isin(branches["parent"])]
    stable = curves[curves["run_id"].isin(parents["run_id"])][["run_id", "tokens", "loss"]]
    stable = stable.merge(parents[["run_id", "N"]], on="run_id").sort_values(["run_id", "tokens"])
    start = branches["branch_step"] * branches["batch_tokens"]
    start_loss = [_loss_at(stable[stable["run_id"] == p], t) for p, t in zip(branches["parent"], start)]
    points = branches.assign(start_tokens=start, start_loss=start_loss)
    points = points[["run_id", "name", "N", "D", "loss", "start_tokens", "start_loss", "parent"]]
    spent = float((6 * points["N"] * (points["D"] - points["start_tokens"])).sum() + parents["C"].sum())
    ratio = spent / float((6 * points["N"] * points["D"]).sum())
    return CooldownBranches(points.sort_values(["N", "D"]).reset_index(drop=True), stable.reset_index(drop=True), ratio)


def _loss_at(curve: pd.DataFrame, tokens: float) -> float:
    """The stable phase's loss at ``tokens``, interpolated in log-log between its evaluations (NaN outside them)."""
    if curve.empty or not curve["tokens"].min() <= tokens <= curve["tokens"].max():
        return float("nan")
    x, y = np.log(curve["tokens"].to_numpy(float)), np.log(curve["loss"].to_numpy(float))
    return float(np.exp(np.interp(np.log(tokens), x, y)))


def caption_branches(a: CooldownBranches) -> str:
    p = a.points
    drop = (p["start_loss"] - p["loss"]).dropna()
    names = ", ".join(p["name"])
    k = p["parent"].nunique()
    text = (f"{len(p)} points of the laws are cooldown branches of {k} stable-phase run{'s' if k > 1 else ''} (wsd_ladder, "
            f"Hägele et al. 2024), at {p['N'].nunique()} sizes and D from {p['D'].min():.3g} to {p['D'].max():.3g} tokens; "
            f"they cost {a.compute_ratio:.0%} of the same points as separate runs (6ND). ")
    if len(drop):
        text += f"Each decay lowers the loss {drop.min():.3g} to {drop.max():.3g} nats below the stable phase at its start. "
    return text + f"The stable phases (dashed) are no points of any law. Branch points: {names}."


def fig_branches(a: CooldownBranches) -> Figure:
    """Loss against tokens: each parent's stable phase (dashed), each branch's decay from its start to its final loss."""
    fig, (ax,) = fg._new(width=7.0)
    colour = fg._cmap(a.points["N"].to_numpy(float))
    for n, g in a.stable.groupby("N"):
        ax.plot(g["tokens"], g["loss"], ls="--", lw=1, color=colour(n), label=f"N = {n:.3g}, stable phase")
    for r in a.points.itertuples():
        if np.isfinite(r.start_loss):
            ax.plot([r.start_tokens, r.D], [r.start_loss, r.loss], lw=1.2, color=colour(r.N))
    for n, g in a.points.groupby("N"):
        ax.scatter(g["D"], g["loss"], color=colour(n), zorder=3, s=26, label=f"N = {n:.3g}, branches ({len(g)})")
    ax.set(xscale="log", yscale="log", xlabel="tokens D", ylabel=fg.LOSS, title="Cooldown branches of a wsd_ladder")
    return fg._finish(fig, [ax])
