"""Figures of the command line's results: ``--plot`` of ``fit``, ``backtest``, ``frontier``, ``predict``,
``plan`` and ``hparams``.

Each draws what its command printed, from the result it printed, and writes one figure; the result's
warnings go under the axes, so the picture says why its numbers may not hold as the text does.
Matplotlib is imported with this module, so only a command given ``--plot`` pays for it.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.atomic import os_errors
from scalinglab.errors import ScalinglabError
from scalinglab.laws.backtest import BacktestResult, parse_split
from scalinglab.laws.curves import Curve, CurvePrediction
from scalinglab.laws.fit import FitResult
from scalinglab.laws.plan import Plan, PlanningLaw, plan_budget
from scalinglab.report import figures as fg

WARNINGS_SHOWN = 4
"""Warnings written under a figure at most; the rest are counted (stderr and --json have them all)."""

WARNING_CHARS_PER_INCH = 17
"""Characters of a warning under a figure per inch of its width (7-point text): one line each, the finding and
the start of its fix."""


def _write(fig: Any, axes: list, path: str | Path, warnings: Iterable[Mapping[str, Any]]) -> Path:
    """Finish the axes, write the warnings under them (one line each) and save ``path`` (PNG, SVG or PDF by its suffix)."""
    found = list(dict.fromkeys(w["message"] for w in warnings if w.get("kind") != "note"))
    fg._finish(fig, axes)
    if found:
        width = int(WARNING_CHARS_PER_INCH * fig.get_figwidth())
        lines = [textwrap.shorten(f"⚠ {m}", width, placeholder=" ...") for m in found[:WARNINGS_SHOWN]]
        if len(found) > WARNINGS_SHOWN:
            lines.append(f"... and {len(found) - WARNINGS_SHOWN} more warnings (stderr, --json)")
        height = fig.get_figheight()
        fig.set_figheight(height + 0.22 * len(lines))
        fig.subplots_adjust(bottom=(0.12 * height + 0.22 * len(lines)) / fig.get_figheight())
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="tab:red", va="bottom")
    path = Path(path)
    try:
        with os_errors(path):  # checked when --plot was parsed; a folder may still refuse (a special file system, a full disk)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110)
    finally:
        fg.plt.close(fig)
    return path


def plot_prediction(pred: CurvePrediction, curve: Curve, path: str | Path, others: Iterable[Curve] = ()) -> Path:
    """The curve's points (left out as transient, fitted, after the fit), the law on its way to the step
    predicted with its interval, and the prediction with the loss observed there, if any; ``others``, the runs
    fitted with it (a joint fit or L(N, S)), faintly behind."""
    fig, (ax,) = fg._new(width=7.0)
    for i, other in enumerate(others):
        ax.plot(other.step, other.loss, color="gray", lw=0.8, alpha=0.5, label="the other runs given" if i == 0 else None)
    first, last = pred.fit_steps
    x, y = curve.step, curve.loss
    parts = ((x < first, "left out (transient)", {"facecolors": "none", "edgecolors": "gray"}),
             ((x >= first) & (x <= last), "fitted", {"color": "tab:blue"}),
             (x > last, "after the points fitted", {"facecolors": "none", "edgecolors": "tab:orange"}))  # fmt: skip
    for keep, label, style in parts:
        if keep.any():
            ax.scatter(x[keep], y[keep], s=14, zorder=3, label=label, **style)
    p = {k: np.asarray(v, dtype=float) for k, v in pred.path.items()}
    fg.law_line(ax, p["x"], p["loss"], pred.fit_steps, label=pred.law)
    ax.fill_between(p["x"], p["low"], p["high"], color="gray", alpha=0.2, lw=0, label=f"{pred.level:.0%} interval")
    lo, hi = pred.interval
    ax.errorbar([pred.at_step], [pred.loss], yerr=[[pred.loss - lo], [hi - pred.loss]], fmt="D", color="tab:red",
                capsize=4, zorder=4, label=f"predicted {pred.loss:.4g} [{lo:.4g}, {hi:.4g}]")
    if pred.observed is not None:
        ax.scatter([pred.at_step], [pred.observed], marker="*", s=120, color="black", zorder=5,
                   label=f"observed {pred.observed:.4g}")
    ax.set(xscale="log", yscale="log", xlabel=pred.x, ylabel="loss", title=f"{pred.run}: the loss at {pred.x} {pred.at_step:g}")
    return _write(fig, [ax], path, pred.warnings)


def _axis(fit: FitResult, preferred: str | None = None) -> str:
    """The input a fit's figure runs along: ``preferred`` when the rows have it, else C, else the first input."""
    data = fit.data
    for name in (preferred, "C", *fit.form.inputs):
        if name and name in data.columns and (data[name] > 0).all():
            return name
    return fit.form.inputs[0]


