"""wsd_ladder: cooldown branches from one constant-LR run per size, trained for real on the built-in corpus.

One module fixture trains a tiny study once (a parent, two branches, and a dedicated WSD run to the
longer branch's D) in this process, in an order the study driver may take; the tests read it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.study.conftest import BASE, write_study

from scalinglab.config import replace_fields
from scalinglab.study import load_study, plan_study, plan_totals
from scalinglab.study.collect import collect
from scalinglab.study.config import expand_study
from scalinglab.study.selection import select_for_law
from scalinglab.study.store import RunStore
from scalinglab.train.budget import resolve_steps
from scalinglab.train.checkpoint import complete_checkpoints
from scalinglab.train.run import train
from scalinglab.train.rundir import read_metrics
from scalinglab.train.schedules import decay_start

ROOT = Path(__file__).resolve().parents[2]

DESIGNS = """
[[design]]
kind = "wsd_ladder"
shapes = [[2, 32]]
tokens = [2560, 5120]
decay_fraction = 0.25

[[design]]
kind = "nd_grid"
name = "wsdref"
shapes = [[2, 32]]
tokens = [5120]
overrides = ["schedule.kind=wsd", "schedule.decay_fraction=0.25", "schedule.warmup_steps=1"]
"""
"""A parent (constant LR to step 15), branches to 10 and 20 steps (decays from steps 8 and 15), and the
dedicated WSD run to 20 steps."""

VOLATILE = {
    "wall_time",
    "tokens_per_s",
    "model_flops_per_s",
    "hardware_flops_per_s",
    "fraction_of_peak_model",
    "fraction_of_peak_hardware",
}


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_metrics(run_dir)]


def _final(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["final"]["valid"]["loss"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The study trained in this process, in the order the driver may start its runs (the states it reads)."""
    tmp = tmp_path_factory.mktemp("wsd")
    base = BASE.replace("checkpoint_steps = 10", "checkpoint_steps = 3")  # a checkpoint inside each decay
    study = load_study(write_study(tmp, "wsd", DESIGNS, base=base))
    runs = {r.name: r for r in expand_study(study)}
    store = RunStore(study.directory, study.stale_seconds)
    dirs = {name: store.prepare(r, study.name) for name, r in runs.items()}
    before = {name: store.state(d) for name, d in dirs.items()}
    for name in (
        "wsd_ladder-L2-d32-stable",
        "wsd_ladder-L2-d32-D2.56e3",
        "wsd_ladder-L2-d32-D5.12e3",
        "wsdref-L2-d32-D5.12e3",
    ):
        assert store.state(dirs[name]).state == "pending", (
            name
        )  # a branch once its parent has passed its step
        train(
            replace_fields(runs[name].config, {"runtime.progress": False, "runtime.threads": 1}), dirs[name]
        )
    return {"study": study, "runs": runs, "dirs": dirs, "before": before, "tmp": tmp}


def test_branches_start_where_their_decay_begins_and_the_parent_stops_at_the_last() -> None:
    study = load_study(ROOT / "studies" / "wsd_ladder.toml")
    runs = expand_study(study)
    for size in {r.group for r in runs}:
        parent, *branches = [r.config for r in runs if r.group == size]
        assert parent.schedule.kind == "constant" and not parent.branch.parent
        starts = [decay_start(b.schedule, resolve_steps(b)) for b in branches]
        assert [b.branch.step for b in branches] == starts and all(
            b.branch.parent == parent.identity() for b in branches
        )
        assert resolve_steps(parent) == max(starts) and parent.runtime.keep_steps == tuple(sorted(starts))
        same = {(b.optim, b.schedule.warmup_steps, b.model) for b in branches}  # one shared stable phase
        assert same == {(parent.optim, parent.schedule.warmup_steps, parent.model)}


def test_the_shipped_study_gives_its_points_at_40_percent_of_separate_runs() -> None:
    table = plan_study(load_study(ROOT / "studies" / "wsd_ladder.toml"), measure=False)
    (saving,) = plan_totals(table)["branches"]
    assert saving["points"] == 32 and saving["ratio"] <= 0.40
    branches = table[table["branch_step"] > 0]
    assert saving["C_separate"] == pytest.approx(
        branches["C"].sum()
    )  # each point as its own run from scratch
    assert saving["C"] == pytest.approx(table["C_spent"].sum())
    assert table["C_spent"].sum() < table["C"].sum()  # a branch pays for its decay only


def test_a_branch_waits_for_its_parent_then_trains_only_its_decay(trained) -> None:
    before, dirs = trained["before"], trained["dirs"]
    assert before["wsd_ladder-L2-d32-stable"].state == "pending"
    assert before["wsd_ladder-L2-d32-D5.12e3"].state == "waiting"
    assert "reach step 15" in before["wsd_ladder-L2-d32-D5.12e3"].reason
    assert {RunStore(d.parent).state(d).state for d in dirs.values()} == {"done"}
    parent = dirs["wsd_ladder-L2-d32-stable"]
    assert {8, 15} <= {s for s, _ in complete_checkpoints(parent)}  # the branch points outlive keep_last
    steps = [r["step"] for r in read_metrics(dirs["wsd_ladder-L2-d32-D5.12e3"])]
    assert steps == list(range(16, 21))  # the branch trained its 5 decay steps, not the 15 it shares


