"""Run selection: which runs of a collected study each law fits (study.selection), from the CLI too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError
from scalinglab.study.selection import select_for_law


def _row(run_id, kind, n, loss, best=None, limit=0, d=1e6, n_layer=2, designs=None, status="done"):
    return {"run_id": run_id, "name": run_id, "design": kind, "kind": kind, "group": "g", "status": status,
            "n_layer": n_layer, "N": n, "D": d, "C": 6 * n * d, "loss": loss,
            "best_loss": loss if best is None else best, "train_tokens_limit": limit,
            "designs": designs or kind, "groups": "g", "batch_tokens": 512}


def study_table() -> pd.DataFrame:
    """A ladder, a longer grid, a dataset-size sweep, a batch scan, a 1-layer model and an unfinished run."""
    rows = [_row(f"lad{i}", "ladder", n, 5 - i * 0.3) for i, n in enumerate([1e4, 3e4, 1e5])]
    rows += [_row("grid0", "nd_grid", 1e4, 4.7, d=4e6), _row("grid1", "nd_grid", 3e4, 4.9, d=4e6)]
    rows += [_row(f"data{j}", "dataset_size", 3e4, 5.5, best=5.2 - 0.1 * j, limit=t, d=2e6)
             for j, t in enumerate([1e5, 2e5, 4e5])]
    rows += [_row("small-data", "dataset_size", 1e4, 5.5, best=5.0, limit=1e5, d=2e6)]
    rows += [_row(f"batch{k}", "batch_scan", 1e4, 4.0 + k) for k in range(2)]
    rows += [_row("shared", "batch_scan", 1e5, 4.1, designs="batch_scan;ladder")]  # shared into the ladder
    rows += [_row("one-layer", "ladder", 2e5, 3.0, n_layer=1), _row("running", "ladder", 3e5, 3.0, status="running")]
    return pd.DataFrame(rows)


def test_l_of_n_takes_the_lowest_final_loss_per_size_of_single_pass_runs() -> None:
    rows, text = select_for_law(study_table(), "kaplan_n")
    # lad0 (4.7 beats 5.0 at 1e4: grid0 is longer), lad1 vs grid1 (4.7 < 4.9), at 1e5 the shared run (4.1 < 4.4)
    assert dict(zip(rows["N"], rows["run_id"])) == {1e4: "grid0", 3e4: "lad1", 1e5: "shared"}
    assert text.startswith("L(N): 3 of 14 runs on the recipe")
    for reason in ("1 unfinished", "2 hyper-parameter scan runs", "1 with fewer than 2 layers", "4 data-limited"):
        assert reason in text


def test_l_of_d_takes_the_largest_model_early_stopped_over_distinct_tokens() -> None:
    rows, text = select_for_law(study_table(), "kaplan_d")
    assert list(rows["run_id"]) == ["data0", "data1", "data2"]
    assert list(rows["D"]) == [1e5, 2e5, 4e5]  # distinct tokens, not the 2e6 processed
    assert np.allclose(rows["loss"], [5.2, 5.1, 5.0])  # early-stopped
    assert "1 of smaller models" in text


def test_l_of_nd_takes_every_law_run_with_distinct_tokens_and_best_loss() -> None:
    rows, _ = select_for_law(study_table(), "kaplan_nd")
    assert len(rows) == 10
    assert rows.set_index("run_id").loc["data1", "D"] == 2e5
    assert rows.set_index("run_id").loc["data1", "loss"] == pytest.approx(5.1)


def test_a_design_restricts_the_runs_and_an_unknown_one_names_the_known() -> None:
    rows, text = select_for_law(study_table(), "kaplan_n", design="batch_scan")
    assert set(rows["run_id"]) == {"batch0", "shared"}  # scans count when asked for; lowest per size
    assert "of design 'batch_scan'" in text
    with pytest.raises(DataError, match="designs in this study: batch_scan, dataset_size, ladder, nd_grid"):
        select_for_law(study_table(), "kaplan_n", design="ladderz")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalinglab", *args], capture_output=True, text=True, timeout=120)


def test_fit_on_a_study_directory_fits_the_selection_and_says_so(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    table = study_table()
    table["loss"] = np.where(table["kind"] == "ladder", (1e8 / table["N"]) ** 0.1, table["loss"])
    table.to_csv(study / "runs.csv", index=False)
    out = _cli("fit", str(study), "--law", "kaplan_n", "--bootstrap", "0", "--json")
    assert out.returncode in (0, 1), out.stderr
    assert "scalinglab fit: L(N): 3 of 13 runs on the recipe" in out.stderr  # the unfinished one is dropped first
    assert json.loads(out.stdout)["n_points"] == 3
    bad = _cli("fit", str(study / "runs.csv"), "--design", "ladder")
    assert bad.returncode == 2 and "--design needs a study directory" in bad.stderr


def test_seed_noise_pools_the_spread_of_log_loss_within_each_size() -> None:
    from scalinglab.study.noise import seed_noise

    rows = [_row(f"a{s}", "seeds", 1e4, loss) for s, loss in enumerate([4.0, 4.1, 3.9])]
    rows += [_row(f"b{s}", "seeds", 3e4, loss) for s, loss in enumerate([3.5, 3.6])]
    rows += [_row("lad", "ladder", 1e4, 4.05, designs="ladder;seeds")]  # the ladder's run is seed 0 of size a
    table = pd.DataFrame(rows)
    table["group"] = ["a", "a", "a", "b", "b", "a"]
    table["groups"] = table["group"].where(table["kind"] != "ladder", "a;a")
    noise = seed_noise(table)
    a, b = np.log([4.0, 4.1, 3.9, 4.05]), np.log([3.5, 3.6])
    expected = np.sqrt((3 * a.std(ddof=1) ** 2 + 1 * b.std(ddof=1) ** 2) / 4)
    assert noise.sd_log == pytest.approx(expected) and noise.n_runs == 6
    assert "over 6 seeded runs in 2 set(s) of replicates (4 degrees of freedom)" in noise.line()
    with pytest.raises(DataError, match="add a seeds design"):
        seed_noise(table[table["kind"] == "ladder"])


def test_a_noise_floor_lifts_the_prediction_intervals_of_a_fit() -> None:
    from scalinglab.laws.fit import fit_law

    n = np.geomspace(1e4, 1e6, 8)
    points = pd.DataFrame({"N": n, "loss": (1e8 / n) ** 0.1 * (1 + 1e-3 * np.sin(n))})
    bare, floored = fit_law("kaplan_n", points), fit_law("kaplan_n", points, noise_floor=0.02)
    assert bare.noise.s0 < 0.005 and floored.noise.s0 == pytest.approx(0.02)
    lo, hi = floored.prediction_interval(pd.DataFrame({"N": [1e5]}))
    assert np.log(hi[0] / lo[0]) > 2 * 1.9 * 0.02  # at least +-1.96 sd of the floor in log space


def test_the_report_shows_the_seed_noise_in_its_headline() -> None:
    from scalinglab.report.build import headline_numbers
    from scalinglab.report.headline import headline_lines
    from scalinglab.report.html import text
    from scalinglab.study.noise import seed_noise

    table = pd.DataFrame([_row(f"s{s}", "seeds", 1e4, loss) for s, loss in enumerate([4.0, 4.1, 3.9])])
    numbers = headline_numbers({"seed noise": seed_noise(table)})
    assert numbers["noise_sd_log"] == pytest.approx(np.log([4.0, 4.1, 3.9]).std(ddof=1))
    line = next(x for x in headline_lines(numbers) if "run-to-run noise" in x)
    assert line.rstrip().endswith(text(numbers["noise_sd_log"]))


def test_a_design_kind_takes_every_design_of_that_kind_and_names_them() -> None:
    from scalinglab.study.collect import only_design

    rows = [_row(f"{label}{i}", "isoflop", n, 4.0 + i) for label in ("isoflop", "isoflop_mid", "isoflop_large")
            for i, n in enumerate([1e4, 3e4])]  # fmt: skip
    table = pd.concat([study_table(), pd.DataFrame(rows)], ignore_index=True)
    table["design"] = table["run_id"].str.rstrip("01").where(table["kind"] == "isoflop", table["design"])
    table["designs"] = table["design"].where(table["kind"] == "isoflop", table["designs"])
    rows, text = select_for_law(table, "kaplan_c", design="isoflop")
    assert len(rows) == 6 and set(rows["design"]) == {"isoflop", "isoflop_mid", "isoflop_large"}
    assert "6 of 20 runs of designs isoflop, isoflop_large, isoflop_mid (kind 'isoflop'):" in text
    _, text = select_for_law(table, "kaplan_c", design="isoflop_mid")  # a name alone is that design
    assert "2 of 20 runs of design 'isoflop_mid':" in text
    runs, _ = only_design(table, pd.DataFrame({"run_id": []}), "isoflop")
    assert len(runs) == 6
    with pytest.raises(DataError, match=r"isoflop_mid, ladder, nd_grid \(kinds: batch_scan, .*isoflop, ladder"):
        only_design(table, pd.DataFrame({"run_id": []}), "iso")


def test_cooldown_branches_stay_out_of_l_of_n_s_and_the_line_says_why() -> None:
    rows = [_row(f"lad{i}", "ladder", n, 5 - i * 0.3) for i, n in enumerate([1e4, 3e4])]
    rows += [_row("trunk", "wsd_ladder", 1e4, 4.9, d=4e6)]  # the stable phase: left out as before
    rows += [_row(f"br{j}", "wsd_ladder", 1e4, 4.8 - 0.1 * j, d=d) for j, d in enumerate([1e6, 2e6])]
    table = pd.DataFrame(rows).assign(parent=["", "", "", "trunk", "trunk"], branch_step=[0, 0, 0, 100, 200])
    kept, line = select_for_law(table, "kaplan_ns")
    assert list(kept["run_id"]) == ["lad0", "lad1"]
    assert "2 cooldown branches (their curves start at the branch step: a decay only)" in line
    assert "1 stable-phase runs of a wsd_ladder" in line
    assert set(select_for_law(table, "kaplan_d")[0]["run_id"]) == {"br0", "br1"}  # as points of L(D) they stay