def plot_fit(fit: FitResult, path: str | Path, axis: str | None = None) -> Path:
    """The law against its runs: observed against predicted (each run's weight as its marker's size, the
    flagged outliers ringed), and the relative residual along ``axis`` (default C, else the first input)."""
    fig, (left, right) = fg._new(2, width=5.5)
    data = fit.data
    observed = data[fit.form.target].to_numpy(float)
    predicted = fit.predict(data)
    weight = data["weight"].to_numpy(float) if "weight" in data else np.ones(len(data))
    size = 8 + 24 * weight / max(float(weight.max()), 1e-12)
    outliers = {str(o["row"]) for o in fit.outliers}
    ringed = np.array([str(r) in outliers for r in data.index])
    lo, hi = float(min(observed.min(), predicted.min())), float(max(observed.max(), predicted.max()))
    left.scatter(observed, predicted, s=size, color="tab:blue", alpha=0.7, zorder=3, label="runs (size: weight)")
    left.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="prediction = observation")
    x = data[_axis(fit, axis)].to_numpy(float)
    rel = 100 * (predicted / observed - 1)
    right.scatter(x, rel, s=size, color="tab:blue", alpha=0.7, zorder=3)
    if ringed.any():
        for ax, (a, b) in ((left, (observed, predicted)), (right, (x, rel))):
            ax.scatter(a[ringed], b[ringed], s=90, facecolors="none", edgecolors="tab:red", zorder=4, label="flagged outlier")
    right.axhline(0, color="black", lw=0.8)
    target = fit.form.target
    left.set(xlabel=f"observed {target}", ylabel=f"predicted {target}", title=f"{fit.label}: {len(data)} rows fitted")
    right.set(xscale="log", xlabel=_axis(fit, axis), ylabel="prediction / observation − 1 (%)",
              title="relative residuals")
    return _write(fig, [left, right], path, fit.warnings)


def plot_backtest(result: BacktestResult, path: str | Path) -> Path:
    """Fit the cheaper runs, predict the rest: the loss along the split's column, the runs fitted and the held-out
    ones beside their predictions and intervals; and each held-out run's relative error."""
    fig, (left, right) = fg._new(2, width=5.5)
    fit, table = result.fit, result.table
    column = parse_split(result.split).column
    column = column if column in table.columns else _axis(fit)
    target = fit.form.target
    if column in fit.data.columns:
        train = fit.data
        left.scatter(train[column], train[target], s=12, facecolors="none", edgecolors="gray", label=f"fitted ({result.split})")
    x = table[column].to_numpy(float)
    pred = table["predicted"].to_numpy(float)
    yerr = np.vstack([pred - table["lo"].to_numpy(float), table["hi"].to_numpy(float) - pred])
    covered = table["covered"].to_numpy(bool)
    left.scatter(x, table["actual"], s=18, color="black", zorder=4, label="held out: observed")
    left.errorbar(x, pred, yerr=yerr, fmt="none", ecolor="tab:red", alpha=0.5, zorder=3)
    left.scatter(x, pred, s=14, marker="D", color="tab:red", zorder=3, label=f"predicted, {result.level:.0%} interval")
    left.set(xscale="log", yscale="log", xlabel=column, ylabel=target, title=f"{fit.label}: backtest on {result.split}")
    rel = 100 * table["rel_error"].to_numpy(float)
    half = 100 * yerr / table["actual"].to_numpy(float)
    right.errorbar(x, rel, yerr=half, fmt="none", ecolor="gray", alpha=0.4)
    right.scatter(x[covered], rel[covered], s=16, color="tab:blue", zorder=3, label="inside its interval")
    right.scatter(x[~covered], rel[~covered], s=16, color="tab:red", zorder=3, label="outside its interval")
    right.axhline(0, color="black", lw=0.8)
    right.set(xscale="log", xlabel=column, ylabel="prediction / observation − 1 (%)",
              title=f"MAE {result.mae:.3g}, max {result.max_rel_error:.2%}, coverage {result.coverage:.0%}")
    return _write(fig, [left, right], path, result.warnings)


