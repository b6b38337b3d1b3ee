"""Every figure function draws from its analysis: labelled axes, fitted laws in the legend, PNG and SVG."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from scalinglab.report import analyses as an
from scalinglab.report import figures as fg


@pytest.fixture(scope="module")
def results(synthetic):
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1):  # intervals are not checked here: few resamples
        mp.setattr(an, "BOOTSTRAP", 5)
        mp.setattr(an, "JOINT_BOOTSTRAP", 2)
        return _analyses(synthetic)


def _analyses(synthetic):
    runs, curves = synthetic.runs, synthetic.curves
    bc = an.critical_batch(runs, synthetic.metrics)
    law_n = an.loss_vs_n(runs)
    nd = an.loss_vs_nd(runs)
    fr = an.compute_frontier(runs, curves, bc)
    return {
        fg.fig_loss_vs_n: law_n,
        fg.fig_loss_vs_d: an.loss_vs_d(runs),
        fg.fig_compute_frontier: fr,
        fg.fig_optimal_allocation: fr,
        fg.fig_loss_vs_nd: nd,
        fg.fig_overfitting: nd,
        fg.fig_learning_curves: an.learning_curves(runs, curves, bc),
        fg.fig_loss_at_fixed_compute: an.learning_curves(runs, curves, bc),
        fg.fig_batch_scan: bc,
        fg.fig_critical_batch: bc,
        fg.fig_sample_efficiency: an.sample_efficiency(runs, curves, bc),
        fg.fig_shape: an.shape_invariance(runs, law_n),
        fg.fig_embedding: an.embedding_collapse(runs),
        fg.fig_transfer: an.transfer(runs, curves),
        fg.fig_approaches: an.approaches(runs, fr, nd),
        fg.fig_backtest: an.backtest(runs),
    }


def test_every_figure_function_is_exercised(results):
    drawn = {f.__name__ for f in results} | {"fig_per_position"}  # per-position: the demo test (real runs)
    assert drawn == {n for n in dir(fg) if n.startswith("fig_")}


@pytest.mark.slow
def test_figures_have_labels_and_fitted_equations(results, tmp_path):
    for draw, analysis in results.items():
        fig = draw(analysis)
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_xlabel() and ax.get_ylabel(), draw.__name__
        labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        if draw in (fg.fig_loss_vs_n, fg.fig_loss_vs_d, fg.fig_compute_frontier, fg.fig_loss_vs_nd, fg.fig_critical_batch):
            assert any("$" in t and "=" in t for t in labels), (draw.__name__, labels)  # the law, with its constants
        png, svg = fg.save(fig, tmp_path, draw.__name__)
        assert png.stat().st_size > 5000 and svg.read_text().lstrip().startswith("<?xml")
