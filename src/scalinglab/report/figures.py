"""The paper's figures, one function per figure, drawn from the analyses of a real study.

Each ``fig_*`` function takes the dataclass of one analysis (:mod:`scalinglab.report.analyses`) and
returns a matplotlib Figure: labelled axes with units, measured points, and every fitted law drawn
as a line with its equation (fitted constants) in the legend. :func:`save` writes PNG and SVG. The
Agg backend is used, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalinglab.constants import KAPLAN_FIG3, PF_DAY  # noqa: E402
from scalinglab.errors import DataError  # noqa: E402
from scalinglab.report.analyses import (  # noqa: E402
    Approaches,
    Backtest,
    ComputeFrontier,
    CriticalBatchSize,
    EmbeddingCollapse,
    LearningCurves,
    LossVsD,
    LossVsN,
    LossVsND,
    PerPosition,
    SampleEfficiency,
    ShapeInvariance,
    Transfer,
)
from scalinglab.report.derived import (  # noqa: E402
    ComputeSplit,
    DataComputeIntersection,
    EarlyStopping,
    ExcessCompute,
    LogFit,
)
from scalinglab.report.families import DepthGeneralisation, LSTMComparison, RecurrentComparison  # noqa: E402
from scalinglab.report.scans import ContextLoss, LearningRateScan, log_positions  # noqa: E402

LOSS = "validation loss (nats/token)"
FIT = {"color": "black", "lw": 1.6}
"""A fitted law: solid over the data it was fitted on, dashed beyond (see :func:`law_line`)."""


PLAIN_EXPONENTS = range(-2, 4)
"""Decimal exponents written as plain numbers (0.01 to 9999) by :func:`sci` and scientific tick labels."""


def sci(x: float, digits: int = 2) -> str:
    """``x`` as mathtext, e.g. 8.8e13 -> '8.8\\times10^{13}' (no rounding of the stored constant)."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    exp = int(np.floor(np.log10(abs(x))))
    if exp in PLAIN_EXPONENTS:
        return f"{x:.{digits + 1}g}"
    return rf"{x / 10**exp:.{digits}g}\times10^{{{exp}}}"


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def sci_text(x: float, digits: int = 2) -> str:
    """``x`` as plain text for tick labels, e.g. 8.8e13 -> '8.8×10¹³', 1e5 -> '10⁵': Unicode superscripts need
    no mathtext parse (matplotlib's parser took about 2.4 s of the demo's report on tick labels alone)."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    exp = int(np.floor(np.log10(abs(x))))
    mantissa = f"{abs(x) / 10**exp:.{digits}g}"
    if float(mantissa) >= 10:  # 9.99e5 to two digits is 1.0e6, not 10×10⁵
        exp += 1
        mantissa = f"{abs(x) / 10**exp:.{digits}g}"
    text = "10" + str(exp).translate(SUPERSCRIPT) if mantissa == "1" else f"{mantissa}×10{str(exp).translate(SUPERSCRIPT)}"
    return "−" + text if x < 0 else text  # the minus sign matplotlib's own tick labels use


def _new(ncols: int = 1, width: float = 6.0) -> tuple[Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 4.4), squeeze=False)
    return fig, list(axes[0])


def _cmap(values: np.ndarray) -> Callable[[float], tuple]:
    """Colour by log value (model size, batch size...) with viridis."""
    lo, hi = np.log(np.min(values)), np.log(np.max(values))
    cm = plt.get_cmap("viridis")
    return lambda v: cm(0.0 if hi == lo else (np.log(v) - lo) / (hi - lo) * 0.9)


def _grid(x: np.ndarray, pad: float = 1.5, num: int = 200) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.geomspace(x.min() / pad, x.max() * pad, num)


def law_line(ax: plt.Axes, x: np.ndarray, y: np.ndarray, fitted: tuple[float, float], label: str | None = None,
             **style) -> None:
    """Draw a law solid over the range it was fitted on (``fitted``) and dashed where it extrapolates."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = (x >= fitted[0] * (1 - 1e-9)) & (x <= fitted[1] * (1 + 1e-9))
    style = {**FIT, **style}
    line = ax.plot(np.where(inside, x, np.nan), y, label=label, **{**style, "ls": "-"})[0]
    if (~inside).any():
        ax.plot(np.where(inside, np.nan, x), y, **{**style, "ls": "--", "color": line.get_color()})


def _format_log_axis(axis: matplotlib.axis.Axis, lo: float, hi: float) -> None:
    """Decade labels (10^n) when the axis spans a decade or more, else a few plain numbers; never minor labels."""
    if lo > 0 and hi / lo >= 10:
        axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, numticks=7))
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _pos: sci_text(x)))
    else:
        _plain_ticks(axis, lo, hi, nbins=4)
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _plain_ticks(axis: matplotlib.axis.Axis, lo: float, hi: float, nbins: int) -> None:
    """A few round ticks labelled with just enough decimals to tell them apart (no offset, no '3000000.0')."""
    locator = matplotlib.ticker.MaxNLocator(nbins=nbins)
    ticks = locator.tick_values(lo, hi)
    step = float(np.min(np.diff(ticks))) if len(ticks) > 1 else 1.0
    decimals = max(0, -int(np.floor(np.log10(step))) + (0 if step / 10 ** np.floor(np.log10(step)) % 1 == 0 else 1))

    top = float(np.max(np.abs(ticks))) if len(ticks) else 1.0
    scientific = top >= 1e4 or top < 1e-2  # one style per axis: all ×10^n, or all plain decimals

    def label(x: float, _pos: int | None = None) -> str:
        if x == 0:
            return "0"
        if scientific:
            digits = max(1, int(np.floor(np.log10(abs(x)))) - int(np.floor(np.log10(step))) + 1)
            plain = int(np.floor(np.log10(abs(x)))) in PLAIN_EXPONENTS  # the rule of sci()
            return f"{x:.{digits + 1}g}" if plain else sci_text(x, digits)
        return f"{x:.{decimals}f}"

    axis.set_major_locator(locator)
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(label))


