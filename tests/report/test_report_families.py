"""Figs 7, 17 and 24 (report.families): the numbers each analysis states, on tables built from known curves,
and the three sections drawn in a real report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError
from scalinglab.report import families as fm
from scalinglab.report import figures as fg
from scalinglab.report.build import FIGURES, Tables
from scalinglab.study.selection import law_runs, select_for_law

T = np.arange(1, 129)
FLAT_AFTER = 20


def lstm_curve(level: float) -> np.ndarray:
    """Improves until position 20, then flat: the shape Kaplan saw for LSTMs."""
    return level + 1.5 * (np.minimum(T, FLAT_AFTER) ** -0.5 - FLAT_AFTER**-0.5)


def transformer_curve(level: float) -> np.ndarray:
    """A power law in position over the whole context (Kaplan Fig 20)."""
    return level + 1.5 * (T**-0.5 - T[-1] ** -0.5)


def _row(run_id, arch, n_layer, d_model, n, loss, reuse=1, design="ladder", **extra):
    return {"run_id": run_id, "name": run_id, "design": design, "designs": design, "kind": "ladder", "group": run_id,
            "status": "done", "arch": arch, "reuse": reuse, "n_layer": n_layer, "d_model": d_model, "N": n,
            "N_with_reuse": n * reuse, "N_total": n + 1e4, "train_tokens_limit": 0, "D": 1e6, "C": 6 * n * reuse * 1e6,
            "steps": 100, "loss": loss, "best_loss": loss, "best_step": 100, "batch_tokens": 1024, "batch_size": 8,
            "n_ctx": 128, "n_head": 2, "d_ff": 4 * d_model, "vocab_size": 512, "seed": 0, "lr": 1e-3, "epochs": 0.1,
            **extra}  # fmt: skip


@pytest.fixture()
def families() -> Tables:
    """Transformers at three sizes, an LSTM of about the middle N, universal runs and a depth design."""
    rows = [
        _row("t1", "gpt", 2, 32, 2.5e4, 4.4), _row("t2", "gpt", 4, 32, 5e4, 4.2), _row("t3", "gpt", 8, 32, 1e5, 4.0),
        _row("l1", "lstm", 1, 56, 5.2e4, 4.5),
        _row("u2", "universal", 2, 32, 2.5e4, 4.3, reuse=2),  # 0.1 better than plain at its N, 0.1 worse at its compute
        _row("u4", "universal", 2, 32, 2.5e4, 4.1, reuse=4),
        *(_row(f"d{L}", "gpt", L, d, 1e5 * (1 + 0.05 * k), 4.0 + 0.01 * k, design="depth",
               loss_valid=4.0 + 0.01 * k, loss_books=5.0 + 0.1 * k)
          for k, (L, d) in enumerate([(1, 96), (2, 64), (4, 48), (8, 32)])),
    ]  # fmt: skip
    runs = pd.DataFrame(rows)
    curves = pd.DataFrame([{"run_id": r["run_id"], "step": s, "tokens": 1024 * s, "C": r["C"] * s / 100,
                            "loss": r["loss"] + 2.0 / s, "N": r["N"], "batch_tokens": 1024}
                           for r in rows for s in (10, 50, 100)])
    levels = {"t1": transformer_curve(4.4), "t2": transformer_curve(4.2), "t3": transformer_curve(4.0), "l1": lstm_curve(4.5)}
    positions = pd.concat([pd.DataFrame({"run_id": k, "step": 100, "T": T, "loss": v, "final": True}) for k, v in levels.items()])
    records = pd.DataFrame({"run_id": [], "step": [], "train_loss": [], "lr": []})
    return Tables(runs, curves, records, positions)


def test_fig7_finds_where_each_curve_flattens(families: Tables) -> None:
    a = fm.lstm_comparison(families.runs, families.positions)
    p = a.pairs.iloc[0]
    assert p["transformer"] == "t2"  # the Transformer nearest the LSTM's N
    assert p["T90_lstm"] <= FLAT_AFTER < p["T90_transformer"]
    assert p["late_gain_lstm"] == pytest.approx(0.0, abs=1e-12) and p["late_gain_transformer"] > 0.01
    gap = lstm_curve(4.5) - transformer_curve(4.2)
    assert p["gap_growth"] == pytest.approx(gap[64:].mean() - gap[:32].mean()) and p["gap_growth"] > 0
    assert set(a.points["series"]) == {"Transformer", "LSTM, 1 layer"}
    assert "T = " in fm.caption_positions(a) and "Transformer" in fm.caption_lstm(a)


def test_improvement_position_and_late_gain_by_hand() -> None:
    step = np.array([5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    assert fm.improvement_position(step) == 3  # all of the 2-nat gain is made by T = 3
    assert fm.late_gain(step) == 0.0
    assert fm.late_gain(np.linspace(4, 3, 8)) == pytest.approx(np.mean(np.linspace(4, 3, 8)[2:4]) - np.mean(np.linspace(4, 3, 8)[4:]))


def test_fig17_compares_with_plain_models_of_equal_n_and_equal_compute(families: Tables) -> None:
    a = fm.recurrent_comparison(families.runs, families.curves)
    v = a.versus.set_index("run_id")
    assert v.loc["u2", "per_parameter"] == pytest.approx(4.3 - 4.4)  # plain at N = 2.5e4
    assert v.loc["u2", "per_flop"] == pytest.approx(4.3 - 4.2)  # plain at N = 5e4, the compute of reuse 2
    assert v.loc["u4", "per_flop"] == pytest.approx(4.1 - 4.0)
    assert set(a.points["series"]) == {"Transformer", "reuse 2x", "reuse 4x"}
    assert "+0.100 against one of its compute" in fm.caption_recurrent(a)


def test_fig24_loss_per_set_against_depth(families: Tables) -> None:
    a = fm.depth_generalisation(families.runs)
    assert a.design == "depth" and sorted(a.points["n_layer"].unique()) == [1, 2, 4, 8]
    s = a.spread.set_index("set")
    assert s.loc["books", "range"] == pytest.approx(0.3)
    assert s.loc["books", "slope_per_doubling"] == pytest.approx(0.1)  # +0.1 nats per doubling, by construction
    assert s.loc["valid", "slope_per_doubling"] == pytest.approx(0.01)
    assert s.loc["books", "offset_slope_per_doubling"] == pytest.approx(0.09)  # books gains 0.1, valid 0.01
    assert np.isnan(s.loc["valid", "offset_slope_per_doubling"])
    assert "offset over valid +0.090 per doubling" in fm.caption_depth(a)


def test_a_study_without_the_families_says_which_design_to_add(families: Tables) -> None:
    gpt_only = families.runs[families.runs["arch"] == "gpt"]
    with pytest.raises(DataError, match='arch = "lstm"'):
        fm.lstm_comparison(gpt_only, families.positions)
    with pytest.raises(DataError, match='arch = "universal"'):
        fm.recurrent_comparison(gpt_only, families.curves)
    with pytest.raises(DataError, match="three or more depths"):
        fm.depth_generalisation(gpt_only[gpt_only["design"] == "ladder"])


def test_the_transformer_laws_leave_other_families_out(families: Tables) -> None:
    assert set(law_runs(families.runs)["arch"]) == {"gpt"}
    kept, why = select_for_law(families.runs, "kaplan_n")
    assert set(kept["arch"]) == {"gpt"} and "3 of other model families" in why
    kept, _ = select_for_law(families.runs, "kaplan_n", design="ladder")  # a design named keeps its families
    assert "universal" in set(kept["arch"])  # (the 1-layer LSTM is left out as every 1-layer model)


def test_sections_7_17_24_draw_their_panels(families: Tables, tmp_path) -> None:
    """The panels the report registers for fig-7, fig-17 and fig-24, drawn as the report draws them."""
    from scalinglab.report.build import _panel

    t = families
    results = {
        "families: LSTM": fm.lstm_comparison(t.runs, t.positions),
        "families: universal": fm.recurrent_comparison(t.runs, t.curves),
        "families: depth": fm.depth_generalisation(t.runs),
    }
    drawn: dict = {}
    figures = {f.key: f for f in FIGURES}
    panels = [_panel(p, results, {}, tmp_path, drawn) for key in ("fig-7", "fig-17", "fig-24") for p in figures[key].panels]
    assert set(drawn) == {"fig7_lstm", "fig7_per_position", "fig17_recurrent", "fig24_depth"}
    assert all(p.png is not None and p.png.stat().st_size > 10_000 and not p.note for p in panels)
    assert "LSTM, 1 layer: 90% of its gain by T =" in panels[1].caption and "per doubling" in panels[3].caption
    missing = _panel(figures["fig-7"].panels[0], {}, {"families: LSTM": "Fig 7 needs ... a ladder design"}, tmp_path, {})
    assert missing.png is None and missing.note.startswith("not drawn: Fig 7 needs")
    assert fg.fig_depth(results["families: depth"]).axes[0].get_xscale() == "log"
