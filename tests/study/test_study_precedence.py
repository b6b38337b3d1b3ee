"""Precedence: what a study file says (base, then design, then overrides) wins over its recipe, and
``study plan`` says where each hyper-parameter came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.study.conftest import write_study

from scalinglab.cli import main
from scalinglab.config import apply_overrides, replace_fields
from scalinglab.errors import ConfigError
from scalinglab.model.counting import count_params
from scalinglab.study import expand_study, load_study, plan_study
from scalinglab.study.config import StudyConfig
from scalinglab.study.designs import Ladder
from scalinglab.study.recipes import RECIPE_FIELDS, RECIPES
from scalinglab.train.config import BudgetConfig, RunConfig
from scalinglab.train.lr_rules import tuned_lr

BASE = """
recipe = "tuned-v1"

[base.model]
n_layer = 2
d_model = 32
n_head = 2
n_ctx = 32
vocab_size = 512

[base.data]
corpus = "stdlib"
vocab_size = 512

[base.schedule]
kind = "wsd"

[base.budget]
tokens = 200_000

[base.eval]
tokens = 2048
"""

TWO = """
[[design]]
kind = "ladder"
shapes = [[2, 32]]

[[design]]
kind = "ladder"
name = "const"
shapes = [[2, 32]]
overrides = ["schedule.kind=constant", "optim.lr=0.003"]
"""
"""The issue's example: a WSD base, and a design asking for a constant LR of 0.003 (two distinct runs)."""


ONE = '[[design]]\nkind = "ladder"\nshapes = [[2, 32]]'


def _plan(tmp_path: Path, designs: str = TWO, base: str = BASE):
    return plan_study(load_study(write_study(tmp_path, "p", designs, base=base)), measure=False).set_index("name")


def test_the_issue_example_plans_two_runs_with_the_study_schedules(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert len(plan) == 2
    wsd, const = plan.loc["ladder-L2-d32"], plan.loc["const-L2-d32"]
    assert (wsd["schedule"], wsd["schedule_from"]) == ("wsd", "study")  # base wins over tuned-v1's cosine
    assert (const["schedule"], const["schedule_from"]) == ("constant", "study")  # the override wins over the base
    assert (const["lr"], const["lr_from"]) == (0.003, "study")
    n = count_params(load_study(write_study(tmp_path, "p", TWO, base=BASE)).base.model)["N"]
    assert (wsd["lr"], wsd["lr_from"]) == (pytest.approx(tuned_lr(n)), "recipe")  # unset: the recipe fills it
    assert wsd["batch_from"] == "recipe" and wsd["init_from"] == "default"


def test_base_settings_win_over_the_recipe(tmp_path: Path) -> None:
    base = BASE.replace("[base.schedule]", "[base.optim]\nbatch_size = 4\nlr = 0.01\n\n[base.schedule]")
    run = expand_study(load_study(write_study(tmp_path, "b", ONE, base=base)))[0]
    assert run.config.optim.batch_size == 4 and run.config.optim.lr == 0.01 and run.config.schedule.kind == "wsd"
    assert dict(run.origin) == {"schedule": "study", "lr": "study", "warmup": "recipe", "batch": "study", "init": "default"}


def test_design_overrides_win_over_the_base(tmp_path: Path) -> None:
    base = BASE.replace("[base.schedule]", "[base.optim]\nbatch_size = 4\n\n[base.schedule]")
    designs = '[[design]]\nkind = "ladder"\nshapes = [[2, 32]]\noverrides = ["optim.batch_size=16", "model.init_std=0.05"]'
    run = expand_study(load_study(write_study(tmp_path, "o", designs, base=base)))[0]
    assert run.config.optim.batch_size == 16 and run.config.model.init_std == 0.05
    assert dict(run.origin)["init"] == "study"


def test_design_pins_win_and_the_recipe_fits_the_rest(tmp_path: Path) -> None:
    designs = '[[design]]\nkind = "lr_scan"\nshapes = [[2, 32]]\nlrs = [0.02]\n\n' \
              '[[design]]\nkind = "batch_scan"\nshapes = [[2, 32]]\nbatch_sizes = [2]'
    lr_run, batch_run = expand_study(load_study(write_study(tmp_path, "d", designs, base=BASE)))
    assert lr_run.config.optim.lr == 0.02 and dict(lr_run.origin)["lr"] == "study"
    assert batch_run.config.optim.batch_size == 2 and dict(batch_run.origin)["batch"] == "study"
    assert batch_run.config.schedule.warmup_steps >= 1  # warmup: the recipe's, around the pinned batch


def test_a_python_study_counts_every_changed_base_field_as_set() -> None:
    base = RunConfig(budget=BudgetConfig(tokens=200_000))
    base = replace_fields(base, {"model.n_ctx": 32, "model.vocab_size": 512, "data.vocab_size": 512,
                                 "eval.tokens": 2048, "schedule.kind": "constant"})
    run = expand_study(StudyConfig("py", (Ladder(shapes=((2, 32),)),), base=base, recipe="kaplan2020"))[0]
    assert run.config.schedule.kind == "constant" and dict(run.origin)["schedule"] == "study"
    assert run.config.optim.lr != base.optim.lr and dict(run.origin)["lr"] == "recipe"


def test_each_recipe_sets_only_the_fields_it_declares() -> None:
    cfg = replace_fields(RunConfig(budget=BudgetConfig(tokens=200_000)), {"model.n_ctx": 32, "eval.tokens": 2048})
    for name, fn in RECIPES.items():
        out = fn(cfg, frozenset())
        changed = {f"{s}.{k}" for s in ("model", "optim", "schedule")
                   for k, v in vars(getattr(out, s)).items() if v != getattr(getattr(cfg, s), k)}
        assert changed and changed <= RECIPE_FIELDS[name], name


def test_one_override_mechanism_validates_and_names_the_field() -> None:
    cfg = apply_overrides(RunConfig(), ["optim.lr=0.002", "schedule.kind=wsd", "seed=3"])
    assert (cfg.optim.lr, cfg.schedule.kind, cfg.seed) == (0.002, "wsd", 3)
    assert apply_overrides(RunConfig(), ["budget={tokens = 1e6}"]).budget == BudgetConfig(tokens=1e6)
    with pytest.raises(ConfigError, match="unknown config key 'optim.lrr'. Did you mean 'lr'"):
        apply_overrides(RunConfig(), ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="'schedule.kind' is 'sine'; choose one of"):
        apply_overrides(RunConfig(), ["schedule.kind=sine"])
    with pytest.raises(ConfigError, match="optim.lr must be positive"):
        replace_fields(RunConfig(), {"optim.lr": -1.0})


def test_plan_json_and_text_show_every_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path, "j", TWO, base=BASE)
    assert main(["study", "plan", str(path), "--no-measure", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["schedule"], r["schedule_from"], r["lr_from"]) for r in runs] == [
        ("wsd", "study", "recipe"), ("constant", "study", "study")]
    assert main(["study", "plan", str(path), "--no-measure"]) == 0
    text = capsys.readouterr().out
    assert "wsd (study)" in text and "constant (study)" in text and "0.003 (study)" in text and "2 runs" in text
    assert "no time estimate (--no-measure)" in text and "nan" not in text