def _format_linear_axis(axis: matplotlib.axis.Axis, lo: float, hi: float) -> None:
    _plain_ticks(axis, lo, hi, nbins=6)


def _finish(fig: Figure, axes: list[plt.Axes]) -> Figure:
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
            if scale == "log":
                _format_log_axis(axis, *sorted(lim))
            else:
                _format_linear_axis(axis, *sorted(lim))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def shade_unbracketed(ax: plt.Axes, x: np.ndarray, ok: np.ndarray, label: str = "optimum not bracketed") -> None:
    """Shade the x ranges where ``ok`` is False (e.g. compute where the ladder does not bracket N_opt)."""
    x, ok = np.asarray(x, float), np.asarray(ok, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (~ok).astype(int), [0]])))
    for k, (i, j) in enumerate(zip(edges[::2], edges[1::2])):
        ax.axvspan(x[i], x[j - 1], color="gray", alpha=0.15, lw=0, label=label if k == 0 else None)


def save(fig: Figure, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.png`` (for the HTML page) and ``stem.svg`` (for papers) and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=110)
    fig.savefig(svg)
    plt.close(fig)
    return png, svg


# --------------------------------------------------------------------------------------------------
# Fig 1: L(N), L(D), and the compute frontier


def _range(x: pd.Series | np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(np.nanmin(x)), float(np.nanmax(x))


def fig_loss_vs_n(a: LossVsN) -> Figure:
    """Kaplan Fig 1 (right): converged loss against non-embedding parameters, with L(N)."""
    fig, (ax,) = _new()
    p = a.points
    ax.scatter(p["N"], p["loss"], c="tab:blue", zorder=3, label="best run per size")
    x = _grid(p["N"])
    c = a.fit.params
    law_line(ax, x, a.fit.predict(pd.DataFrame({"N": x})), _range(p["N"]),
             label=rf"$L=(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}}}$")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS, title="L(N)")
    return _finish(fig, [ax])


def fig_loss_vs_d(a: LossVsD) -> Figure:
    """Kaplan Fig 1 (middle): early-stopped loss against dataset size, with L(D)."""
    fig, (ax,) = _new()
    p = a.points
    ax.scatter(p["D"], p["loss"], c="tab:green", zorder=3, label=f"N = {a.n_params:.3g}, early-stopped")
    x = _grid(p["D"])
    c = a.fit.params
    law_line(ax, x, a.fit.predict(pd.DataFrame({"D": x})), _range(p["D"]),
             label=rf"$L=(D/{sci(c['D_c'])})^{{-{c['alpha_D']:.3f}}}$")
    ax.set(xscale="log", yscale="log", xlabel="dataset size D (tokens)", ylabel=LOSS, title="L(D)")
    return _finish(fig, [ax])


def fig_compute_frontier(a: ComputeFrontier) -> Figure:
    """Kaplan Figs 1 (left) and 13: learning curves against compute, the frontier, L(C) and L(C_min)."""
    fig, (ax,) = _new(width=7.0)
    c = a.curves
    color = _cmap(c["N"].to_numpy(float))
    for _, g in c.groupby("run_id"):
        ax.plot(g["C"] / PF_DAY, g["loss"], color=color(g["N"].iloc[0]), lw=0.8, alpha=0.8)
    env = a.envelope or a.frontier
    ax.plot(env.compute / PF_DAY, env.loss, color="black", lw=2.5, alpha=0.35, label="frontier (fixed batch)")
    if a.bracketed is not None and not a.bracketed.all():
        shade_unbracketed(ax, env.compute / PF_DAY, a.bracketed, "optimal size not bracketed by the ladder")
    x = _grid(env.compute, pad=1.0)
    p = a.fit.params
    law_line(ax, x / PF_DAY, a.fit.predict(pd.DataFrame({"C": x})), _range(env.compute / PF_DAY),
             label=rf"$L=(C/{sci(p['C_c'] / PF_DAY)})^{{-{p['alpha_C']:.3f}}}$ (C in PF-days)")
    if a.fit_min is not None and a.frontier_min is not None:
        q = a.fit_min.params
        xm = _grid(a.frontier_min.compute, pad=1.0)
        ax.plot(xm / PF_DAY, a.fit_min.predict(pd.DataFrame({"C_min": xm})), color="tab:orange", lw=1.6,
                label=rf"$L=(C_{{min}}/{sci(q['C_c_min'] / PF_DAY)})^{{-{q['alpha_C_min']:.3f}}}$ (batch-adjusted)")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=matplotlib.colors.LogNorm(c["N"].min(), c["N"].max()))
    fig.colorbar(sm, ax=ax, label="non-embedding parameters N")
    ax.set(xscale="log", yscale="log", xlabel="compute C = 6NBS (PF-days)", ylabel=LOSS, title="L(C): the compute frontier")
    return _finish(fig, [ax])