def plot_frontier(out: Mapping[str, Any], table: Any, path: str | Path) -> Path:
    """The runs the frontier was found in with its optima (loss against N at each budget; for the envelope, loss
    against C coloured by N), and N_opt against C with the power law N_opt ∝ C^a and its interval."""
    from scalinglab.laws.frontier import group_budgets

    fig, (left, right) = fg._new(2, width=5.5)
    optima = {k: np.array([o[k] for o in out["optima"]], dtype=float) for k in ("C", "N_opt", "loss")}
    c, n, loss = (table[k].to_numpy(float) for k in ("C", "N", "loss"))
    if out["approach"] == "envelope":
        colour = fg._cmap(n)
        left.scatter(c, loss, s=6, c=[colour(v) for v in n], alpha=0.5, label="runs' points (colour: N)")
        left.plot(optima["C"], optima["loss"], "D-", color="tab:red", ms=4, label="envelope")
        left.set(xlabel="C (FLOPs)")
    else:
        budgets = group_budgets(c)
        colour = fg._cmap(budgets)
        for b in np.unique(budgets):
            at = budgets == b
            order = np.argsort(n[at])
            left.plot(n[at][order], loss[at][order], "o-", ms=3, lw=0.8, color=colour(b))
        left.scatter(optima["N_opt"], optima["loss"], marker="D", s=30, color="tab:red", zorder=4, label="optimum per budget")
        left.plot([], [], "o-", ms=3, lw=0.8, color="gray", label="runs of one budget (colour: C)")
        left.set(xlabel="N")
    left.set(xscale="log", yscale="log", ylabel="loss", title=f"approach {out['approach']}: {len(table)} rows")
    spans = [o.get("N_opt_interval") for o in out["optima"]]
    if any(s is not None for s in spans):
        lo = np.array([s[0] if s else v for s, v in zip(spans, optima["N_opt"])])
        hi = np.array([s[1] if s else v for s, v in zip(spans, optima["N_opt"])])
        right.errorbar(optima["C"], optima["N_opt"], yerr=[optima["N_opt"] - lo, hi - optima["N_opt"]], fmt="none",
                       ecolor="gray", alpha=0.6)
    right.scatter(optima["C"], optima["N_opt"], marker="D", s=24, color="tab:red", zorder=3, label="optima")
    grid = np.geomspace(optima["C"].min(), optima["C"].max(), 50)
    a = float(out["a"])
    offset = float(np.mean(np.log(optima["N_opt"]) - a * np.log(optima["C"])))  # the line through the optima at slope a
    interval = out.get("a_interval")
    band = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
    right.plot(grid, np.exp(offset + a * np.log(grid)), color="black", lw=1.4, label=rf"$N_{{opt}}\propto C^{{{a:.3f}}}${band}")
    right.set(xscale="log", yscale="log", xlabel="C (FLOPs)", ylabel="compute-optimal N", title="N_opt against compute")
    return _write(fig, [left, right], path, out["warnings"])


