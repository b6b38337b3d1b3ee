"""Study files, designs and recipes: expansion into run configs, and bad files failing at plan time."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tests.study.conftest import BASE, SIX, write_study

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.model.counting import count_params
from scalinglab.study import expand_study, load_study, plan_study, plan_totals, study_from_dict
from scalinglab.study.recipes import KAPLAN_WARMUP_FRACTION, get_recipe
from scalinglab.train.budget import resolve_steps, tokens_per_step
from scalinglab.train.lr_rules import kaplan_lr, tuned_lr
from scalinglab.train.schedules import warmup_steps


def study(tmp_path: Path, designs: str, top: str = "", base: str = BASE):
    return load_study(write_study(tmp_path, "s", designs, top, base))


def test_six_run_study_expands_with_labels_and_pins(tmp_path: Path) -> None:
    runs = expand_study(study(tmp_path, SIX))
    names = [r.name for r in runs]
    # seeds s0 is the ladder's L2-d32 run: trained once, under its first design, also listed as a seed
    assert names == [
        "ladder-L2-d32", "ladder-L2-d48", "lr_scan-L2-d32-lrx0.5", "lr_scan-L2-d32-lrx2",
        "seeds-L2-d32-s1", "seeds-L2-d32-s2",
    ]  # fmt: skip
    assert runs[0].also == (("seeds", "L2-d32"),)
    assert runs[0].labels("s")["designs"] == "ladder;seeds"
    assert len({r.identity for r in runs}) == 6
    base_lr = kaplan_lr(count_params(runs[0].config.model)["N"])
    assert runs[0].config.optim.lr == pytest.approx(base_lr)
    assert runs[2].config.optim.lr == pytest.approx(0.5 * base_lr)  # multiplier on the recipe's LR
    assert runs[3].config.optim.lr == pytest.approx(2 * base_lr)
    assert [r.config.seed for r in runs[4:]] == [1, 2]
    assert runs[1].config.model.n_head == 3  # head_dim 16 kept from the base model


def test_every_design_kind(tmp_path: Path) -> None:
    designs = """