def fig_optimal_allocation(a: ComputeFrontier) -> Figure:
    """Kaplan Fig 14: the compute-optimal model size N(C) and steps S(C), fitted only where the ladder brackets N_opt."""
    fig, (ax, ax2) = _new(2)
    env, f = a.envelope or a.frontier, a.frontier
    ax.plot(env.compute / PF_DAY, env.n_opt, color="tab:blue", lw=2, alpha=0.5, label="envelope, fixed batch")
    law_line(ax, env.compute / PF_DAY, f.n_law(env.compute), _range(f.compute / PF_DAY), color="tab:blue", lw=1.2,
             label=rf"$N\propto C^{{{f.a:.2f}}}$")
    ax2.plot(f.compute / PF_DAY, a.steps, color="tab:blue", lw=2, alpha=0.5, label="steps S at fixed batch")
    if a.frontier_min is not None:
        m = a.frontier_min
        ax.plot(m.compute / PF_DAY, m.n_opt, color="tab:orange", lw=2, alpha=0.5, label="envelope over C_min")
        law_line(ax, m.compute / PF_DAY, m.n_law(m.compute), _range(m.compute / PF_DAY), color="tab:orange", lw=1.2,
                 label=rf"$N\propto C_{{min}}^{{{m.a:.2f}}}$")
        ax2.plot(m.compute / PF_DAY, a.s_min, color="tab:orange", lw=2, alpha=0.5, label="S_min (eq 5.4)")
    if a.bracketed is not None and not a.bracketed.all():
        shade_unbracketed(ax, env.compute / PF_DAY, a.bracketed)
    ax.set(xscale="log", yscale="log", xlabel="compute (PF-days)", ylabel="optimal non-embedding parameters N",
           title="compute-optimal model size")
    ax2.set(xscale="log", yscale="log", xlabel="compute (PF-days)", ylabel="optimizer steps", title="steps at the optimum")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 2 and 19: sample efficiency


def fig_learning_speed(a: SampleEfficiency) -> Figure:
    """Kaplan Fig 2: loss against tokens processed and against compute, one curve per model size."""
    fig, (ax, ax2) = _new(2)
    c = a.curves
    color = _cmap(c["N"].to_numpy(float))
    for n, g in sorted(c.groupby("N"), key=lambda item: item[0]):
        for _, run in g.groupby("run_id"):
            run = run[run["tokens"] > 0]
            ax.plot(run["tokens"], run["loss"], color=color(n), label=f"N = {n:.3g}")
            ax2.plot(6 * n * run["tokens"] / PF_DAY, run["loss"], color=color(n))
    ax.set(xscale="log", yscale="log", xlabel="tokens processed", ylabel=LOSS, title="larger models learn faster")
    ax2.set(xscale="log", yscale="log", xlabel="compute C = 6ND (PF-days)", ylabel=LOSS, title="loss against compute")
    return _finish(fig, [ax, ax2])


def fig_steps_to_loss(a: SampleEfficiency) -> Figure:
    """Kaplan Fig 19: E_min (examples) and S_min (steps) to reach fixed losses, against N."""
    fig, (ax2, ax3) = _new(2)
    r = a.reach
    lc = _cmap(r["level"].to_numpy(float))
    for level, g in r.groupby("level"):
        g = g.sort_values("N")
        ax2.plot(g["N"], g["e_min"], "o-", color=lc(level), label=f"L = {level:.2f}")
        ax3.plot(g["N"], g["s_min"], "s-", color=lc(level), label=f"L = {level:.2f}")
    ax2.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel="E_min: tokens to reach the loss",
            title="examples to reach a loss")
    ax3.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel="S_min: steps to reach the loss",
            title="steps to reach a loss")
    return _finish(fig, [ax2, ax3])


# --------------------------------------------------------------------------------------------------
# Fig 3: how a compute increase is spent


def fig_compute_split(a: ComputeSplit) -> Figure:
    """Kaplan Fig 3: the factor by which N, B and S grow for a compute increase, from the study's exponents."""
    fig, (ax,) = _new(width=7.0)
    x = np.geomspace(1, KAPLAN_FIG3["compute"], 100)
    for name, p, color in (("model size N", a.p_N, "tab:blue"), ("batch B_crit", a.p_B, "tab:green"),
                           ("serial steps S", a.p_S, "tab:red")):
        law_line(ax, x, x**p, (1.0, a.compute_range), color=color, label=rf"{name} $\propto C_{{min}}^{{{p:.2f}}}$")
    for name, key in (("N", "N"), ("B", "B"), ("S", "S")):
        ax.scatter([KAPLAN_FIG3["compute"]], [KAPLAN_FIG3[key]], marker="x", color="gray", zorder=3)
        ax.annotate(f"Kaplan {name}", (KAPLAN_FIG3["compute"], KAPLAN_FIG3[key]), textcoords="offset points",
                    xytext=(-52, 4), fontsize=7, color="gray")
    ax.set(xscale="log", yscale="log", xlabel="compute increase (×)", ylabel="increase (×)",
           title="how a compute increase splits (C = 6NBS)")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Figs 4 and 9: L(N, D) and overfitting


def _nd_law_label(c: dict[str, float]) -> str:
    return (rf"$L=[(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}/{c['alpha_D']:.3f}}}"
            rf"+{sci(c['D_c'])}/D]^{{{c['alpha_D']:.3f}}}$")


def fig_loss_vs_nd(a: LossVsND) -> Figure:
    """Kaplan Fig 4 (left): early-stopped loss against D, one law curve and legend entry per size."""
    fig, (ax,) = _new(width=7.0)
    p = a.points
    color = _cmap(p["N"].to_numpy(float))
    x = _grid(p["D"])
    for n, g in p.groupby("N"):
        ax.scatter(g["D"], g["loss"], color=color(n), zorder=3, s=22)
        law_line(ax, x, a.fit.predict(pd.DataFrame({"N": np.full_like(x, n), "D": x})), _range(g["D"]),
                 color=color(n), lw=1, label=f"N = {n:.3g} ({len(g)} run{'s' if len(g) > 1 else ''})")
    ax.plot([], [], color="black", lw=1, label=_nd_law_label(a.fit.params))
    ax.set(xscale="log", yscale="log", xlabel="dataset size D (tokens)", ylabel="early-stopped " + LOSS, title="L(N, D)")
    return _finish(fig, [ax])


