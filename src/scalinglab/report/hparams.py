"""The report's hyper-parameter section: LR x batch landscapes, η_opt against N and D, B_opt beside B_crit(L).

The analysis fits :mod:`scalinglab.laws.hparams` to a study's ``hp_grid`` designs (each design's
cells; the online noise scale from the metrics records where measured; the study's own B_crit(L)
where it has a batch scan) and the three figures draw it. Kaplan's Table 5 B_crit is not used: its
losses are in GPT-2's tokenizer on WebText2, not comparable with this study's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scalinglab.laws.hparams import HparamsFit, fit_hparams, grid_from_runs
from scalinglab.report import figures as fg

BOOTSTRAP = 100
"""Bootstrap refits per cell in the report (the CLI's default is 200)."""


@dataclass(frozen=True)
class HyperParameters:
    """The fitted hyper-parameter laws of a study and the runs they came from."""

    fit: HparamsFit
    grid: pd.DataFrame
    """The hp_grid runs: N, D, lr, batch (tokens), loss, cell."""


def hyper_parameters(runs: pd.DataFrame, records: pd.DataFrame | None = None, bcrit: Any = None) -> HyperParameters:
    """η_opt(N, D) and B_opt(N, D) from the study's hp_grid runs; ``bcrit`` is the study's CriticalBatchSize, if any."""
    grid = grid_from_runs(runs, None, records)
    law = None if bcrit is None else bcrit.law
    return HyperParameters(fit_hparams(grid, bootstrap=BOOTSTRAP, bcrit=law), grid)


def _sci(x: float) -> str:
    """A cell's N or D as m×10^e, to 3 digits (a geometric mean of 1e7s is 9.99...e6: rounded first)."""
    e = int(np.floor(np.log10(float(f"{x:.3g}"))))
    return f"{float(f'{x:.3g}') / 10**e:.3g}\\times10^{{{e}}}"


def caption_landscape(a: HyperParameters) -> str:
    edge = sum(bool(c.at_edge) for c in a.fit.cells)
    return (f"Final loss over the LR x batch grid of each of {len(a.fit.cells)} cells (colour: loss above the cell's best); "
            f"the star is the optimum of the smooth surface, the bar its {a.fit.settings['level']:.0%} bootstrap interval"
            + (f"; {edge} cell(s) have their optimum on the grid's edge." if edge else "."))


def _law_text(law, name: str) -> str:
    if law is None:
        return f"no {name} law (see the warnings)"
    parts = [f"N^{law.N_exp:+.3f}" if law.N_exp is not None else "", f"D^{law.D_exp:+.3f}" if law.D_exp is not None else ""]
    return f"{name} = {law.coef:.3g}·{'·'.join(p for p in parts if p)} over {law.n_cells} cells"


def _law_warnings(a: HyperParameters, target: str) -> str:
    """The law's own warnings (not each cell's), as a sentence for its caption."""
    found = [w["message"] for w in a.fit.warnings
             if (w["param"] or "").split(".")[0] == target and not w["message"].startswith(("cell ", "cell(s) "))]  # fmt: skip
    return "" if not found else " Warning: " + " ".join(m[0].upper() + m[1:] for m in found)


def caption_lr(a: HyperParameters) -> str:
    return (f"{_law_text(a.fit.lr, 'η_opt')} (Step Law, Li et al. 2025: 1.79·N^-0.713·D^0.307); hollow markers are "
            "edge optima, left out." + _law_warnings(a, "lr"))


def caption_batch(a: HyperParameters) -> str:
    s = f"{_law_text(a.fit.batch, 'B_opt')}{' tokens' if a.fit.batch is not None else ''} (Step Law: 0.58·D^0.571 tokens)"
    for key, label in (("B_opt_over_B_crit", "B_crit(L)"), ("B_opt_over_B_noise", "B_simple")):
        if key in a.fit.comparison:
            s += f"; median B_opt / {label} = {a.fit.comparison[key]:.3g}"
    return s + "." + _law_warnings(a, "batch")


def fig_landscape(a: HyperParameters) -> Figure:
    """One panel per cell: every run at (LR, batch), coloured by its loss above the cell's best, and the optimum."""
    cells = a.fit.cells
    cols = min(4, len(cells))
    rows = int(np.ceil(len(cells) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1.2, 2.9 * rows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    top = max(0.01, float(np.nanquantile([v / c.best_loss - 1 for c in cells for v in c.grid["loss"]], 0.8)))
    for i, (ax, c) in enumerate(zip(flat, cells)):
        g = pd.DataFrame(c.grid)
        excess = g["loss"] / c.best_loss - 1
        sc = ax.scatter(g["lr"], g["batch"], c=np.clip(excess, 0, top), cmap="viridis_r", vmin=0, vmax=top, s=30, zorder=2)
        b = c.batch if c.batch is not None else c.best_batch
        ax.plot([c.lr], [b], marker="*", ms=14, color="tab:red", zorder=3)
        ax.plot(c.lr_interval, [b, b], color="tab:red", lw=1.5, zorder=3)
        if c.batch_interval is not None:
            ax.plot([c.lr, c.lr], c.batch_interval, color="tab:red", lw=1.5, zorder=3)
        ax.set(xscale="log", yscale="log", title=f"N = ${_sci(c.N)}$, D = ${_sci(c.D)}$", xlabel="peak LR")
        ax.set_ylabel("batch (tokens)" if i % cols == 0 else "")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.title.set_fontsize(9)
    for ax in flat[len(cells):]:
        ax.set_visible(False)
    fig.colorbar(sc, ax=flat[: len(cells)], label=f"loss / best − 1 (clipped at {top:.2g})", shrink=0.8)
    return fig


def _points(a: HyperParameters, target: str) -> pd.DataFrame:
    rows = [{"N": c.N, "D": c.D, "value": getattr(c, target), "lo": getattr(c, f"{target}_interval")[0],
             "hi": getattr(c, f"{target}_interval")[1], "edge": target in c.at_edge, "B_crit": c.B_crit, "B_noise": c.B_noise}
            for c in a.fit.cells if getattr(c, target) is not None]  # fmt: skip
    return pd.DataFrame(rows)


def _scatter(ax: plt.Axes, p: pd.DataFrame, x: str, colour_by: str, label: str) -> None:
    p = p.assign(**{colour_by: p[colour_by].map(lambda v: float(f"{v:.3g}"))})  # one key per size, not per float
    colour = fg._cmap(p[colour_by].to_numpy(float))
    for _, r in p.iterrows():
        col = colour(r[colour_by])
        ax.errorbar([r[x]], [r["value"]], yerr=[[r["value"] - r["lo"]], [r["hi"] - r["value"]]], fmt="o", color=col,
                    mfc="none" if r["edge"] else col, capsize=2, zorder=3)
    for v in sorted(p[colour_by].unique()):
        ax.plot([], [], "o", color=colour(v), label=f"{label} = ${_sci(v)}$")


def fig_lr_opt(a: HyperParameters) -> Figure:
    """η_opt against N (one colour per D) and against D (one colour per N), with the law at each."""
    p = _points(a, "lr")
    fig, axes = fg._new(2, width=5.0)
    law = a.fit.lr
    for ax, x, other, name in ((axes[0], "N", "D", "N (non-embedding parameters)"), (axes[1], "D", "N", "D (tokens)")):
        _scatter(ax, p, x, other, other)
        if law is not None:
            colour = fg._cmap(p[other].to_numpy(float))
            xs = fg._grid(p[x], pad=1.3)
            for v in sorted(p[other].unique()):
                args = (xs, np.full_like(xs, v)) if x == "N" else (np.full_like(xs, v), xs)
                fg.law_line(ax, xs, law.predict(*args), tuple(law.N_range if x == "N" else law.D_range), color=colour(v), lw=1)
        ax.set(xscale="log", yscale="log", xlabel=name, ylabel="optimal peak LR", title=f"η_opt against {x}")
    return fg._finish(fig, axes)


def fig_batch_opt(a: HyperParameters) -> Figure:
    """B_opt against D, beside B_crit(L) at each cell's best loss and the online noise scale B_simple."""
    p = _points(a, "batch")
    if p.empty:
        raise ValueError("no cell has a batch optimum (every cell trained one batch size)")
    fig, (ax,) = fg._new()
    _scatter(ax, p, "D", "N", "N")
    law = a.fit.batch
    if law is not None:
        colour = fg._cmap(p["N"].to_numpy(float))
        xs = fg._grid(p["D"], pad=1.3)
        for v in sorted(p["N"].unique()):
            fg.law_line(ax, xs, law.predict(np.full_like(xs, v), xs), tuple(law.D_range), color=colour(v), lw=1)
    for col, marker, label in (("B_crit", "x", "B_crit(L) at the cell's best loss (eq 1.4)"), ("B_noise", "s", "noise scale B_simple")):
        q = p.dropna(subset=[col])
        if not q.empty:
            ax.scatter(q["D"], q[col], marker=marker, color="tab:red", zorder=4, label=label)
    ax.set(xscale="log", yscale="log", xlabel="D (tokens)", ylabel="batch (tokens per step)", title="B_opt against D")
    return fg._finish(fig, [ax])