[[design]]
kind = "ladder"
params = [2.5e4, 1e5]
aspect_ratio = 32
[[design]]
kind = "dataset_size"
d0 = 1e4
d_count = 3
epochs = 2
[[design]]
kind = "nd_grid"
shapes = [[2, 32], [2, 64]]
tokens = [2e4, 4e4]
[[design]]
kind = "isoflop"
budgets = [1e10, 4e10]
shapes = [[2, 32], [2, 48]]
flops_convention = "6N"
[[design]]
kind = "batch_scan"
batch_sizes = [4, 16]
[[design]]
kind = "lr_scan"
lrs = [1e-3, 3e-3]
[[design]]
kind = "shape_scan"
params = [5e5]
aspect_ratio = 16
aspect_ratios = [8, 32]
ff_ratios = [2]
head_dims = [32]
[[design]]
kind = "context_scan"
n_ctx = [16, 64]
[[design]]
kind = "seeds"
seeds = [5]
"""
    runs = expand_study(study(tmp_path, designs))
    by = {}
    for r in runs:
        by.setdefault(r.kind, []).append(r)
    ladder = [count_params(r.config.model)["N"] for r in by["ladder"]]
    assert ladder[0] == pytest.approx(2.5e4, rel=0.25) and ladder[1] == pytest.approx(1e5, rel=0.25)

    ds = by["dataset_size"]  # nested subsets D0·2^k, trained for 2 epochs each
    assert [r.config.data.train_tokens for r in ds] == [10_000, 20_000, 40_000]
    assert [r.config.budget.tokens for r in ds] == [20_000, 40_000, 80_000]
    assert {r.group for r in ds} == {"L2-d32"}

    nd = by["nd_grid"]  # fresh data: D is the budget, no subset
    assert len(nd) == 4 and all(r.config.data.train_tokens == 0 for r in nd)
    assert sorted(r.config.budget.tokens for r in nd) == [2e4, 2e4, 4e4, 4e4]

    iso = by["isoflop"]  # the schedule (steps) matches each budget
    assert [r.group for r in iso] == ["C1e10", "C1e10", "C4e10", "C4e10"]
    for r in iso:
        c = r.config
        assert c.budget.flops_convention == "6N"
        assert 6 * count_params(c.model)["N"] * resolve_steps(c) * tokens_per_step(c) == pytest.approx(c.budget.flops, rel=0.1)

    assert [r.config.optim.batch_size for r in by["batch_scan"]] == [4, 16]
    assert [r.config.optim.lr for r in by["lr_scan"]] == [1e-3, 3e-3]  # pinned: the recipe keeps them

    shapes = by["shape_scan"]  # one knob at a time at N ~ 5e5
    assert [r.group for r in shapes] == ["aspect_ratio", "aspect_ratio", "ff_ratio", "head_dim"]
    for r in shapes:
        assert count_params(r.config.model)["N"] == pytest.approx(5e5, rel=0.25)
    assert [r.config.model.d_model / r.config.model.n_layer for r in shapes[:2]] == pytest.approx([8, 32], rel=0.5)
    ff = shapes[2].config.model
    assert ff.ff_width == 2 * ff.d_model
    assert shapes[3].config.model.head_dim == 32

    assert [r.config.model.n_ctx for r in by["context_scan"]] == [16, 64]
    assert [r.config.seed for r in by["seeds"]] == [5]


def test_recipes(tmp_path: Path) -> None:
    base = BASE.replace('recipe = "kaplan2020"', "").replace("steps = 30", "tokens = 2e6")
    base = base.replace("[base.optim]\nbatch_size = 8\n", "")  # a batch the study sets would win over the recipe's
    runs = expand_study(study(tmp_path, '[[design]]\nkind = "ladder"\nshapes = [[2, 32], [4, 128]]', 'recipe = "tuned-v1"', base))
    batches = []
    for r in runs:
        c = r.config
        n = count_params(c.model)["N"]
        steps = resolve_steps(c)
        w = warmup_steps(c.schedule, steps)
        assert c.optim.lr == pytest.approx(tuned_lr(n))
        assert 1 <= w <= max(1, 0.05 * steps) and w * tokens_per_step(c) <= max(n, tokens_per_step(c))
        assert c.schedule.kind == "cosine" and c.schedule.min_lr_ratio == 0.1
        batches.append(tokens_per_step(c))
    assert batches[1] > batches[0]  # the batch grows with N

    cfg = runs[1].config
    k = get_recipe("kaplan2020")(cfg, frozenset())
    assert k.optim.lr == pytest.approx(kaplan_lr(count_params(cfg.model)["N"]))
    assert k.schedule.warmup_fraction == KAPLAN_WARMUP_FRACTION and k.schedule.min_lr_ratio == 0.0
    assert k.optim.batch_size == cfg.optim.batch_size  # kaplan2020 keeps the base batch
    kept = get_recipe("tuned-v1")(cfg, frozenset({"optim.batch_size", "optim.lr"}))
    assert kept.optim.batch_size == cfg.optim.batch_size and kept.optim.lr == cfg.optim.lr
    for run in runs:  # tiny-v1: kaplan2020 with the width rules for LR and init
        t = get_recipe("tiny-v1")(run.config, frozenset())
        d = run.config.model.d_model
        assert t.optim.lr == pytest.approx(0.4 / d) and t.model.init_std == pytest.approx(d**-0.5)
        assert t.schedule == get_recipe("kaplan2020")(run.config, frozenset()).schedule
    assert get_recipe("tiny-v1")(cfg, frozenset({"optim.lr"})).optim.lr == cfg.optim.lr  # an lr_scan keeps its LRs


def test_python_study_and_plan_table(tmp_path: Path) -> None:
    toml = write_study(tmp_path, "s", SIX)
    py = tmp_path / "s.py"
    py.write_text(
        "from scalinglab.study import load_study\n"
        f"def study():\n    return load_study({str(toml)!r})\n"
    )
    s = load_study(py)
    assert [r.name for r in expand_study(s)] == [r.name for r in expand_study(load_study(toml))]

    table = plan_study(s, measure=False)
    assert len(table) == 6
    assert (table["tokens"] == table["steps"] * table["batch_size"] * table["n_ctx"]).all()
    assert table["C"].tolist() == pytest.approx((6 * table["N"] * table["tokens"]).tolist())
    assert table["est_seconds"].isna().all()
    totals = plan_totals(table, workers=2)
    assert totals["runs"] == 6 and totals["tokens"] == table["tokens"].sum()
    assert math.isnan(totals["est_wall_seconds"])


@pytest.mark.parametrize(
    ("designs", "top", "message"),
    [
        ('[[design]]\nkind = "ladders"', "", "design #1 has unknown kind 'ladders'; set kind to one of ladder,"),
        ("", "", "the study has no designs"),
        ('[[design]]\nkind = "ladder"\nshapes = [[2, 40]]', "", "d_model=40 is not a multiple of head_dim=16"),
        ('[[design]]\nkind = "ladder"\nparams = [3e3]', "", "no shape with N within 25% of 3,000"),
        ('[[design]]\nkind = "isoflop"\nbudgets = [1e6]', "", "less than one step"),
        ('[[design]]\nkind = "ladder"\nsizes = [1e5]', "", "unknown config key 'design.ladder.sizes'"),
        ('[[design]]\nkind = "seeds"', 'recipe = "tuned-v2"', "unknown recipe 'tuned-v2'"),
    ],
)
def test_bad_study_fails_at_plan_with_one_line(tmp_path: Path, capsys, designs: str, top: str, message: str) -> None:
    path = write_study(tmp_path, "bad", designs, top, BASE.replace('recipe = "kaplan2020"', ""))
    assert main(["study", "plan", str(path), "--no-measure"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scalinglab study: error: ") and message in err and "\n" not in err


def test_study_from_dict_rejects_designs_key() -> None:
    with pytest.raises(ConfigError, match=r"\[\[design\]\]"):
        study_from_dict({"name": "x", "designs": [{"kind": "ladder"}]})


def test_shape_scan_names_carry_real_ratios_and_collisions_name_the_nearest_shapes(tmp_path: Path) -> None:
    base = BASE.replace("n_ctx = 32", "n_ctx = 64")
    scan = 'kind = "shape_scan"\nparams = [1.2e4]\naspect_ratio = 12\nhead_dim = 8\n'
    runs = expand_study(study(tmp_path, f"[[design]]\n{scan}aspect_ratios = [5, 12]", base=base))
    for r in runs:  # the tag's ratio is the shape's own d_model / n_layer, not the one asked for
        m = r.config.model
        assert f"-ar{m.d_model / m.n_layer:.3g}-" in r.name
    assert [r.name for r in runs] == ["shape_scan-N1.2e4-ar4-L4-d16", "shape_scan-N1.2e4-ar12-L2-d24"]  # 5 asked, 4 real
    with pytest.raises(ConfigError) as e:
        expand_study(study(tmp_path, f"[[design]]\n{scan}aspect_ratios = [8, 12, 16]", base=base))
    message = str(e.value)
    assert message.startswith("design 'shape_scan': aspect_ratios 8 and 12 both give L2-d24 (aspect_ratio 12) at N=1.2e4")
    assert "nearest distinct shapes are L3-d16 (aspect_ratio 5.33)" in message


def test_the_plan_costs_micro_batches_only_on_the_noise_scale_steps(tmp_path: Path, monkeypatch) -> None:
    """eval.noise_scale_every = k: one step in k accumulates micro-batches, the others run the batch in one pass."""
    from dataclasses import replace

    from scalinglab.config import load_config
    from scalinglab.study.plan import estimate_seconds
    from scalinglab.train.config import RunConfig

    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))  # step times measured here, once per shape
    cfg = load_config(RunConfig, None, ["model.n_layer=1", "model.d_model=16", "model.n_head=2", "model.n_ctx=16",
                                        "model.vocab_size=512", "data.vocab_size=512", "optim.batch_size=4", "optim.micro_batch_size=2",
                                        "budget.steps=100", "eval.noise_scale=true"])  # fmt: skip
    every = [estimate_seconds(replace(cfg, eval=replace(cfg.eval, noise_scale_every=k))) for k in (1, 2, 4)]
    # linear in 1/k: s(k) = (accumulated + (k - 1) one_pass) / k, so s(1) - s(4) = 1.5 (s(1) - s(2))
    assert every[0] - every[2] == pytest.approx(1.5 * (every[0] - every[1]), rel=1e-9)
    assert every[1] != every[0]
    no_noise = replace(cfg, eval=replace(cfg.eval, noise_scale=False, noise_scale_every=4))
    assert estimate_seconds(no_noise) == every[0]  # without the noise scale every step accumulates