def fig_loss_vs_n_per_d(a: LossVsND) -> Figure:
    """Kaplan Fig 9 (left): early-stopped loss against N, one curve per dataset size (D = ∞: not data-limited)."""
    if not a.points["limited"].any():
        raise DataError("Fig 9 needs data-limited runs; add a dataset_size design.")
    fig, (ax,) = _new(width=7.0)
    p = a.points.assign(Dkey=np.where(a.points["limited"], a.points["D"], np.inf))
    limited = p[p["limited"]]
    color = _cmap(limited["D"].to_numpy(float)) if not limited.empty else (lambda v: "tab:blue")
    x = _grid(p["N"])
    for d, g in p.groupby("Dkey"):
        c = "black" if not np.isfinite(d) else color(d)
        label = "D = ∞ (not data-limited)" if not np.isfinite(d) else f"D = {d:.3g} tokens"
        ax.scatter(g["N"], g["loss"], color=c, zorder=3, s=22)
        pred = a.fit.predict(pd.DataFrame({"N": x, "D": np.full_like(x, d if np.isfinite(d) else 1e30)}))
        law_line(ax, x, pred, _range(g["N"]), color=c, lw=1, label=label)
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel="early-stopped " + LOSS,
           title="data-size bottleneck")
    return _finish(fig, [ax])


def fig_overfitting(a: LossVsND) -> Figure:
    """Kaplan Fig 9 (right): L/L(N, ∞) - 1 against N^(α_N/α_D)/D, with eq 4.3."""
    if not a.points["limited"].any():
        raise DataError("Fig 9 needs data-limited runs; add a dataset_size design.")
    p = a.points
    c = a.fit.params
    if not np.isfinite(p["x"].to_numpy(float)).all():  # a degenerate fit (alpha_D on its bound) overflows N^(a_N/a_D)
        raise DataError(
            f"Fig 9 cannot be drawn: the L(N, D) fit's alpha_N/alpha_D = {c['alpha_N'] / c['alpha_D']:.3g} makes "
            "N^(alpha_N/alpha_D)/D overflow; add dataset sizes at more model sizes so that alpha_D is identified."
        )
    fig, (ax,) = _new()
    lim = p[p["limited"]]
    color = _cmap(p["N"].to_numpy(float))
    ax.scatter(lim["x"], lim["delta"], c=[color(n) for n in lim["N"]], zorder=3, label=f"data-limited runs ({len(lim)})")
    x = _grid(p["x"])
    law_line(ax, x, a.overfitting(x), _range(lim["x"]), label=rf"eq 4.3, $\alpha_N/\alpha_D={c['alpha_N'] / c['alpha_D']:.2f}$")
    ax.set(xscale="log", xlabel=r"$N^{\alpha_N/\alpha_D}/D$", ylabel=r"$L/L(N,\infty)-1$", title="overfitting")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Figs 4 right and 11: L(N, S)


def fig_learning_curves(a: LearningCurves) -> Figure:
    """Kaplan Fig 4 (right): loss against S_min per model size, with the L(N, S) fit."""
    fig, (ax,) = _new(width=7.0)
    p = a.points
    color = _cmap(p["N"].to_numpy(float))
    for n, g in p.groupby("N"):
        g = g.sort_values("S")
        ax.scatter(g["S"], g["loss"], color=color(n), s=12, label=f"N = {n:.3g}")
        x = _grid(g["S"], pad=1.0)
        ax.plot(x, a.fit.predict(pd.DataFrame({"N": np.full_like(x, n), "S": x})), color=color(n), lw=1)
    c = a.fit.params
    ax.plot([], [], color="black", lw=1, label=(rf"$L=(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}}}"
                                               rf"+(S/{sci(c['S_c'])})^{{-{c['alpha_S']:.2f}}}$"))
    xlabel = "S_min: steps at B ≫ B_crit (eq 5.4)" if a.adjusted else "optimizer steps S"
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=LOSS, title="L(N, S): learning curves")
    return _finish(fig, [ax])


def _interp_at(g: pd.DataFrame, col: str, value: float) -> float | None:
    g = g.sort_values(col)
    if g[col].min() <= value <= g[col].max():
        return float(np.interp(np.log(value), np.log(g[col]), g["loss"]))
    return None


def fig_loss_at_fixed_compute(a: LearningCurves) -> Figure:
    """Kaplan Fig 11 (left): loss against N at fixed compute; points interpolate runs, lines are L(N, S) at S = C/(6NB)."""
    fig, (ax,) = _new(width=7.0)
    p = a.points
    budgets = np.geomspace(p["C"].quantile(0.2), p["C"].max(), 5)
    color = _cmap(budgets)
    batch = float(p["batch_tokens"].median())
    n = _grid(p["N"], pad=1.3)
    for c in budgets:
        pts = [(size, y) for size, g in p.groupby("N") if (y := _interp_at(g, "C", c)) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, color=color(c), zorder=3)
        steps = c / (6 * n * batch)
        ok = steps >= 1
        law_line(ax, n[ok], a.loss_at(n[ok], steps[ok], batch), _range(p["N"]), color=color(c), lw=1,
                 label=f"C = {c / PF_DAY:.2g} PF-days")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS, title="loss at fixed compute")
    return _finish(fig, [ax])


def fig_loss_at_fixed_steps(a: LearningCurves) -> Figure:
    """Kaplan Fig 11 (right): loss against N after a fixed number of steps; lines are L(N, S_min(S)) (eqs 5.4, 5.6)."""
    fig, (ax,) = _new(width=7.0)
    raw = a.points.assign(step=a.points["C"] / (6 * a.points["N"] * a.points["batch_tokens"]))
    steps = np.geomspace(raw["step"].quantile(0.1), raw.groupby("N")["step"].max().min(), 4)
    color = _cmap(steps)
    batch = float(raw["batch_tokens"].median())
    n = _grid(raw["N"], pad=1.3)
    for s in steps:
        pts = [(size, y) for size, g in raw.groupby("N") if (y := _interp_at(g, "step", s)) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, color=color(s), zorder=3)
        law_line(ax, n, a.loss_at(n, np.full_like(n, s), batch), _range(raw["N"]), color=color(s), lw=1,
                 label=f"S = {s:.3g} steps")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS, title="loss at fixed steps")
    return _finish(fig, [ax])


