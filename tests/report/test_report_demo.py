"""The quick demo end to end (a real study on the built-in corpus), its report, and the report in a browser."""

from __future__ import annotations

import html as html_lib
import json

import numpy as np
import pytest
from tests.report.conftest import browser_layout, chromium

from scalinglab.cli import main
from scalinglab.report.answer import conclusion

pytestmark = pytest.mark.slow


def test_quick_demo_writes_a_complete_report(quick_demo):  # its time is measured in benchmarks/demo_plan.py
    result, _ = quick_demo
    html = result.report.path.read_text()
    assert result.report.path.name == "index.html" and result.report.path.parent.name == "report"
    for n in range(1, 25):  # every figure of the paper has its section: drawn, or noted "not drawn: ..."
        assert f'id="fig-{n}"' in html
    assert set(result.report.sections) >= {f"fig-{n}" for n in range(1, 25)}
    assert html.count('class="skip">not drawn: ') >= sum(not v for v in result.report.sections.values())
    # the demo's designs feed every analysis, shape invariance and transfer included
    for key in ("fig1_loss_vs_n", "fig1_loss_vs_d", "fig13_compute_frontier", "fig4_loss_vs_nd",
                "fig18_batch_scan", "fig10_critical_batch", "fig20_per_position", "backtest",
                "fig5_shape", "fig8_transfer"):
        assert key in result.report.figures, result.report.skipped
        png = result.report.figures[key]
        assert png.stat().st_size > 5000 and png.with_suffix(".svg").is_file()
    assert "src=\"data:image/png;base64," in html and "<img src=\"figures/" not in html  # self-contained
    n = result.report.numbers
    assert n["alpha_N"] > 0 and n["B_star"] > 0
    # the page carries the answer as the closing note prints it: a by each approach with its interval, and every warning
    assert "<th>the answer</th>" in html and html_lib.escape(conclusion(result.exponents)) in html
    for e in result.exponents:
        assert f"<th>N_opt ∝ C^a, {e.method} (95% interval)</th><td>{html_lib.escape(e.value_text())}</td>" in html
    for w in result.warnings:
        assert html_lib.escape(w["message"]) in html


