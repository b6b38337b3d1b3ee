"""`study watch`: learning curves read by streaming, sparklines, and a frame of a study that has not started."""

from __future__ import annotations

import json
from pathlib import Path

from tests.study.conftest import write_study

from scalinglab.cli import main
from scalinglab.study import load_study
from scalinglab.study.watch import ASCII_SPARK, SPARK, CurveTail, StudyView, sparkline


def _line(step: int, loss: float, **extra: float) -> str:
    return json.dumps({"step": step, "tokens": 256 * step, "train_loss": loss, "wall_time": 0.1 * step, **extra}) + "\n"


def test_a_curve_is_read_by_streaming_whole_lines_only_and_again_after_a_resume_truncates_it(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = CurveTail(tmp_path)
    assert tail.poll() == 0  # no file yet
    path.write_text(_line(1, 6.0) + _line(2, 5.5) + _line(3, 5.0)[:20])  # a line being written
    assert tail.poll() == 2 and tail.step == 2 and tail.curve == [6.0, 5.5]
    with open(path, "a") as f:
        f.write(_line(3, 5.0)[20:] + _line(4, 4.5, val_loss_valid=4.7))
    assert tail.poll() == 2 and tail.step == 4 and tail.val == 4.7 and tail.curve == [6.0, 5.5, 5.0, 4.5]
    assert tail.seconds_per_step == 0.1 * 4 / 4
    assert tail.poll() == 0  # nothing new: nothing read
    path.write_text(_line(1, 6.0) + _line(2, 5.6))  # a resumed run truncated its metrics to its checkpoint
    assert tail.poll() == 2 and tail.curve == [6.0, 5.6] and tail.step == 2


def test_a_long_curve_keeps_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("".join(_line(s, 10.0 / s) for s in range(1, 1501)))
    tail = CurveTail(tmp_path)
    assert tail.poll() == 1500
    assert 256 <= len(tail.curve) <= 512 and tail.curve[0] == 10.0


def test_a_sparkline_falls_with_the_loss_and_fits_its_width() -> None:
    line = sparkline([5.0 - 0.01 * i for i in range(300)], 20)
    assert len(line) == 20 and line[0] == SPARK[-1] and line[-1] == SPARK[0]
    assert sparkline([1.0, 1.0], 8, ASCII_SPARK) == ASCII_SPARK[0] * 2 and sparkline([], 8) == ""


def test_a_study_not_yet_started_shows_every_run_pending_and_no_fit(tmp_path: Path, capsys) -> None:
    path = write_study(tmp_path, "w", '[[design]]\nkind = "ladder"\nshapes = [[2, 16], [2, 32]]')
    view = StudyView(load_study(path))
    lines = view.frame()
    assert lines[0].startswith("study w: 0 done, 0 running, 2 pending of 2; ETA unknown")
    assert sum("pending" in line for line in lines[2:4]) == 2 and "ladder-L2-d16" in lines[2]
    assert lines[-1] == "fit chinchilla: no finished runs yet" and not view.finished

    html = tmp_path / "watch.html"
    assert main(["study", "watch", str(path), "--once", "--html", str(html)]) == 0
    out = capsys.readouterr().out  # not a terminal: the frame as plain lines, no screen codes
    assert "\x1b" not in out and out.count("  pending  ") == 2
    assert 'http-equiv="refresh"' in html.read_text() and "ladder-L2-d32" in html.read_text()
    assert main(["study", "watch", str(path), "--once", "--json", "--html", str(html)]) == 0
    frame = json.loads(capsys.readouterr().out)  # one line: the frame as JSON, no text around it
    assert frame["counts"] == {"pending": 2} and frame["eta_seconds"] is None and not frame["finished"]
    assert [r["state"] for r in frame["runs"]] == ["pending", "pending"] and "curve" not in frame["runs"][0]
    assert frame["fit"] == {"law": "chinchilla", "error": "no finished runs yet"} and "ladder-L2-d16" in html.read_text()
    assert main(["study", "watch", str(path), "--interval", "0"]) == 2
    assert "--interval" in capsys.readouterr().err