def test_a_branch_is_step_for_step_the_dedicated_wsd_run(trained) -> None:
    dirs = trained["dirs"]
    branch, dedicated = dirs["wsd_ladder-L2-d32-D5.12e3"], dirs["wsdref-L2-d32-D5.12e3"]
    assert _records(branch) == [r for r in _records(dedicated) if r["step"] > 15]
    assert _final(branch) == _final(dedicated)


def test_the_branches_are_the_points_of_the_laws(trained) -> None:
    runs, _ = collect(trained["study"].directory)
    kept, text = select_for_law(runs, "kaplan_nd", design="wsd_ladder")
    assert sorted(kept["D"]) == [2560, 5120] and "1 stable-phase" in text
    branch = runs[runs["name"] == "wsd_ladder-L2-d32-D5.12e3"].iloc[0]
    final = kept.loc[kept["D"] == 5120, "loss"].item()
    assert final == branch["loss"]  # the final loss, not the parent's best
    assert "mixes" not in text
    _, mixed = select_for_law(runs, "kaplan_nd")  # the branches beside the dedicated WSD run
    assert "mixes 2 cooldown branches (a WSD decay) with 1 runs of their own schedules" in mixed


def test_a_killed_branch_resumes_to_the_uninterrupted_branch(trained) -> None:
    runs, dirs, tmp = trained["runs"], trained["dirs"], trained["tmp"]
    whole, parent = dirs["wsd_ladder-L2-d32-D5.12e3"], dirs["wsd_ladder-L2-d32-stable"]
    cfg = runs["wsd_ladder-L2-d32-D5.12e3"].config
    for keep in (0, 18):  # killed before its first checkpoint of its own, and after one mid-decay
        where = tmp / f"killed{keep}"  # the study directory stays as trained for the other tests
        shutil.copytree(parent, where / parent.name)
        killed = where / whole.name
        shutil.copytree(whole, killed)
        for name in ("summary.json", "status.json"):  # as a kill after the checkpoint leaves it
            (killed / name).unlink()
        for step, path in complete_checkpoints(killed):
            if step > keep:
                shutil.rmtree(path)
        assert [s for s, _ in complete_checkpoints(killed)] == ([keep] if keep else [])
        train(cfg, killed)
        assert _records(killed) == _records(whole) and _final(killed) == _final(whole)


def test_the_report_names_the_branch_points_and_their_cost(trained) -> None:
    from scalinglab.report.branches import caption_branches, cooldown_branches, fig_branches

    runs, curves = collect(trained["study"].directory)
    a = cooldown_branches(runs, curves)
    assert sorted(a.points["name"]) == ["wsd_ladder-L2-d32-D2.56e3", "wsd_ladder-L2-d32-D5.12e3"]
    trained_steps, separate_steps = 15 + 2 + 5, 10 + 20  # the parent and two decays; two runs from scratch
    assert a.compute_ratio == pytest.approx(trained_steps / separate_steps)
    text = caption_branches(a)
    assert "2 points of the laws are cooldown branches of 1 stable-phase run " in text and "D5.12e3" in text
    assert fig_branches(a).axes[0].get_title() == "Cooldown branches of a wsd_ladder"


def test_a_parent_met_first_in_another_design_keeps_the_branch_points(tmp_path) -> None:
    same = """
[[design]]
kind = "ladder"
name = "constant"
shapes = [[2, 32]]
budget = {steps = 15}
overrides = ["schedule.kind=constant", "schedule.warmup_steps=1"]
"""  # the wsd_ladder's parent, step for step
    runs = expand_study(load_study(write_study(tmp_path, "shared", same + DESIGNS)))
    (parent,) = [r for r in runs if r.design == "constant"]
    assert parent.also == (("wsd_ladder", "L2-d32"),) and parent.config.runtime.keep_steps == (8, 15)


def test_a_branch_whose_parent_lost_its_step_says_what_to_do(trained) -> None:
    from scalinglab.errors import TrainingError

    dirs, runs, tmp = trained["dirs"], trained["runs"], trained["tmp"]
    where = tmp / "lost"
    parent = shutil.copytree(dirs["wsd_ladder-L2-d32-stable"], where / dirs["wsd_ladder-L2-d32-stable"].name)
    shutil.rmtree(parent / "checkpoints" / "step_8")  # as if trained before the branch point was asked for
    branch = where / dirs["wsd_ladder-L2-d32-D2.56e3"].name
    branch.mkdir()
    shutil.copy(dirs["wsd_ladder-L2-d32-D2.56e3"] / "labels.json", branch)
    state = RunStore(where).state(branch)
    assert state.state == "waiting"
    assert f"finished without keeping step 8; delete {parent.name}" in state.reason
    none = r"starts from its parent's checkpoint at step 8, and there is none"
    with pytest.raises(TrainingError, match=none):
        train(runs["wsd_ladder-L2-d32-D2.56e3"].config, branch)
