"""Study progress readable in a log: one line per finished run with k/N done and an ETA (no terminal needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.study.conftest import BASE, write_study

from scalinglab.study import load_study, run_study

pytestmark = pytest.mark.slow  # trains two tiny runs


def test_each_finished_run_prints_a_line_with_its_count_and_an_eta(tmp_path: Path, capsys) -> None:
    base = BASE.replace("steps = 30", "steps = 10").replace("checkpoint_steps = 10", "checkpoint_steps = 0")
    path = write_study(tmp_path, "log", '[[design]]\nkind = "ladder"\nshapes = [[2, 32], [2, 16]]', base=base)
    status = run_study(load_study(path), "local", workers=1, progress=True)
    assert (status["state"] == "done").all()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("done ")]
    assert len(lines) == 2, lines
    counts = [re.search(r"\[(\d+)/(\d+) done, ETA ([^\]]+)\]", line).groups() for line in lines]
    assert [(k, n) for k, n, _ in counts] == [("1", "2"), ("2", "2")]
    assert re.fullmatch(r"\d+ (s|min)", counts[0][2]) and counts[1][2] == "0 s"