def fig_excess_compute(a: ExcessCompute) -> Figure:
    """Kaplan Fig 12: extra compute and steps for a model N/N_eff off the compute-efficient size (eqs B.16, B.17)."""
    fig, (ax, ax2) = _new(2)
    ok = np.isfinite(a.compute)
    ax.plot(a.ratio[ok], a.compute[ok], color="tab:blue", label="C / C_efficient (eq B.16)")
    ax.axhline(1.2, color="gray", lw=0.8, ls=":", label="+20% compute")
    lo, hi = a.within_20pct
    if np.isfinite(lo):
        ax.axvspan(lo, hi, color="tab:blue", alpha=0.1, lw=0, label=f"within +20%: {lo:.2g}x to {hi:.2g}x")
    ax2.plot(a.ratio[ok], a.steps[ok], color="tab:red", label="S / S_efficient (eq B.17)")
    ax.set(xscale="log", yscale="log", xlabel="N / N_efficient", ylabel="excess compute", title="cost of a non-optimal size")
    ax2.set(xscale="log", yscale="log", xlabel="N / N_efficient", ylabel="excess steps", title="steps of a non-optimal size")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 15 and 16: where data and compute laws meet; early stopping


def fig_data_compute(a: DataComputeIntersection) -> Figure:
    """Kaplan Fig 15: L(C_min) and L(D(C_min)) extrapolated, their 95% bands, and the crossing."""
    fig, (ax,) = _new(width=7.0)
    x = a.compute / PF_DAY
    fitted = (a.data_range[0] / PF_DAY, a.data_range[1] / PF_DAY)
    law_line(ax, x, a.loss_compute, fitted, color="tab:orange", label=r"$L(C_{min})$")
    ax.fill_between(x, *a.band_compute, color="tab:orange", alpha=0.15, lw=0)
    law_line(ax, x, a.loss_data, fitted, color="tab:green", label=r"$L(D(C_{min}))$, $D = 2C_{min}/6N_{opt}$ (eq 6.7)")
    ax.fill_between(x, *a.band_data, color="tab:green", alpha=0.15, lw=0)
    if np.isfinite(a.crossing):
        ax.scatter([a.crossing / PF_DAY], [a.crossing_loss], color="black", zorder=4,
                   label=f"crossing: {a.crossing / PF_DAY:.2g} PF-days, L = {a.crossing_loss:.2f}")
        lo, hi = a.crossing_interval
        if np.isfinite(lo):
            ax.axvspan(lo / PF_DAY, hi / PF_DAY, color="gray", alpha=0.12, lw=0, label="95% interval of the crossing")
    ax.set(xscale="log", yscale="log", xlabel=r"$C_{min}$ (PF-days)", ylabel=LOSS, title="compute against data limits")
    return _finish(fig, [ax])


def fig_early_stopping(a: EarlyStopping) -> Figure:
    """Kaplan Fig 16: the early-stopping step against eq 5.7's bound (left); train and test loss (right)."""
    fig, (ax, ax2) = _new(2)
    p = a.points[np.isfinite(a.points["bound"])]
    color = _cmap(a.points["D"].to_numpy(float))
    ax.scatter(p["bound"], p["s_stop"], c=[color(d) for d in p["D"]], zorder=3, label="data-limited runs")
    if len(p):
        lim = _range(np.concatenate([p["bound"], p["s_stop"]]))
        ax.plot(lim, lim, color="tab:red", lw=1.2, label=r"$S_{stop} = S_c/[L(N,D)-L(N,\infty)]^{1/\alpha_S}$ (eq 5.7)")
    ax.set(xscale="log", yscale="log", xlabel=r"$S_c\,[L(N,D)-L(N,\infty)]^{-1/\alpha_S}$ (steps)",
           ylabel="early-stopping step (S_min)", title="early stopping against eq 5.7")
    for d, g in a.curves.groupby("D"):
        ax2.plot(g["step"], g["loss"], color=color(d), label=f"test, D = {d:.3g}")
        if "train_loss" in g and g["train_loss"].notna().any():
            ax2.plot(g["step"], g["train_loss"], color=color(d), ls=":", lw=1)
    ax2.plot([], [], color="gray", ls=":", label="train")
    ax2.set(xscale="log", yscale="log", xlabel="step", ylabel="loss (nats/token)", title="train and test loss")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 18 and 10: critical batch size


def fig_batch_scan(a: CriticalBatchSize) -> Figure:
    """Kaplan Fig 18: tokens against steps to reach each loss across batch sizes, with eq 5.1 fits."""
    sizes = sorted(a.levels["N"].unique())
    fig, axes = _new(len(sizes))
    for ax, n in zip(axes, sizes):
        lv = a.levels[a.levels["N"] == n]
        color = _cmap(lv["loss"].to_numpy(float))
        for _, row in lv.iterrows():
            pts = a.scan[(a.scan["N"] == n) & np.isclose(a.scan["level"], row["loss"])]
            ax.scatter(pts["steps"], pts["tokens"], color=color(row["loss"]), s=18, zorder=3)
            s = np.geomspace(row["s_min"] * 1.02, max(pts["steps"].max() * 1.5, row["s_min"] * 3), 100)
            e = row["e_min"] / (1 - row["s_min"] / s)  # eq 5.1 solved for E: (S/S_min - 1)(E/E_min - 1) = 1
            law_line(ax, s, e, _range(pts["steps"]), color=color(row["loss"]), lw=1, label=f"L = {row['loss']:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="steps S to reach the loss", ylabel="tokens E = B·S processed",
               title=f"batch-size scan, N = {n:.3g}")
    return _finish(fig, axes)


