"""`study suggest` end to end: a fit's bootstrap proposes runs, the block appended to the study plans and trains them, and
`study watch` shows them done."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.study.conftest import BASE, write_study

from scalinglab.cli import main
from scalinglab.laws.forms import get_form

pytestmark = pytest.mark.slow  # trains three tiny runs

LAW = {"E": 3.0, "A": 40.0, "B": 60.0, "alpha": 0.35, "beta": 0.33}  # CPU-scale, not a paper's constants


def test_suggested_runs_append_to_the_study_plan_and_train(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    n = np.repeat([6e3, 1.2e4, 2.5e4], 3)
    runs = pd.DataFrame({"N": n, "D": n * np.tile([1.0, 2.0, 4.0], 3)})
    runs["loss"] = get_form("chinchilla").predict(LAW, runs) * np.exp(rng.normal(0, 0.01, len(runs)))
    runs.to_csv(tmp_path / "runs.csv", index=False)  # runs from elsewhere, at the scale of the study's shapes
    assert main(["fit", str(tmp_path / "runs.csv"), "--bootstrap", "40", "--out", str(tmp_path / "fit.json"), "--no-progress"]) == 0
    base = BASE.replace("steps = 30", "steps = 10").replace("checkpoint_steps = 10", "checkpoint_steps = 0")
    study = write_study(tmp_path, "next", '[[design]]\nkind = "ladder"\nshapes = [[2, 16]]', base=base)
    capsys.readouterr()

    block = tmp_path / "next-runs.toml"
    args = ["study", "suggest", str(study), "--target-budget", "1e12", "--spend", "1e9", "--k", "2",
            "--fit", str(tmp_path / "fit.json"), "--out", str(block), "--json"]  # fmt: skip
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert 1 <= len(s["runs"]) <= 2 and s["cost"] <= 1e9 and 0 < s["shrink"] < 1
    designs = tomllib.loads(block.read_text())["design"]
    assert [d["name"] for d in designs] == [f"suggest-{i}" for i in range(1, len(s["runs"]) + 1)]
    assert [d["tokens"][0] for d in designs] == [int(r["D"]) for r in s["runs"]]

    study.write_text(study.read_text() + "\n" + block.read_text())
    assert main(["study", "plan", str(study), "--no-measure", "--json"]) == 0
    planned = {r["name"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    for d, r in zip(designs, s["runs"]):
        (mine,) = [p for name, p in planned.items() if name.startswith(d["name"] + "-")]
        assert (mine["n_layer"], mine["d_model"]) == (r["n_layer"], r["d_model"]) and mine["N"] == pytest.approx(r["N"])
        assert mine["tokens"] == pytest.approx(r["D"], rel=0.02)  # whole optimiser steps

    assert main(["study", "run", str(study), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", "watch", str(study), "--once"]) == 0
    frame = [line for line in capsys.readouterr().out.splitlines() if line]
    total = 1 + len(s["runs"])
    assert frame[0].startswith(f"study next: {total} done, 0 running, 0 pending of {total}; finished")
    rows = [line for line in frame if line.startswith(("ladder-", "suggest-"))]
    assert len(rows) == total and all("done" in r and any(c in r for c in "▁▂▃▄▅▆▇█_.-~=+*#") for r in rows)
    assert frame[-1].startswith("fit chinchilla")
    from scalinglab.laws.diagnostics import findings
    from scalinglab.laws.fit import fit_law
    from scalinglab.study.collect import collect
    from scalinglab.study.selection import select_for_law

    runs, _ = collect(tmp_path / "runs" / "next")
    table = select_for_law(runs, "chinchilla")[0].reset_index(drop=True)
    if len(table) <= 5:  # too few runs for five parameters: the line says so
        assert frame[-1].startswith("fit chinchilla: not yet (law 'chinchilla' has 5 parameters"), frame[-1]
    else:
        fitted = fit_law("chinchilla", table, calibrate=False)
        for finding in findings(fitted.warnings):  # what the fit doubts is on the line beside its parameters
            assert finding in frame[-1].partition(" ⚠ ")[2], frame[-1]
    assert main(["study", "watch", str(tmp_path / "runs" / "next"), "--once"]) == 0  # the directory alone: the same runs
    assert capsys.readouterr().out.startswith(f"study next: {total} done, 0 running, 0 pending of {total}; finished")
