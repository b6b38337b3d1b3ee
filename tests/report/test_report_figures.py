"""Every figure function draws from its analysis, and reads right: labels, laws, ticks, the runs it needs."""

from __future__ import annotations

import html
import itertools

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from scalinglab.report import analyses as an
from scalinglab.report import derived as dv
from scalinglab.report import figures as fg
from scalinglab.report import scans as sc


@pytest.fixture(scope="module")
def results(synthetic):
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1), np.errstate(all="ignore"):  # few resamples
        mp.setattr(an, "BOOTSTRAP", 5)
        mp.setattr(an, "JOINT_BOOTSTRAP", 2)
        return _analyses(synthetic)


def _analyses(synthetic):
    runs, curves = synthetic.runs, synthetic.curves
    bc = an.critical_batch(runs, synthetic.metrics)
    law_n = an.loss_vs_n(runs)
    law_d = an.loss_vs_d(runs)
    nd = an.loss_vs_nd(runs)
    fr = an.compute_frontier(runs, curves, bc)
    lc = an.learning_curves(runs, curves, bc)
    se = an.sample_efficiency(runs, curves, bc)
    ctx = sc.context_loss(runs, synthetic.positions)
    return {
        fg.fig_loss_vs_n: law_n,
        fg.fig_loss_vs_d: law_d,
        fg.fig_compute_frontier: fr,
        fg.fig_optimal_allocation: fr,
        fg.fig_learning_speed: se,
        fg.fig_steps_to_loss: se,
        fg.fig_compute_split: dv.compute_split(fr, bc),
        fg.fig_loss_vs_nd: nd,
        fg.fig_loss_vs_n_per_d: nd,
        fg.fig_overfitting: nd,
        fg.fig_learning_curves: lc,
        fg.fig_loss_at_fixed_compute: lc,
        fg.fig_loss_at_fixed_steps: lc,
        fg.fig_excess_compute: dv.excess_compute(lc, bc),
        fg.fig_data_compute: dv.data_compute_intersection(fr, law_d),
        fg.fig_early_stopping: dv.early_stopping(runs, curves, nd, lc, bc),
        fg.fig_batch_scan: bc,
        fg.fig_critical_batch: bc,
        fg.fig_shape: an.shape_invariance(runs, law_n),
        fg.fig_embedding: an.embedding_collapse(runs),
        fg.fig_transfer: an.transfer(runs, curves),
        fg.fig_per_position: an.per_position(runs, synthetic.positions[synthetic.positions["final"]]),
        fg.fig_position_during_training: ctx,
        fg.fig_position_vs_n: ctx,
        fg.fig_lr_scan: sc.lr_scan(runs, synthetic.metrics),
        fg.fig_log_fit: dv.log_fit(law_n),
        fg.fig_approaches: an.approaches(runs, fr, nd),
        fg.fig_backtest: an.backtest(runs),
    }


def test_every_figure_function_is_exercised(results):
    from scalinglab.report.build import FIGURES

    families = {p.draw.__name__ for f in FIGURES if f.key in ("fig-7", "fig-17", "fig-24") for p in f.panels if p.draw}
    assert {f.__name__ for f in results} == {n for n in dir(fg) if n.startswith("fig_")} - families  # those: model families'
    registered = {p.draw.__name__ for f in FIGURES for p in f.panels if p.draw is not None and p.draw.__module__ == fg.__name__}
    assert registered - families <= {f.__name__ for f in results}


def _tick_boxes(fig, axis):
    lo, hi = sorted(axis.get_view_interval())
    return [t.get_window_extent() for t, loc in zip(axis.get_ticklabels(), axis.get_majorticklocs())
            if t.get_visible() and t.get_text() and lo <= loc <= hi]


@pytest.mark.slow
def test_figures_read_right(results, tmp_path):
    """Labels, the fitted law in the legend, and tick labels that neither overlap nor use an offset (Figs 2, 19)."""
    for draw, analysis in results.items():
        fig = draw(analysis)
        fig.canvas.draw()
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_xlabel() and ax.get_ylabel(), draw.__name__
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == "", (draw.__name__, "offset label")
                boxes = _tick_boxes(fig, axis)
                texts = [t.get_text() for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
                assert len(set(texts)) == len(texts), (draw.__name__, texts)  # no two ticks read the same
                assert not any("$" in t for t in texts), (draw.__name__, texts)  # plain text, no mathtext to parse
                for a, b in itertools.combinations(boxes, 2):
                    assert not a.overlaps(b), (draw.__name__, texts)
        labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        if draw in (fg.fig_loss_vs_n, fg.fig_loss_vs_d, fg.fig_compute_frontier, fg.fig_loss_vs_nd, fg.fig_critical_batch):
            assert any("$" in t and "=" in t for t in labels), (draw.__name__, labels)  # the law, with its constants
        png, svg = fg.save(fig, tmp_path, draw.__name__)
        assert png.stat().st_size > 5000 and svg.read_text().lstrip().startswith("<?xml")


def test_fig4_draws_one_curve_and_legend_entry_per_size(results):
    nd = results[fg.fig_loss_vs_nd]
    fig = fg.fig_loss_vs_nd(nd)
    ax = fig.axes[0]
    sizes = nd.points["N"].nunique()
    entries = [t.get_text() for t in ax.get_legend().get_texts() if t.get_text().startswith("N = ")]
    assert len(entries) == sizes  # sizes with a single run are drawn and named too
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_label().startswith("N = ")]
    assert len(solid) == sizes


def test_fig6_uses_no_scan_runs(synthetic, results):
    pts = results[fg.fig_embedding].points
    kinds = set(synthetic.runs.set_index("run_id").loc[pts["run_id"], "kind"])
    assert kinds <= {"ladder", "nd_grid"}, kinds  # no shape or batch scans in a ladder figure