def fig_critical_batch(a: CriticalBatchSize) -> Figure:
    """Kaplan Fig 10: B_crit against loss from the scans, eq 1.4 solid over the scans' losses and dashed beyond."""
    fig, (ax,) = _new()
    lv = a.levels
    for n, g in lv.groupby("N"):
        ax.scatter(g["loss"], g["b_crit"], zorder=3, label=f"B_crit from scan, N = {n:.3g}")
    x = _grid(np.concatenate([lv["loss"], a.noise["loss"]]) if not a.noise.empty else lv["loss"], pad=1.05)
    c = a.fit.params
    law_line(ax, x, a.fit.predict(pd.DataFrame({"loss": x})), _range(lv["loss"]),
             label=rf"$B_{{crit}}={sci(c['B_star'])}\,L^{{-{1 / c['alpha_B']:.2f}}}$ tokens")
    if not a.noise.empty:
        nz = a.noise
        ax.errorbar(nz["loss"], nz["b_simple"], yerr=[nz["b_simple"] - nz["q25"], nz["q75"] - nz["b_simple"]],
                    fmt="s", color="tab:red", ms=4, alpha=0.7, label=r"noise scale $B_{simple}$ (median, IQR)")
        if a.noise_fit is not None:
            q = a.noise_fit.params
            law_line(ax, x, a.noise_fit.predict(pd.DataFrame({"loss": x})), _range(nz["loss"]), color="tab:red", lw=1,
                     label=rf"$B_{{simple}}={sci(q['B_star'])}\,L^{{-{1 / q['alpha_B']:.2f}}}$ tokens")
    ax.set(xscale="log", yscale="log", xlabel="training loss, smoothed (nats/token)", ylabel="critical batch size (tokens)",
           title="B_crit(L)")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Figs 5 and 6: shape and embeddings


_SHAPE_LABELS = {"aspect_ratio": "aspect ratio d_model / n_layer", "ff_ratio": "feed-forward ratio d_ff / d_model",
                 "head_dim": "head dimension d_model / n_head"}


def fig_shape(a: ShapeInvariance) -> Figure:
    """Kaplan Fig 5: loss increase over the best shape at fixed N, for each shape ratio scanned."""
    groups = [g for g in _SHAPE_LABELS if g in set(a.points["group"])]
    fig, axes = _new(len(groups), width=4.6)
    for ax, group in zip(axes, groups):
        for size, g in a.points[a.points["group"] == group].groupby("size"):
            g = g.sort_values("value")
            ax.plot(g["value"], 100 * g["increase"], "o-", label=f"N ≈ {size:.3g}")
        ax.set(xscale="log", xlabel=_SHAPE_LABELS[group], ylabel="loss increase (%)", title=group.replace("_", " "))
    return _finish(fig, axes)


def fig_embedding(a: EmbeddingCollapse) -> Figure:
    """Kaplan Fig 6: loss against parameters with embeddings (by depth) and without (collapsed)."""
    fig, (ax, ax2) = _new(2)
    p = a.points
    for depth, g in p.groupby("n_layer"):
        g = g.sort_values("N")
        ax.plot(g["N_total"], g["loss"], "o-", label=f"{depth} layers")
        ax2.plot(g["N"], g["loss"], "o-", label=f"{depth} layers")
    ax.set(xscale="log", yscale="log", xlabel="parameters including embeddings N_total", ylabel=LOSS,
           title=f"with embeddings (scatter {100 * a.scatter_total:.2g}%)")
    ax2.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS,
            title=f"non-embedding (scatter {100 * a.scatter_non_embedding:.2g}%)")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 8, 20, 21, 22, 23: transfer, position, learning rate, the logarithm


def fig_transfer(a: Transfer) -> Figure:
    """Kaplan Fig 8 (right): loss on other distributions against the in-distribution loss."""
    fig, (ax,) = _new(width=7.0)
    colors = dict(zip(a.offsets["set"], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for s, g in a.points.groupby("set"):
        o = a.offsets[a.offsets["set"] == s].iloc[0]
        ax.scatter(g["loss"], g["other"], color=colors[s], zorder=3,
                   label=f"{s}: other = {o['slope']:.2f}·L + {o['intercept']:.2f} (offset {o['offset']:+.2f})")
        if not a.curve.empty:
            cv = a.curve[a.curve["set"] == s]
            ax.plot(cv["loss"], cv["other"], color=colors[s], ls="--", lw=1)
    lo, hi = a.points["loss"].min(), a.points["loss"].max()
    ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8, label="same loss (no offset)")
    ax.plot([], [], color="gray", ls="--", label="largest model during training")
    ax.set(xlabel="in-distribution " + LOSS, ylabel="loss on the other distribution (nats/token)", title="transfer")
    return _finish(fig, [ax])


def fig_per_position(a: PerPosition) -> Figure:
    """Kaplan Fig 20 (left): loss at each context position per model size, with L(T) = a + b T^-c."""
    fig, (ax,) = _new(width=7.0)
    p = a.points
    color = _cmap(p["N"].to_numpy(float))
    for n, g in p.groupby("N"):
        ax.plot(g["T"], g["loss"], color=color(n), lw=0.8, alpha=0.6)
        fit = a.fits.get(float(n))
        if fit is not None:
            c = fit.params
            x = np.geomspace(1, g["T"].max(), 100)
            ax.plot(x, fit.predict(pd.DataFrame({"T": x})), color=color(n), lw=1.2,
                    label=rf"N={n:.3g}: ${c['a']:.2f}+{c['b']:.2f}\,T^{{-{c['c']:.2f}}}$")
    ax.set(xscale="log", xlabel="token position T in the context", ylabel="per-token " + LOSS, title="loss by position")
    return _finish(fig, [ax])


def fig_position_during_training(a: ContextLoss) -> Figure:
    """Kaplan Fig 20 (right): the largest model's per-token loss against step, one line per position."""
    if a.during.empty:
        raise DataError("the runs logged no per-position loss during training; train them again (each evaluation logs it)")
    fig, (ax,) = _new(width=7.0)
    d = a.during
    color = _cmap(d["T"].to_numpy(float))
    for t, g in d.groupby("T"):
        g = g.sort_values("step")
        ax.plot(g["step"], g["loss"], color=color(t), label=f"token {t}/{a.n_ctx}")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="per-token " + LOSS, title=f"N = {a.largest:.3g} during training")
    return _finish(fig, [ax])


