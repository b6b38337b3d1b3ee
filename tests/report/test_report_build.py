"""The whole report from collected tables: all 24 figure sections, a ladder-only study, and the page in Chromium."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import warnings

import numpy as np
import pytest
from tests.report.conftest import browser_layout, chromium

from scalinglab.errors import ConfigError
from scalinglab.report import analyses as an
from scalinglab.report.build import FIGURES, Tables, report_from_tables

pytestmark = pytest.mark.slow

LADDER_FIGURES = {"fig-1", "fig-2", "fig-4", "fig-6", "fig-11", "fig-13", "fig-14", "fig-19", "fig-20", "fig-21", "fig-23"}
"""What a ladder alone supports (with per-position losses)."""


@pytest.fixture(scope="module")
def ladder_tables(synthetic):
    runs = synthetic.runs[synthetic.runs["kind"] == "ladder"]
    ids = set(runs["run_id"])
    return Tables(runs, synthetic.curves[synthetic.curves["run_id"].isin(ids)],
                  synthetic.metrics[synthetic.metrics["run_id"].isin(ids)],
                  synthetic.positions[synthetic.positions["run_id"].isin(ids)])


def _ladder_report(tables, out, workers=None):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(an, "BOOTSTRAP", 5)
        mp.setattr(an, "JOINT_BOOTSTRAP", 2)
        return report_from_tables(tables, out, "ladder only", workers=workers)


@pytest.fixture(scope="module")
def ladder_report(ladder_tables, tmp_path_factory):
    return _ladder_report(ladder_tables, tmp_path_factory.mktemp("ladder-report"), workers=2)  # figures in 2 processes


def test_a_ladder_draws_what_it_supports_and_notes_the_rest(ladder_report):
    html = ladder_report.path.read_text()
    ids = re.findall(r'<figure id="([^"]+)"', html)
    assert ids[:24] == [f"fig-{n}" for n in range(1, 25)] and ids == [f.key for f in FIGURES]  # every figure, in order
    drawn = {k for k, v in ladder_report.sections.items() if v}
    assert drawn >= LADDER_FIGURES, LADDER_FIGURES - drawn
    for key in ("fig-3", "fig-5", "fig-9", "fig-10", "fig-12", "fig-15", "fig-16", "fig-18", "fig-22"):  # designs a ladder lacks
        assert not ladder_report.sections[key]
        section = html[html.index(f'id="{key}"'):]
        note = section[: section.index("</figure>")]
        assert "not drawn: " in note and re.search(r"add an? [a-z_]+ design", note), key
    assert "Skipped:" not in html


def test_figures_drawn_in_processes_are_those_drawn_in_one(ladder_tables, ladder_report, tmp_path, monkeypatch):
    """Two drawing processes write the same PNGs and page as one, and a warning raised while drawing in a child
    still reaches the page's notes."""
    fig1 = next(f for f in FIGURES if f.key == "fig-1")

    def warns(a, draw=fig1.panels[0].draw):
        warnings.warn("a warning raised while drawing", stacklevel=1)
        return draw(a)

    monkeypatch.setattr(fig1, "panels", [dataclasses.replace(fig1.panels[0], draw=warns), *fig1.panels[1:]])
    forked, alone = _ladder_report(ladder_tables, tmp_path / "forked", 2), _ladder_report(ladder_tables, tmp_path / "alone", 1)
    assert list(forked.figures) == list(alone.figures) == list(ladder_report.figures)  # page order
    assert len(forked.figures) >= len(LADDER_FIGURES)
    for stem, png in alone.figures.items():
        assert forked.figures[stem].read_bytes() == png.read_bytes(), stem
    assert forked.path.read_text() == alone.path.read_text()
    assert "a warning raised while drawing" in forked.path.read_text()
    with pytest.raises(ConfigError, match="--workers 0"):
        from scalinglab.cli.report import run

        run(argparse.Namespace(study_dir=str(tmp_path), out=None, workers=0, quiet=True, json=False))
    with pytest.raises(ConfigError, match="--workers -1: give at least 1"):  # the library refuses it too, not drawing serially
        report_from_tables(ladder_tables, tmp_path / "none", "ladder only", workers=-1)
    assert not (tmp_path / "none").exists()


def test_a_drawing_process_that_dies_costs_no_panel(ladder_tables, ladder_report, tmp_path, monkeypatch):
    """A child killed while drawing (the OOM killer) breaks the pool: the rest is drawn here, and the page says so."""
    fig1, parent = next(f for f in FIGURES if f.key == "fig-1"), os.getpid()

    def dies_in_a_child(a, draw=fig1.panels[0].draw):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return draw(a)

    monkeypatch.setattr(fig1, "panels", [dataclasses.replace(fig1.panels[0], draw=dies_in_a_child), *fig1.panels[1:]])
    report = _ladder_report(ladder_tables, tmp_path / "killed", 2)
    assert list(report.figures) == list(ladder_report.figures)
    assert "a figure-drawing process died" in report.path.read_text()


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (scripts/install.sh installs it)")
def test_every_figure_is_visible_in_order_at_desktop_width(ladder_report, tmp_path):
    """Chromium lays the page out at 1280 px: every figure has a box, top to bottom in page order; screenshot kept."""
    body, figures, shot = browser_layout(ladder_report.path, tmp_path)
    assert 'data-images-ok="yes"' in body, body
    assert [k for k, _ in figures] == [f.key for f in FIGURES]
    tops = np.array([top for _, top in figures])
    assert (tops > 0).all() and (np.diff(tops) > 0).all(), figures  # visible, and in view order
    assert shot.stat().st_size > 50_000
