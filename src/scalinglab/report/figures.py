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

from scalinglab.laws.frontier import PF_DAY  # noqa: E402
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

LOSS = "validation loss (nats/token)"
FIT = {"color": "black", "lw": 1.6, "ls": "--"}


def sci(x: float, digits: int = 2) -> str:
    """``x`` as mathtext, e.g. 8.8e13 -> '8.8\\times10^{13}' (no rounding of the stored constant)."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    exp = int(np.floor(np.log10(abs(x))))
    if -2 <= exp <= 3:
        return f"{x:.{digits + 1}g}"
    return rf"{x / 10**exp:.{digits}g}\times10^{{{exp}}}"


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


def _finish(fig: Figure, axes: list[plt.Axes]) -> Figure:
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_yscale() == "log" and ax.get_ylim()[1] / ax.get_ylim()[0] < 20:  # a loss axis: plain numbers
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


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


def fig_loss_vs_n(a: LossVsN) -> Figure:
    """Kaplan Fig 1 (right): converged loss against non-embedding parameters, with L(N)."""
    fig, (ax,) = _new()
    p = a.points
    ax.scatter(p["N"], p["loss"], c="tab:blue", zorder=3, label="best run per size")
    x = _grid(p["N"])
    c = a.fit.params
    ax.plot(x, a.fit.predict(pd.DataFrame({"N": x})), **FIT,
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
    ax.plot(x, a.fit.predict(pd.DataFrame({"D": x})), **FIT,
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
    f = a.frontier
    ax.plot(f.compute / PF_DAY, f.loss, color="black", lw=2.5, alpha=0.35, label="frontier (fixed batch)")
    x = _grid(f.compute, pad=1.0)
    p = a.fit.params
    ax.plot(x / PF_DAY, a.fit.predict(pd.DataFrame({"C": x})), **FIT,
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
    """Kaplan Fig 14: the compute-optimal model size N(C) and number of steps S(C)."""
    fig, (ax, ax2) = _new(2)
    f = a.frontier
    ax.plot(f.compute / PF_DAY, f.n_opt, color="tab:blue", lw=2, alpha=0.5, label="envelope, fixed batch")
    ax.plot(f.compute / PF_DAY, f.n_law(f.compute), color="tab:blue", ls="--",
            label=rf"$N\propto C^{{{f.a:.2f}}}$")
    ax2.plot(f.compute / PF_DAY, a.steps, color="tab:blue", lw=2, alpha=0.5, label="steps S at fixed batch")
    if a.frontier_min is not None:
        m = a.frontier_min
        ax.plot(m.compute / PF_DAY, m.n_opt, color="tab:orange", lw=2, alpha=0.5, label="envelope over C_min")
        ax.plot(m.compute / PF_DAY, m.n_law(m.compute), color="tab:orange", ls="--",
                label=rf"$N\propto C_{{min}}^{{{m.a:.2f}}}$")
        ax2.plot(m.compute / PF_DAY, a.s_min, color="tab:orange", lw=2, alpha=0.5, label="S_min (eq 5.4)")
    ax.set(xscale="log", yscale="log", xlabel="compute (PF-days)", ylabel="optimal non-embedding parameters N",
           title="compute-optimal model size")
    ax2.set(xscale="log", yscale="log", xlabel="compute (PF-days)", ylabel="optimizer steps", title="steps at the optimum")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 4 and 9: L(N, D) and overfitting


def fig_loss_vs_nd(a: LossVsND) -> Figure:
    """Kaplan Figs 4 (left) and 9 (left): early-stopped loss against D per size, with the L(N, D) fit."""
    fig, (ax,) = _new(width=7.0)
    p = a.points
    color = _cmap(p["N"].to_numpy(float))
    for n, g in p.groupby("N"):
        g = g.sort_values("D")
        ax.scatter(g["D"], g["loss"], color=color(n), zorder=3, s=22, label=f"N = {n:.3g}" if len(g) > 1 else None)
        if len(g) > 1:
            x = _grid(g["D"])
            ax.plot(x, a.fit.predict(pd.DataFrame({"N": np.full_like(x, n), "D": x})), color=color(n), lw=1)
    c = a.fit.params
    ax.plot([], [], **FIT, label=(rf"$L=[(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}/{c['alpha_D']:.3f}}}"
                                   rf"+{sci(c['D_c'])}/D]^{{{c['alpha_D']:.3f}}}$"))
    ax.set(xscale="log", yscale="log", xlabel="dataset size D (tokens)", ylabel="early-stopped " + LOSS, title="L(N, D)")
    return _finish(fig, [ax])


def fig_overfitting(a: LossVsND) -> Figure:
    """Kaplan Fig 9 (right): L/L(N, ∞) - 1 collapses against N^(α_N/α_D)/D onto eq 4.3."""
    fig, (ax,) = _new()
    p = a.points
    lim = p[p["limited"]] if p["limited"].any() else p
    color = _cmap(p["N"].to_numpy(float))
    ax.scatter(lim["x"], lim["delta"], c=[color(n) for n in lim["N"]], zorder=3, label="data-limited runs")
    x = _grid(p["x"])
    c = a.fit.params
    ax.plot(x, a.overfitting(x), **FIT, label=rf"eq 4.3, $\alpha_N/\alpha_D={c['alpha_N'] / c['alpha_D']:.2f}$")
    ax.set(xscale="log", xlabel=r"$N^{\alpha_N/\alpha_D}/D$", ylabel=r"$L/L(N,\infty)-1$", title="overfitting collapse")
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
    ax.plot([], [], **FIT, label=(rf"$L=(N/{sci(c['N_c'])})^{{-{c['alpha_N']:.3f}}}"
                                   rf"+(S/{sci(c['S_c'])})^{{-{c['alpha_S']:.2f}}}$"))
    xlabel = "S_min: steps at B ≫ B_crit (eq 5.4)" if a.adjusted else "optimizer steps S"
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=LOSS, title="L(N, S): learning curves")
    return _finish(fig, [ax])


def fig_loss_at_fixed_compute(a: LearningCurves) -> Figure:
    """Kaplan Fig 11 (left): loss against N at fixed compute, measured (interpolated curves) and from L(N, S).

    The lines take S = C/(6NB) steps at the study's batch B, turned into S_min with B_crit(L) (eq 5.4).
    """
    fig, (ax,) = _new(width=7.0)
    p = a.points
    budgets = np.geomspace(p["C"].quantile(0.2), p["C"].max(), 5)
    color = _cmap(budgets)
    batch = float(p["batch_tokens"].median())
    n = _grid(p["N"], pad=1.3)
    for c in budgets:
        pts = []
        for size, g in p.groupby("N"):
            g = g.sort_values("C")
            if g["C"].min() <= c <= g["C"].max():
                pts.append((size, float(np.interp(np.log(c), np.log(g["C"]), g["loss"]))))
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, color=color(c), zorder=3)
        steps = c / (6 * n * batch)
        ok = steps >= 1
        ax.plot(n[ok], a.loss_at(n[ok], steps[ok], batch), color=color(c), lw=1, label=f"C = {c / PF_DAY:.2g} PF-days")
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS,
           title="loss at fixed compute (points: runs; lines: L(N, S))")
    return _finish(fig, [ax])


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
            ax.plot(s, e, color=color(row["loss"]), lw=1, label=f"L = {row['loss']:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="steps S to reach the loss", ylabel="tokens E = B·S processed",
               title=f"batch-size scan, N = {n:.3g}")
    return _finish(fig, axes)


def fig_critical_batch(a: CriticalBatchSize) -> Figure:
    """Kaplan Fig 10: B_crit against loss from the scans, the fit of eq 1.4, and the online noise scale."""
    fig, (ax,) = _new()
    lv = a.levels
    for n, g in lv.groupby("N"):
        ax.scatter(g["loss"], g["b_crit"], zorder=3, label=f"B_crit from scan, N = {n:.3g}")
    x = _grid(np.concatenate([lv["loss"], a.noise["loss"]]) if not a.noise.empty else lv["loss"], pad=1.05)
    c = a.fit.params
    ax.plot(x, a.fit.predict(pd.DataFrame({"loss": x})), **FIT,
            label=rf"$B_{{crit}}={sci(c['B_star'])}\,L^{{-{1 / c['alpha_B']:.2f}}}$ tokens")
    if not a.noise.empty:
        nz = a.noise
        ax.errorbar(nz["loss"], nz["b_simple"], yerr=[nz["b_simple"] - nz["q25"], nz["q75"] - nz["b_simple"]],
                    fmt="s", color="tab:red", ms=4, alpha=0.7, label=r"noise scale $B_{simple}$ (median, IQR)")
        if a.noise_fit is not None:
            q = a.noise_fit.params
            ax.plot(x, a.noise_fit.predict(pd.DataFrame({"loss": x})), color="tab:red", ls=":",
                    label=rf"$B_{{simple}}={sci(q['B_star'])}\,L^{{-{1 / q['alpha_B']:.2f}}}$ tokens")
    ax.set(xscale="log", yscale="log", xlabel="training loss, smoothed (nats/token)", ylabel="critical batch size (tokens)",
           title="B_crit(L)")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Figs 2 and 19: sample efficiency


def fig_sample_efficiency(a: SampleEfficiency) -> Figure:
    """Kaplan Figs 2 (left) and 19: loss against tokens per size, and E_min and S_min to reach fixed losses."""
    fig, (ax, ax2, ax3) = _new(3, width=4.8)
    c = a.curves
    color = _cmap(c["N"].to_numpy(float))
    for n, g in sorted(c.groupby("N"), key=lambda item: item[0]):
        for _, run in g.groupby("run_id"):
            run = run[run["tokens"] > 0]
            ax.plot(run["tokens"], run["loss"], color=color(n), label=f"N = {n:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="tokens processed", ylabel=LOSS, title="larger models learn faster")
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
    return _finish(fig, [ax, ax2, ax3])


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
           title=f"with embeddings (scatter {100 * a.scatter_total:.1f}%)")
    ax2.set(xscale="log", yscale="log", xlabel="non-embedding parameters N", ylabel=LOSS,
            title=f"non-embedding (scatter {100 * a.scatter_non_embedding:.1f}%)")
    return _finish(fig, [ax, ax2])


# --------------------------------------------------------------------------------------------------
# Figs 8 and 20: transfer and per-position loss


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
            ax.plot(x, fit.predict(pd.DataFrame({"T": x})), color=color(n), ls="--", lw=1.2,
                    label=rf"N={n:.3g}: ${c['a']:.2f}+{c['b']:.2f}\,T^{{-{c['c']:.2f}}}$")
    ax.set(xscale="log", xlabel="token position T in the context", ylabel="per-token " + LOSS, title="loss by position")
    return _finish(fig, [ax])


# --------------------------------------------------------------------------------------------------
# Chinchilla's approaches beside Kaplan's


def fig_approaches(a: Approaches) -> Figure:
    """N_opt(C) by Chinchilla's three approaches and Kaplan's batch-adjusted envelope, on one axis."""
    fig, (ax,) = _new(width=7.0)
    f = a.envelope
    c = _grid(f.compute, pad=3.0)
    ax.plot(f.compute, f.n_opt, color="tab:blue", lw=2, alpha=0.4)
    ax.plot(c, f.n_law(c), color="tab:blue", ls="--", label=rf"approach 1 (envelope): $N\propto C^{{{f.a:.2f}}}$")
    if a.isoflop is not None:
        iso = a.isoflop.frontier
        ax.scatter(iso.compute, iso.n_opt, color="tab:green", zorder=3)
        ax.plot(c, iso.n_law(c), color="tab:green", ls="--", label=rf"approach 2 (IsoFLOP): $N\propto C^{{{iso.a:.2f}}}$")
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
        ax.scatter(obs[~train], pred[~train], marker=marker, zorder=3, label=f"{law}: held out (max error {err:.2f}%)")
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.97, hi * 0.97], [lo * 1.03, hi * 1.03], color="gray", alpha=0.15, label="±3%")
    ax.scatter([], [], facecolors="none", edgecolors="gray", label="runs used for the fit")
    ax.set(xlabel="observed final " + LOSS, ylabel="predicted loss (nats/token)",
           title="backtest: fit the cheaper runs, predict the rest")
    return _finish(fig, [ax])