def fig_position_vs_n(a: ContextLoss) -> Figure:
    """Kaplan Fig 21: per-token loss against N at positions 1, 2, 4, ...; short-context runs dashed."""
    fig, (ax,) = _new(width=7.0)
    f = a.final
    color = _cmap(f["T"].to_numpy(float))
    for (short, t), g in f.groupby(["short", "T"]):
        g = g.sort_values("N")
        if not short and t in log_positions(a.n_ctx):
            ax.plot(g["N"], g["loss"], "o-", color=color(t), ms=3, label=f"token {t}/{a.n_ctx}")
        elif short:
            ctx = int(g["n_ctx"].iloc[0])
            ax.plot(g["N"], g["loss"], "s--", color=color(t), ms=3, label=f"token {t}/{ctx} (n_ctx = {ctx})")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel="per-token " + LOSS,
           title="loss by position against model size")
    return _finish(fig, [ax])


def fig_lr_scan(a: LearningRateScan) -> Figure:
    """Kaplan Fig 22: the LR schedules (left) and the final loss against the summed LR (right)."""
    fig, (ax, ax2, ax3) = _new(3, width=4.8)
    p = a.points
    color = _cmap(p["lr_sum"].to_numpy(float))
    sums = dict(zip(p["run_id"], p["lr_sum"]))
    for run_id, g in a.schedules.groupby("run_id"):
        ax.plot(g["step"], g["lr"], color=color(sums.get(run_id, p["lr_sum"].min())), lw=1)
    ncol = _cmap(p["N"].to_numpy(float))
    designs = sorted(p["design"].unique())
    for (n, design), g in p.groupby(["N", "design"]):
        marker = "os^Dvx"[designs.index(design) % 6]
        label = f"N = {n:.3g}" + (f", {design}" if len(designs) > 1 else "")
        g = g.sort_values("lr_sum")
        ax2.plot(g["lr_sum"], g["loss"], marker=marker, color=ncol(n), label=label)
        g = g.sort_values("lr")
        ax3.plot(g["lr"], g["loss"], marker=marker, color=ncol(n), label=label)
    ax.set(xlabel="step", ylabel="learning rate", title="schedules")
    ax2.set(xscale="log", xlabel="learning rate summed over steps", ylabel="final " + LOSS, title="loss against summed LR")
    ax3.set(xscale="log", xlabel="peak learning rate", ylabel="final " + LOSS, title="loss against LR, per size")
    return _finish(fig, [ax, ax2, ax3])


def fig_log_fit(a: LogFit) -> Figure:
    """Kaplan Fig 23: the power law L(N) against a logarithmic fit on the same points."""
    fig, (ax,) = _new()
    p = a.points
    ax.scatter(p["N"], p["loss"], color="tab:blue", zorder=3, label="best run per size")
    x = _grid(p["N"], pad=10.0)
    c = a.power.fit.params
    law_line(ax, x, a.power.fit.predict(pd.DataFrame({"N": x})), _range(p["N"]),
             label=rf"power law $(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}}}$, rms {100 * a.rms_power:.2g}%")
    law_line(ax, x, a.log_law(x), _range(p["N"]), color="tab:red",
             label=rf"logarithm ${a.a:.3g} - {a.b:.3g}\,\ln N$, rms {100 * a.rms_log:.2g}%")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS, title="power law or logarithm")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Chinchilla's approaches beside Kaplan's, and the backtest


def fig_approaches(a: Approaches) -> Figure:
    """N_opt(C) by Chinchilla's approaches the study supports and Kaplan's batch-adjusted envelope, on one axis."""
    fig, (ax,) = _new(width=7.0)
    f = a.envelope
    c = _grid(f.compute, pad=3.0)
    ax.plot(f.compute, f.n_opt, color="tab:blue", lw=2, alpha=0.4)
    law_line(ax, c, f.n_law(c), _range(f.compute), color="tab:blue", label=rf"approach 1 (envelope): $N\propto C^{{{f.a:.2f}}}$")
    if a.isoflop is not None:
        iso = a.isoflop.frontier
        ax.scatter(iso.compute, iso.n_opt, color="tab:green", zorder=3)
        law_line(ax, c, iso.n_law(c), _range(iso.compute), color="tab:green",
                 label=rf"approach 2 (IsoFLOP): $N\propto C^{{{iso.a:.2f}}}$")
    alloc = a.allocation(c)
    if alloc is not None:
        ex = a.exponents()["approach 3: parametric"]
        ax.plot(c, alloc.n_opt, color="tab:red", ls="-.", label=rf"approach 3 (parametric): $N\propto C^{{{ex:.2f}}}$")
    if a.kaplan_min is not None:
        m = a.kaplan_min
        ax.plot(c, m.n_law(c), color="tab:orange", ls=":", lw=2,
                label=rf"Kaplan, envelope over $C_{{min}}$: $N\propto C^{{{m.a:.2f}}}$")
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel="compute-optimal non-embedding N",
           title="compute-optimal size: Chinchilla's approaches and Kaplan's")
    return _finish(fig, [ax])