def test_predict_on_the_quick_demos_ladder_predicts_its_largest_run(quick_demo, capsys):
    # A study directory stands for its ladder, largest first; fitted on the first half of the largest run.
    import json

    result, _ = quick_demo
    study = result.study_file.parent
    assert main(["predict", str(study), "--design", "ladder", "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert main(["predict", str(study), "--design", "ladder", "--fit-until", str(whole["at_step"] / 2), "--json"]) == 0
    captured = capsys.readouterr()
    half = json.loads(captured.out)
    assert half["run"] == whole["run"] and half["observed"] == whole["observed"] > 0
    assert half["law"].startswith(("L = L0", "L(N, S)")) and half["fit_steps"][1] <= whole["at_step"] / 2
    assert half["interval"][0] < half["loss"] < half["interval"][1] and abs(half["loss"] / half["observed"] - 1) < 0.2
    assert "predicting the largest" in captured.err and "L(N, S):" not in captured.err


def test_fit_kaplan_ns_on_a_study_fits_the_reports_learning_curves(quick_demo, capsys, tmp_path):
    # L(N, S) is fitted on evaluations, not on the runs table: the CLI fits the rows the report fits
    import json
    import shutil

    result, _ = quick_demo
    study = tmp_path / "study"
    shutil.copytree(result.study_file.parent, study, ignore=shutil.ignore_patterns("report"))
    assert main(["collect", str(study)]) == 0
    capsys.readouterr()
    assert main(["fit", str(study), "--law", "kaplan_ns", "--bootstrap", "0", "--json"]) in (0, 1)
    captured = capsys.readouterr()
    fit = json.loads(captured.out)
    report = result.report.results["L(N, S)"]
    assert fit["n_points"] == len(report.points) > 2 * report.points["run_id"].nunique()
    for name, value in report.fit.params.items():
        assert fit["params"][name] == pytest.approx(value, rel=1e-6), name
    assert "S = S_min = S/(1 + B_crit(L)/B)" in captured.err
    assert any("each run weighs 1" in note for note in fit["notes"])

    # tables without their run directories: the curves are there, the batch scan's training losses are not
    tables = tmp_path / "tables"
    assert main(["collect", str(study), "--out", str(tables)]) == 0
    capsys.readouterr()
    assert main(["fit", str(tables), "--law", "kaplan_ns", "--bootstrap", "0", "--json"]) in (0, 1)
    captured = capsys.readouterr()
    raw = json.loads(captured.out)
    assert raw["n_points"] == len(report.points)
    assert "S = steps as trained (B_crit(L) not measured: no run directories of a batch scan here" in captured.err
    assert "steps_not_adjusted" in [w["kind"] for w in raw["warnings"]]  # said as a warning, not only a note
    assert "warning: S is the steps as trained, not S_min" in captured.err
    assert "steps_not_adjusted" not in [w["kind"] for w in fit["warnings"]]
    for steps in tables.glob("steps.*"):
        steps.unlink()
    assert main(["fit", str(tables), "--law", "kaplan_ns"]) == 2
    assert "has no steps.parquet; run `scalinglab collect" in capsys.readouterr().err


def test_report_of_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (scripts/install.sh installs it)")
def test_every_image_loads_and_every_figure_shows_in_a_real_browser(quick_demo, tmp_path):
    result, _ = quick_demo
    body, figures, shot = browser_layout(result.report.path, tmp_path)
    n_img = result.report.path.read_text().count("<img ")
    assert n_img == len(result.report.figures) > 0
    assert 'data-images-ok="yes"' in body, body  # every <img> complete with naturalWidth > 0
    assert f'data-images="{n_img}"' in body
    ids = [k for k, _ in figures]
    assert ids[:24] == [f"fig-{n}" for n in range(1, 25)]
    tops = [top for _, top in figures]
    assert min(tops) > 0 and tops == sorted(tops), figures  # each figure visible, in view order
    assert shot.stat().st_size > 50_000


def test_fit_of_a_study_collects_again_when_its_runs_table_is_stale(quick_demo, capsys, tmp_path):
    # `report` writes runs.parquet once; a run added or trained since must not leave `fit STUDY` on old runs
    import json
    import os
    import shutil

    from scalinglab.study.collect import stale_tables

    result, _ = quick_demo
    demo = result.study_file.parent
    assert (demo / "runs.parquet").is_file() and stale_tables(demo) is None  # the demo keeps what its report collected
    study = tmp_path / "study"
    shutil.copytree(demo, study, ignore=shutil.ignore_patterns("report"))
    run_dirs = sorted(p for p in study.iterdir() if (p / "config.json").is_file())
    late = tmp_path / run_dirs[-1].name
    shutil.move(run_dirs[-1], late)  # a run not yet there when the study was collected
    assert main(["collect", str(study)]) == 0
    capsys.readouterr()

    def fit() -> tuple[dict, str]:
        assert main(["fit", str(study), "--law", "kaplan_n", "--bootstrap", "0", "--json"]) in (0, 1)
        captured = capsys.readouterr()
        return json.loads(captured.out), captured.err

    _, err = fit()
    assert "stale" not in err  # current tables are read as they are
    shutil.move(late, study / late.name)  # copied in with its old file times: the listing tells
    _, err = fit()
    assert "runs.parquet was stale (1 run directories added or trained since" in err and late.name in err
    current, err = fit()
    assert "stale" not in err
    summary = run_dirs[0] / "summary.json"  # a run trained further: newer than the table
    future = summary.stat().st_mtime + 60
    os.utime(summary, (future, future))
    assert "stale" in fit()[1]
    shutil.rmtree(run_dirs[0])
    gone, err = fit()
    assert "1 of its runs no longer here" in err
    assert main(["collect", str(study)]) == 0
    capsys.readouterr()
    fresh, _ = fit()
    assert gone["params"] == fresh["params"] and gone["n_points"] == fresh["n_points"]
    assert not list(study.glob(".*.tmp"))  # the tables are replaced atomically

    table = study / "runs.parquet"
    table.write_bytes(table.read_bytes()[:100])  # cut short
    cut, err = fit()
    assert "runs.parquet was unreadable: collected again" in err and cut["params"] == fresh["params"]
    import pandas as pd

    pd.read_parquet(table).drop(columns="run_dir").to_parquet(table)  # a table of another making: its age alone tells
    assert "collected again" not in fit()[1]

    table.unlink()
    table.mkdir()  # where the table cannot be written (as a read-only share): one line that says where to collect
    (table / "x").touch()
    assert main(["fit", str(study), "--law", "kaplan_n", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the tables cannot be rewritten there" in err
    assert f"scalinglab collect {study} --out DIR" in err


def test_frontier_on_a_study_uses_the_runs_the_report_uses_for_each_approach(quick_demo, capsys):
    # Before, a study directory fed every run to the IsoFLOP profiles (ladder and scans as one-size "budgets").
    import json

    result, _ = quick_demo
    study = result.study_file.parent
    report = {e.key: e.value for e in result.exponents}
    checked = []
    for approach, key, said in (("isoflop", "a_isoflop", "the isoflop designs' finished runs"),
                                ("envelope", "a_envelope", "learning curves of the single-pass runs"),
                                ("parametric", "a_parametric", "L(N, D), Chinchilla form")):
        if not np.isfinite(report[key]):
            continue
        assert main(["frontier", str(study), "--approach", approach, "--bootstrap", "0", "--json"]) == 0, approach
        captured = capsys.readouterr()
        assert json.loads(captured.out)["a"] == pytest.approx(report[key], rel=1e-9), approach
        assert said in captured.err
        checked.append(approach)
    assert len(checked) >= 2, report


def test_watch_says_what_the_fit_of_the_finished_runs_doubts(quick_demo, capsys):
    # The quick demo's Chinchilla fit sits on a bound or leaves a parameter unidentified; the watch line said only
    # its parameters. Now each finding of the fit's warnings follows them after ⚠.
    from scalinglab.laws.diagnostics import findings
    from scalinglab.laws.fit import fit_law
    from scalinglab.study.collect import collect
    from scalinglab.study.selection import select_for_law

    result, _ = quick_demo
    study = result.study_file.parent
    assert main(["study", "watch", str(study), "--once"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x][-1]
    runs, _ = collect(study)
    fitted = fit_law("chinchilla", select_for_law(runs, "chinchilla")[0].reset_index(drop=True), calibrate=False)
    found = findings(fitted.warnings)
    assert line.startswith(f"fit chinchilla on {fitted.n_points} finished runs")
    assert line.partition(" ⚠ ")[2] == "; ".join(found), (line, found)
    # --json: the same frame as one line of JSON, the fit's warnings whole (a dashboard's view of the text)
    assert main(["study", "watch", str(study), "--once", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    frame = json.loads(out[0])
    assert frame["finished"] and frame["counts"]["done"] == frame["total"] == len(frame["runs"]) == len(runs)
    assert frame["fit"]["n_points"] == fitted.n_points and frame["fit"]["params"] == pytest.approx(fitted.params)
    assert [w["message"] for w in frame["fit"]["warnings"]] == [w["message"] for w in fitted.warnings]
    assert {r["name"] for r in frame["runs"]} == set(runs["name"]) and all(r["step"] == r["steps"] for r in frame["runs"])
