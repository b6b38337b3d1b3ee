"""``--plot`` of predict, fit and backtest: real figures of real results, with the warnings written under them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.laws.curves import load_curves, predict_curve
from scalinglab.report.plots import plot_prediction

CURVE = Path(__file__).resolve().parents[1] / "laws" / "data" / "curves" / "heldout" / "h1_cos_2500_d64.csv"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk; fails on anything that is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def chinchilla_table(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 10, 6), np.logspace(9, 12, 6)))
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.01, N.size))
    pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss}).to_csv(path, index=False)
    return path


def test_predict_plot_draws_the_curve_the_law_and_its_interval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figs" / "predict.png"
    assert main(["predict", str(CURVE), "--fit-until", "500", "--plot", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    pred = json.loads(captured.out)  # stdout stays JSON; the figure is said on stderr
    assert f"scalinglab predict: figure: {out}" in captured.err
    assert png_size(out)[0] > 500
    path = {k: np.array(v) for k, v in pred["path"].items()}  # what the figure draws, in the JSON too
    assert len(path["x"]) == 60 and path["x"][0] == pred["fit_steps"][0] and path["x"][-1] == pytest.approx(pred["at_step"])
    assert np.all(path["low"] < path["loss"]) and np.all(path["loss"] < path["high"])
    assert path["loss"][-1] == pytest.approx(pred["loss"]) and path["high"][-1] == pytest.approx(pred["interval"][1])


def test_a_figure_writes_its_warnings_under_the_axes(tmp_path: Path) -> None:
    """From 20% of a cosine run the decay's gain comes from the prior, which predict warns: the figure says it
    too (a line under the axes, so a taller image than the same figure without the warning)."""
    import dataclasses

    pred = predict_curve(load_curves(CURVE), fit_until=500)
    assert "prior" in [w["kind"] for w in pred.warnings]
    warned = png_size(plot_prediction(pred, load_curves(CURVE)[0], tmp_path / "warned.png"))
    quiet = png_size(plot_prediction(dataclasses.replace(pred, warnings=[]), load_curves(CURVE)[0], tmp_path / "quiet.png"))
    assert warned[0] == quiet[0] and warned[1] > quiet[1]


def test_fit_and_backtest_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = chinchilla_table(tmp_path / "runs.csv")
    assert main(["fit", str(table), "--bootstrap", "0", "--axis", "N", "--plot", str(tmp_path / "fit.svg")]) == 0
    assert "<svg" in (tmp_path / "fit.svg").read_text()[:400]
    assert main(["backtest", str(table), "--train", "C<1e20", "--bootstrap", "20", "--plot", str(tmp_path / "bt.png")]) == 0
    assert png_size(tmp_path / "bt.png")[0] > 800  # two panels
    err = capsys.readouterr().err
    assert f"figure: {tmp_path / 'fit.svg'}" in err and f"figure: {tmp_path / 'bt.png'}" in err


def test_a_plot_file_of_a_kind_matplotlib_cannot_write_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["fit", str(tmp_path / "missing.csv"), "--plot", str(tmp_path / "fit.jpg")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "does not end in .png, .svg, .pdf" in err and "missing.csv" not in err  # refused before reading the table
    assert not (tmp_path / "fit.jpg").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["fit", str(tmp_path / "missing.csv"), "--plot", str(tmp_path / "a_file" / "fit.png")])
    assert stop.value.code == 2 and "a_file is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
def test_a_figure_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    from scalinglab.errors import DiskError

    pred = predict_curve(load_curves(CURVE), fit_until=500)
    with pytest.raises(DiskError, match="cannot write /proc/no_such"):
        plot_prediction(pred, load_curves(CURVE)[0], "/proc/no_such/f.png")


def test_frontier_plot_of_each_approach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for c in np.geomspace(1e17, 1e19, 5):  # IsoFLOP budgets, sizes around each optimum
        for n in np.geomspace(2e6, 2e9, 9):
            d = c / (6 * n)
            rows.append((c, n, d, (1.8 + 480 / n**0.35 + 2100 / d**0.37) * np.exp(rng.normal(0, 0.003))))
    table = tmp_path / "isoflop.csv"
    pd.DataFrame(rows, columns=["C", "N", "D", "loss"]).to_csv(table, index=False)
    for approach in ("isoflop", "parametric"):
        out = tmp_path / f"{approach}.png"
        assert main(["frontier", str(table), "--approach", approach, "--bootstrap", "20", "--plot", str(out), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert png_size(out)[0] > 800 and 0.3 < result["a"] < 0.7


def test_plan_plot_draws_the_frontier_around_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan at 100x the runs' compute, on the frontier the law draws from well below the runs to past it."""
    from scalinglab.laws.fit import fit_law
    from scalinglab.laws.plan import plan_budget, planning_law
    from scalinglab.report.plots import plot_plan

    runs = pd.read_csv(chinchilla_table(tmp_path / "runs.csv"))
    fit = fit_law("chinchilla", runs, bootstrap=20)
    fit.to_json(tmp_path / "fit.json")
    budget = 100 * float(runs["C"].max())
    assert main(["plan", "--fit", str(tmp_path / "fit.json"), "--budget", f"{budget:g}", "--plot", str(tmp_path / "plan.png")]) == 0
    err = capsys.readouterr().err
    assert "extrapolates 2.0 decades" in err and f"figure: {tmp_path / 'plan.png'}" in err
    law = planning_law(fit, "fit.json")
    warned = png_size(plot_plan(plan_budget(law, budget), law, tmp_path / "far.png"))
    near = png_size(plot_plan(plan_budget(law, float(runs["C"].max())), law, tmp_path / "near.png"))
    assert warned[0] == near[0] > 800 and warned[1] > near[1]  # the extrapolation warning is written under the far one
    assert main(["plan", "--fit", str(tmp_path / "fit.json"), "--budget", "1e20", "--unique-tokens", "1e9",
                 "--plot", str(tmp_path / "capped.png")]) == 2
    assert "--plot draws the compute-optimal frontier with fresh data" in capsys.readouterr().err


def test_hparams_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.laws.test_hparams import synthetic_grid

    table = tmp_path / "grid.csv"
    synthetic_grid().to_csv(table, index=False)
    assert main(["hparams", str(table), "--bootstrap", "20", "--plot", str(tmp_path / "hp.png")]) == 0
    assert png_size(tmp_path / "hp.png")[0] > 800 and "figure:" in capsys.readouterr().err


def test_predict_plot_of_several_runs_draws_the_others_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = CURVE.parent / "h2_wsd20_2000_d48.csv"  # the joint LR-annealing fit: the finished run lends its shape
    out = tmp_path / "joint.png"
    assert main(["predict", str(CURVE), str(other), "--fit-until", "500", "--plot", str(out), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert "shared by 2 runs" in pred["law"] and png_size(out)[0] > 500