def fig_backtest(a: Backtest) -> Figure:
    """Predicted against observed loss for each law fitted on the cheaper runs; held-out runs filled."""
    fig, (ax,) = _new()
    p = a.points
    train = p["train"].to_numpy(bool)
    obs = p["loss"].to_numpy(float)
    lo, hi = obs.min() * 0.97, obs.max() * 1.03
    for law, marker in zip(a.fits, "os^Dv"):
        pred = p[f"pred_{law}"].to_numpy(float)
        err = 100 * a.errors.set_index("law").loc[law, "max_error"]
        ax.scatter(obs[train], pred[train], marker=marker, facecolors="none", edgecolors="gray")
        ax.scatter(obs[~train], pred[~train], marker=marker, zorder=3, label=f"{law}: held out (max error {err:.2g}%)")
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.97, hi * 0.97], [lo * 1.03, hi * 1.03], color="gray", alpha=0.15, label="±3%")
    ax.scatter([], [], facecolors="none", edgecolors="gray", label="runs used for the fit")
    ax.set(xlabel="observed final " + LOSS, ylabel="predicted loss (nats/token)",
           title="backtest: fit the cheaper runs, predict the rest")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Figs 7, 17, 24: other model families and depth (analyses in scalinglab.report.families)


def _series_styles(series: pd.Series) -> dict[str, dict[str, object]]:
    """A colour and marker per series: the Transformer black circles, the others from the colour cycle."""
    others = [s for s in dict.fromkeys(series) if s != "Transformer"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles: dict[str, dict[str, object]] = {"Transformer": {"color": "black", "marker": "o"}}
    styles.update({s: {"color": colors[i % len(colors)], "marker": "s^Dv<>"[i % 6]} for i, s in enumerate(others)})
    return styles


def fig_lstm_vs_n(a: LSTMComparison) -> Figure:
    """Kaplan Fig 7 (left): final loss against non-embedding N, LSTMs by depth against Transformers."""
    fig, (ax,) = _new()
    style = _series_styles(a.points["series"])
    for s, g in a.points.groupby("series", sort=False):
        ax.plot(g["N"], g["loss"], ls="-", lw=1, label=s, **style[s])
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="final " + LOSS, title="LSTMs and Transformers")
    return _finish(fig, [ax])


def fig_lstm_positions(a: LSTMComparison) -> Figure:
    """Kaplan Fig 7 (right): per-token loss against position; each LSTM beside the Transformer of its N."""
    fig, (ax,) = _new(width=7.0)
    paired = set(a.pairs["lstm"]) | set(a.pairs["transformer"])
    style = _series_styles(a.curves["series"])
    for run_id, g in a.curves.groupby("run_id", sort=False):
        g = g.sort_values("T")
        s, n = g["series"].iloc[0], g["N"].iloc[0]
        strong = run_id in paired
        ax.plot(g["T"], g["loss"], color=style[s]["color"], lw=1.4 if strong else 0.7, alpha=1.0 if strong else 0.4,
                label=f"{s}, N={n:.3g}")
    ax.set(xscale="log", xlabel="token position T in the context", ylabel="per-token " + LOSS,
           title="loss by position (bold: equal N)")
    return _finish(fig, [ax])


def fig_recurrent(a: RecurrentComparison) -> Figure:
    """Kaplan Fig 17: loss against N counting reuse, against non-embedding N, and against compute."""
    fig, axes = _new(3, width=5.0)
    style = _series_styles(a.points["series"])
    for s, g in a.points.groupby("series", sort=False):
        axes[0].plot(g["N_with_reuse"], g["loss"], ls="none", label=s, **style[s])
        axes[1].plot(g["N"], g["loss"], ls="none", label=s, **style[s])
    plain = a.points[a.points["reuse"] == 1].sort_values("N")
    for ax, col in ((axes[0], "N_with_reuse"), (axes[1], "N")):
        ax.plot(plain[col], plain["loss"], color="black", lw=0.8)
    for _, g in a.curves.groupby("run_id", sort=False):
        s = g["series"].iloc[0]
        axes[2].plot(g["C"], g["loss"], color=style[s]["color"], lw=1, label=s)
    handles = {lab: h for h, lab in zip(*axes[2].get_legend_handles_labels())}  # one legend entry per series
    axes[0].set(xscale="log", xlabel="parameters counting reuse (non-embedding)", ylabel="final " + LOSS,
                title="per parameter applied")
    axes[1].set(xscale="log", xlabel="non-embedding parameters N (distinct)", title="per parameter held")
    axes[2].set(xscale="log", xlabel="training compute C (FLOPs, 6·N with reuse·D)", ylabel=LOSS, title="per FLOP")
    fig = _finish(fig, axes)
    axes[2].legend(handles.values(), handles.keys(), fontsize=8, loc="best")
    return fig


def fig_depth(a: DepthGeneralisation) -> Figure:
    """Kaplan Fig 24: final loss on each held-out set against depth at (about) one N."""
    fig, (ax,) = _new()
    for s, g in a.points.groupby("set"):
        g = g.sort_values("n_layer")
        ax.plot(g["n_layer"], g["loss"], marker="o", lw=1, label=s)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="depth n_layer (at fixed N)", ylabel="final loss (nats/token)", title="depth and generalisation")
    fig = _finish(fig, [ax])
    depths = sorted(a.points["n_layer"].unique())
    ax.set_xticks(depths, [str(int(d)) for d in depths])  # the depths themselves, not decades
    return fig
