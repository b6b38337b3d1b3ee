"""The report's data-constrained section: loss against epochs, effective against actual tokens, the returns of repeats.

The analysis fits the ``data_constrained`` law (Muennighoff et al. 2023) to the runs of a study's
``repeat`` designs (selected by :mod:`scalinglab.study.selection`, as ``fit STUDY --law data_constrained``)
and the figures draw it: the measured loss of each size and U against epochs with the law; the law's
loss against epochs at fixed compute for each U; the effective tokens D' against the tokens D; and
what one more epoch is worth, against the paper's R_D* ≈ 15.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scalinglab.constants import MUENNIGHOFF_FRESH_EPOCHS, MUENNIGHOFF_R_STAR
from scalinglab.errors import DataError, FitError
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import effective_sizes
from scalinglab.laws.repeat import repetition_identified
from scalinglab.report import figures as fg
from scalinglab.study.selection import in_design, select_for_law

BOOTSTRAP = 100
"""Bootstrap refits in the report (the CLI's default is 200)."""
LAW = "data_constrained"


@dataclass(frozen=True)
class Repetition:
    """The fitted data-constrained law of a study and the runs it came from."""

    fit: FitResult
    runs: pd.DataFrame
    """The repeat runs: N, D, U, epochs (D/U), loss, and the fitted N' and D'."""
    identified: bool
    """Whether the runs pin R_D* down (:func:`scalinglab.laws.repeat.repetition_identified`)."""


def repetition(runs: pd.DataFrame, bootstrap: int = BOOTSTRAP) -> Repetition:
    """``data_constrained`` fitted to the runs of the study's repeat designs; DataError (the section's note) without one."""
    if "kind" not in runs.columns or not in_design(runs, "repeat").any():
        raise DataError("no repeat design in this study: add one (see studies/repeat.toml) for the data-constrained law")
    rows, _ = select_for_law(runs[in_design(runs, "repeat")], LAW)
    rows = rows.dropna(subset=["N", "D", "U", "loss"]).reset_index(drop=True)
    fit = fit_law(LAW, rows, bootstrap=bootstrap)
    n_eff, d_eff = effective_sizes(fit.params, rows["N"], rows["D"], rows["U"])
    rows = rows.assign(epochs=rows["D"] / rows["U"], N_eff=n_eff, D_eff=d_eff)
    return Repetition(fit, rows, repetition_identified(fit))


def _interval(a: Repetition, name: str) -> str:
    lo, hi = a.fit.intervals.get(name, (float("nan"), float("nan")))
    return f"{a.fit.params[name]:.3g} [{lo:.3g}, {hi:.3g}]"


def four_epoch_penalty(a: Repetition) -> float:
    """Loss of 4 epochs over U/4 against U fresh tokens, median over the study's sizes at its largest U (the paper's ≈ 0)."""
    u = float(a.runs["U"].max())
    n = a.runs["N"].unique().astype(float)
    e = MUENNIGHOFF_FRESH_EPOCHS
    X = lambda unique: pd.DataFrame({"N": n, "D": np.full_like(n, u), "U": np.full_like(n, unique)})  # noqa: E731
    return float(np.median(a.fit.predict(X(u / e)) - a.fit.predict(X(u))))


def caption_epochs(a: Repetition) -> str:
    rd, rn = MUENNIGHOFF_R_STAR["R_D_star"], MUENNIGHOFF_R_STAR["R_N_star"]
    text = (f"{len(a.runs)} runs at {a.runs['N'].nunique()} sizes and {a.runs['U'].nunique()} unique-data sizes U, "
            f"{a.runs['epochs'].min():.3g} to {a.runs['epochs'].max():.3g} epochs; R_D* = {_interval(a, 'R_D_star')}, "
            f"R_N* = {_interval(a, 'R_N_star')} (Muennighoff et al. 2023: {rd}, {rn} on C4). "
            f"{MUENNIGHOFF_FRESH_EPOCHS} epochs over U/{MUENNIGHOFF_FRESH_EPOCHS} cost "
            f"{four_epoch_penalty(a):+.3g} nats against U fresh tokens here")
    if not a.identified:
        text += ("; R_D* is not identified by these runs (its interval spans a decade or it sits at a bound): "
                 "more epochs (to 30-60) at two or more U would pin it down")
    return text + "."


def caption_fixed_compute(a: Repetition) -> str:
    return ("The law's loss at two fixed budgets (the runs' median and largest C = 6ND) against epochs over each U "
            "(N = C/(6·epochs·U)); dashed: the budget's compute-optimal loss on fresh data, where the law has one.")


def caption_effective(a: Repetition) -> str:
    return (f"Effective tokens D' (Muennighoff eq 5) against tokens D for each U: D' = D while nothing repeats, then "
            f"saturates at U(1 + R_D*) = U × {1 + a.fit.params['R_D_star']:.3g}; dotted: D' = D.")


def caption_returns(a: Repetition) -> str:
    return ("What one more epoch is worth in fresh tokens, exp(-R/R_D*) after R repetitions: this study's R_D* "
            f"(band: its {a.fit.level:.0%} interval) beside Muennighoff et al.'s {MUENNIGHOFF_R_STAR['R_D_star']}.")


def _by_series(a: Repetition):
    colour = fg._cmap(a.runs["N"].to_numpy(float))
    for (n, u), g in a.runs.sort_values("epochs").groupby(["N", "U"]):
        yield n, u, g, colour(n)


def fig_epochs(a: Repetition) -> Figure:
    """Measured final loss of each (N, U) against epochs, with the fitted law at the same N and U."""
    fig, (ax,) = fg._new(width=7.0)
    markers = dict(zip(sorted(a.runs["U"].unique()), "os^vD"))
    for n, u, g, col in _by_series(a):
        ax.scatter(g["epochs"], g["loss"], color=col, marker=markers.get(u, "o"), zorder=3, label=f"N {n:.3g}, U {u:.3g}")
        e = np.geomspace(g["epochs"].min(), g["epochs"].max(), 60)
        X = pd.DataFrame({"N": np.full_like(e, n), "D": e * u, "U": np.full_like(e, u)})
        ax.plot(e, a.fit.predict(X), color=col, lw=1)
    ax.set(xscale="log", xlabel="epochs over U (D / U)", ylabel=fg.LOSS, title="Loss against epochs")
    return fg._finish(fig, [ax])


def fig_fixed_compute(a: Repetition) -> Figure:
    """The law's loss against epochs at fixed compute, one line per U, beside the fresh-data optimum."""
    from scalinglab.laws.frontier import optimal_allocation

    fig, (ax,) = fg._new(width=7.0)
    c_all = 6 * a.runs["N"] * a.runs["D"]
    e = np.geomspace(1, max(64.0, 4 * a.runs["epochs"].max()), 80)
    for c, ls in ((float(c_all.median()), "-"), (float(c_all.max()), "-.")):
        try:
            fresh = optimal_allocation(lambda n, d: a.fit.predict(pd.DataFrame({"N": n, "D": d, "U": d})), c)
            ax.axhline(float(fresh.loss), color="gray", ls="--", lw=1)
        except FitError:  # a law with no compute-optimal size (a floorless fit): the lines without the reference
            pass
        for u in sorted(a.runs["U"].unique()):
            X = pd.DataFrame({"N": c / (6 * e * u), "D": e * u, "U": np.full_like(e, u)})
            ax.plot(e, a.fit.predict(X), ls=ls, label=f"C {c:.3g}, U {u:.3g}")
    ax.set(xscale="log", xlabel="epochs over U", ylabel=fg.LOSS, title="Loss against epochs at fixed compute")
    return fg._finish(fig, [ax])


def fig_effective(a: Repetition) -> Figure:
    """D' against D for each U, the runs on their curves."""
    fig, (ax,) = fg._new()
    d = fg._grid(a.runs["D"], pad=2.0)
    for u in sorted(a.runs["U"].unique()):
        _, d_eff = effective_sizes(a.fit.params, np.ones_like(d), d, np.full_like(d, u))
        line = ax.plot(d, d_eff, lw=1.2, label=f"U {u:.3g}")[0]
        g = a.runs[a.runs["U"] == u]
        ax.scatter(g["D"], g["D_eff"], color=line.get_color(), zorder=3)
    ax.plot(d, d, ls=":", color="gray")
    ax.set(xscale="log", yscale="log", xlabel="tokens D", ylabel="effective tokens D'", title="Effective against actual tokens")
    return fg._finish(fig, [ax])


def fig_returns(a: Repetition) -> Figure:
    """The fresh-token value of the next epoch, exp(-R/R_D*), for this study's and the paper's R_D*."""
    fig, (ax,) = fg._new()
    r = np.linspace(0, max(40.0, a.runs["epochs"].max()), 200)
    rd = a.fit.params["R_D_star"]
    ax.plot(r + 1, np.exp(-r / rd), color="black", label=f"this study, R_D* = {rd:.3g}")
    lo, hi = a.fit.intervals.get("R_D_star", (rd, rd))
    ax.fill_between(r + 1, np.exp(-r / lo), np.exp(-r / hi), color="black", alpha=0.15, lw=0)
    paper = MUENNIGHOFF_R_STAR["R_D_star"]
    ax.plot(r + 1, np.exp(-r / paper), ls="--", color="tab:red", label=f"Muennighoff et al. 2023, R_D* = {paper}")
    ax.set(xlabel="epoch", ylabel="value of its tokens (fresh = 1)", ylim=(0, 1.05), title="The returns of repetition")
    return fg._finish(fig, [ax])