def test_frontier_is_monotone_and_fitted_where_bracketed(synthetic, results):
    fr = results[fg.fig_compute_frontier]
    assert np.all(np.diff(fr.envelope.loss) <= 1e-12)  # Fig 13: never jumps up
    smallest = synthetic.runs.loc[an.law_runs(synthetic.runs).index, "N"].min()
    assert not np.any(fr.frontier.n_opt == smallest)  # Fig 14: the ladder's edge is not an optimum
    assert fr.bracketed is not None and not fr.bracketed.all() and fr.note


def test_laws_are_solid_over_their_data_and_dashed_beyond(results):
    bc = results[fg.fig_critical_batch]
    ax = fg.fig_critical_batch(bc).axes[0]
    law = [ln for ln in ax.get_lines() if ln.get_label().startswith("$B_{crit}")][0]
    x = np.asarray(law.get_xdata(), float)
    x = x[np.isfinite(x)]
    assert law.get_linestyle() == "-"
    assert x.min() >= bc.levels["loss"].min() * (1 - 1e-6) and x.max() <= bc.levels["loss"].max() * (1 + 1e-6)
    assert any(ln.get_linestyle() == "--" for ln in ax.get_lines())  # the extrapolation, dashed


def test_new_figures_from_the_laws(results, synthetic):
    split = results[fg.fig_compute_split]
    assert split.p_N + split.p_B + split.p_S == pytest.approx(1.0)  # C = 6 N B S
    ex = results[fg.fig_excess_compute]
    assert ex.compute[np.argmin(np.abs(ex.ratio - 1))] == pytest.approx(1.0, abs=1e-3)  # no excess at N_eff
    lo, hi = ex.within_20pct
    assert lo < 1 < hi
    es = results[fg.fig_early_stopping]
    assert len(es.points) == (synthetic.runs["kind"] == "dataset_size").sum()
    lr = results[fg.fig_lr_scan]
    assert lr.best()["lr"].iloc[0] == pytest.approx(1e-3)  # generated with its minimum at 1e-3
    assert lr.points.sort_values("lr")["lr_sum"].is_monotonic_increasing
    log = results[fg.fig_log_fit]
    assert log.rms_power < log.rms_log  # the data follow a power law, which must win
    ctx = results[fg.fig_position_vs_n]
    assert set(sc.log_positions(64)) == {1, 2, 4, 8, 16, 32, 64} and ctx.n_ctx == 64
    assert ctx.during["step"].nunique() == 2  # the two earlier evaluations of the largest model


def test_captions_say_what_the_data_show(results):
    """Captions are computed: Fig 9 says when one size cannot test a collapse; the approaches name what is missing."""
    from scalinglab.report.build import FIGURES

    caption = {p.stem: p.caption for f in FIGURES for p in f.panels}
    nd = results[fg.fig_overfitting]
    sizes = nd.points.loc[nd.points["limited"], "N"].nunique()
    text = caption["fig9_overfitting"](nd)
    assert ("not tested" in text) == (sizes < 2) and f"at {sizes} size" in text
    ap = results[fg.fig_approaches]
    assert ap.isoflop is None and "Approach 2 not drawn" in caption["chinchilla_approaches"](ap)
    fr = results[fg.fig_optimal_allocation]
    assert f"{fr.frontier.a:.3g}" in caption["fig14_optimal_allocation"](fr)  # the exponent measured, not the paper's


def test_constants_table_flags_what_the_fits_warn_about(results):
    """A constant the fit warns about (at a bound, unidentified...) is flagged with that warning's message, and
    an exponent two laws disagree on with the other law's estimate."""
    from scalinglab.report.build import _constants_table, disagreements
    from scalinglab.report.html import FLAG

    named = {"L(N)": results[fg.fig_loss_vs_n], "L(D)": results[fg.fig_loss_vs_d], "L(N, D)": results[fg.fig_loss_vs_nd],
             "L(C)": results[fg.fig_compute_frontier], "L(N, S)": results[fg.fig_learning_curves],
             "B_crit": results[fg.fig_critical_batch]}
    warned = 0
    split = disagreements(named)
    for name, a in named.items():
        fits = [a.fit] + [f for f in (getattr(a, "chinchilla", None), getattr(a, "fit_min", None), getattr(a, "noise_fit", None)) if f]
        messages = {w["message"] for f in fits for w in getattr(f, "warnings", []) if w.get("param")}
        for c in a.constants():
            assert not (set(c.flags) - messages - {"no interval: the fit was not bootstrapped",
                                                   "no interval: too few bootstrap refits converged"})
        warned += sum(bool(c.flags) or any(d.involves(name, c.name) and c.law == name for d in split) for c in a.constants())
    table = _constants_table(named)
    flagged = [cell for row in table.rows for cell in row if cell.startswith(FLAG)]
    assert len(flagged) == warned and all("⚠" in cell for cell in flagged)
    shown = " ".join(flagged)
    for a in named.values():
        for c in a.constants():
            assert all(html.escape(f.split(": ")[0]) in shown for f in c.flags)  # each warning's finding is shown
    assert [d.param for d in split] == ["alpha_D"]  # the synthetic L(D) (0.0038) and L(N, D) (at its bound 10)
    assert all(html.escape(d.flag(law)) in shown for d in split for law in d.laws)


def test_tick_labels_are_plain_text_powers_of_ten():
    cases = {1e5: "10⁵", 1.0: "10⁰", 1e-3: "10⁻³", 8.8e13: "8.8×10¹³", 2.5e-7: "2.5×10⁻⁷", -3e6: "−3×10⁶", 9.99e5: "10⁶"}
    assert {x: fg.sci_text(x) for x in cases} == cases