PLAN_GRID = 40
"""Budgets the plan's figure plans along its frontier (without refits: the loss interval only)."""


def plot_plan(plan: Plan, law: PlanningLaw, path: str | Path) -> Path:
    """The law's compute-optimal frontier around the plan: the loss against C with its interval, and N_opt and
    D_opt against C; the fitted runs' range of C shaded, the plan marked (N with its interval where refits give one)."""
    fig, (left, right) = fg._new(2, width=5.5)
    fitted = law.data_range.get("C")
    ends = [plan.budget, *(fitted or ())]
    grid = np.geomspace(min(ends) / 10, max(ends) * 10, PLAN_GRID)
    bare = dataclasses.replace(law, param_samples=[])  # refits for N's interval at every budget would take minutes
    along = []
    for c in grid:
        try:
            along.append(plan_budget(bare, float(c), plan.interval_level or 0.95))
        except ScalinglabError:  # a budget the law refuses (too few tokens per parameter...): a gap in the line
            continue
    c = np.array([p.budget for p in along])
    loss = np.array([p.loss for p in along])
    left.plot(c, loss, color="black", lw=1.4, label=textwrap.shorten(f"{law.form} ({law.source})", 48, placeholder=" ...)"))
    bands = [p.loss_interval for p in along]
    if along and all(b is not None for b in bands):
        left.fill_between(c, [b[0] for b in bands], [b[1] for b in bands], color="gray", alpha=0.2, lw=0,
                          label=f"{(plan.interval_level or 0.95):.0%} interval")
    lo, hi = plan.loss_interval or (plan.loss, plan.loss)
    left.errorbar([plan.budget], [plan.loss], yerr=[[plan.loss - lo], [hi - plan.loss]], fmt="D", color="tab:red",
                  capsize=4, zorder=4, label=f"plan: loss {plan.loss:.4g}")
    left.set(xscale="log", yscale="log", xlabel="C (FLOPs)", ylabel="predicted loss", title=f"C = {plan.budget:.3g} FLOPs")
    sizes = [(p.budget, p.n_params, p.tokens) for p in along if p.n_params is not None and p.tokens is not None]
    if sizes:
        sc, sn, sd = (np.array(v, dtype=float) for v in zip(*sizes))
        right.plot(sc, sn, color="tab:blue", label="N_opt")
        right.plot(sc, sd, color="tab:green", label="D_opt (tokens)")
        n_err = None
        if plan.n_params_interval:
            n_err = [[plan.n_params - plan.n_params_interval[0]], [plan.n_params_interval[1] - plan.n_params]]
        right.errorbar([plan.budget], [plan.n_params], yerr=n_err, fmt="D", color="tab:blue", capsize=4, zorder=4,
                       label=f"plan: N {plan.n_params:.3g}")
        right.scatter([plan.budget], [plan.tokens], marker="D", color="tab:green", zorder=4, label=f"plan: D {plan.tokens:.3g}")
    else:
        right.text(0.5, 0.5, f"'{law.form}' is a law of compute alone:\nit gives the loss, not N or D", ha="center",
                   va="center", transform=right.transAxes)
    right.set(xscale="log", yscale="log", xlabel="C (FLOPs)", ylabel="parameters, tokens", title="compute-optimal N and D")
    if fitted:
        for ax in (left, right):
            ax.axvspan(*fitted, color="tab:blue", alpha=0.08, label="C of the runs fitted")
    return _write(fig, [left, right], path, plan.warnings)


def plot_hparams(fit: Any, grid: pd.DataFrame, path: str | Path) -> Path:
    """η_opt against N and against D, each cell's optimum with its interval and the fitted law through them, as the
    report draws it (report.hparams.fig_lr_opt, of the fit and the ``grid`` it was fitted on), the fit's warnings under it."""
    from scalinglab.report.hparams import HyperParameters, fig_lr_opt

    fig = fig_lr_opt(HyperParameters(fit, grid))
    return _write(fig, fig.axes, path, fit.warnings)
