"""The report's hyper-parameter section (report.hparams): the analysis on an hp_grid runs table and its figures."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from scalinglab.report import hparams as hp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "laws"))
from test_hparams import TRUE, synthetic_grid  # noqa: E402  (the laws tests' grids drawn from known optima)


def _runs():
    """The synthetic grid as a collected study's runs table: one hp_grid design, one group per cell."""
    g = synthetic_grid(0, sizes=(1e7, 4e7), data=(1e9, 4e9))
    cell = [f"N{n:g}-D{d:g}" for n, d in zip(g["N"], g["D"])]
    return g.rename(columns={"batch": "batch_tokens"}).assign(
        status="done", design="hp_grid", kind="hp_grid", group=cell, designs="hp_grid", groups=cell, n_layer=2,
        run_id=[f"r{i}" for i in range(len(g))],
    )


def test_analysis_and_figures() -> None:
    a = hp.hyper_parameters(_runs())
    assert len(a.fit.cells) == 4
    lo, hi = a.fit.lr.N_exp_interval
    assert lo < TRUE["lr"][1] < hi
    assert "η_opt" in hp.caption_lr(a) and "4 cells" in hp.caption_lr(a)
    for draw in (hp.fig_landscape, hp.fig_lr_opt, hp.fig_batch_opt):
        fig = draw(a)
        assert len(fig.axes) >= 1 and all(ax.has_data() for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>")
