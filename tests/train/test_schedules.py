"""Learning-rate schedules, evaluation steps, LR rules and budgets: pure functions of the config."""

from __future__ import annotations

import math

import pytest

from scalinglab.errors import ConfigError
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.train.budget import resolve_steps, tokens_per_step
from scalinglab.train.config import BudgetConfig, OptimConfig, RunConfig, ScheduleConfig
from scalinglab.train.lr_rules import GPT3_TABLE_2_1, kaplan_lr, peak_lr, tuned_lr
from scalinglab.train.schedules import eval_steps, lr_at, warmup_steps


def curve(total: int, peak: float, **kw) -> list[float]:
    cfg = ScheduleConfig(**kw)
    return [lr_at(s, total, peak, cfg) for s in range(total)]


def test_cosine_warms_up_then_ends_exactly_at_the_floor() -> None:
    lrs = curve(100, 1e-3, kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)  # linear warmup to the peak
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then only decays
    assert lrs[-1] == pytest.approx(1e-4)  # the floor at the run's last step, not after it
    assert lrs[55] == pytest.approx(5.5e-4, rel=0.02)  # cosine midpoint halfway through the decay


def test_wsd_holds_the_peak_then_decays_over_its_final_fraction() -> None:
    lrs = curve(100, 1e-3, kind="wsd", warmup_fraction=0.05, decay_fraction=0.2, min_lr_ratio=0.0)
    assert lrs[5:80] == [1e-3] * 75
    assert all(a > b for a, b in zip(lrs[79:], lrs[80:]))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_constant_and_warmup_length() -> None:
    assert curve(50, 2e-3, kind="constant", warmup_fraction=0.1)[5:] == [2e-3] * 45
    assert warmup_steps(ScheduleConfig(warmup_fraction=0.05), 1000) == 50
    assert warmup_steps(ScheduleConfig(warmup_steps=30), 1000) == 30
    assert warmup_steps(ScheduleConfig(warmup_steps=30), 10) == 10  # never longer than the run
    assert curve(1, 1e-3, warmup_fraction=0.0) == [pytest.approx(1e-3)]


def test_eval_steps_are_log_spaced_and_end_at_the_last_step() -> None:
    steps = eval_steps(10_000, 12)
    assert steps[0] == 1 and steps[-1] == 10_000 and steps == sorted(set(steps))
    ratios = [b / a for a, b in zip(steps[3:], steps[4:])]
    assert max(ratios) / min(ratios) < 1.1  # equal ratios: log spacing
    assert eval_steps(37, 1) == [37]
    assert eval_steps(5, 50) == [1, 2, 3, 4, 5]


def test_kaplan_lr_rule_matches_eq_d1_values() -> None:
    # spec §1.8 lists eq D.1 at N = 1e4 ... 1e9 (natural log)
    for n, lr in [(1e4, 1.95e-3), (1e5, 1.63e-3), (1e6, 1.31e-3), (1e7, 9.9e-4), (1e8, 6.7e-4), (1e9, 3.5e-4)]:
        assert kaplan_lr(n) == pytest.approx(lr, abs=0.006e-3)
    assert kaplan_lr(math.exp(0.003239 / 0.0001395)) == pytest.approx(0.0, abs=1e-12)


def test_tuned_lr_rule_follows_gpt3_table() -> None:
    for n_layer, d_model, lr in GPT3_TABLE_2_1:
        assert tuned_lr(12 * n_layer * d_model**2) == pytest.approx(lr, rel=0.35)
    assert tuned_lr(1e5) > tuned_lr(1e6) > tuned_lr(1e7)


def test_peak_lr_uses_the_named_rule() -> None:
    model = ModelConfig(n_layer=2, d_model=64, n_head=4)
    n = count_params(model)["N"]
    assert peak_lr(OptimConfig(lr=3e-3), model) == 3e-3
    assert peak_lr(OptimConfig(lr_rule="kaplan"), model) == kaplan_lr(n)
    assert peak_lr(OptimConfig(lr_rule="tuned"), model) == tuned_lr(n)
    huge = ModelConfig(n_layer=96, d_model=12288, n_head=96)
    with pytest.raises(ConfigError, match="lr_rule"):
        peak_lr(OptimConfig(lr_rule="kaplan"), huge)


def test_budgets_resolve_to_whole_steps() -> None:
    model = ModelConfig(n_layer=2, d_model=64, n_head=4, n_ctx=32)
    base = RunConfig(model=model, optim=OptimConfig(batch_size=8))
    tps = tokens_per_step(base)
    assert tps == 256

    def steps(**budget) -> int:
        return resolve_steps(RunConfig(model=model, optim=OptimConfig(batch_size=8), budget=BudgetConfig(**budget)))

    assert steps(steps=17) == 17
    assert steps(tokens=256 * 40) == 40
    assert steps(tokens=256 * 40 + 100) == 40  # nearest whole step
    for convention in ("6N", "6N_total", "kaplan", "structural"):
        c = flops_per_token(model)[convention] * 256 * 33
        assert steps(flops=c, flops_convention=convention) == 33
    n_total = count_params(model)["N_total"]
    assert steps(tokens_per_param=20) == round(20 * n_total / 256)
    with pytest.raises(ConfigError, match="budget"):
        steps(tokens=100)


def test_bad_budgets_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"budget\.tokens must be positive"):
        BudgetConfig(tokens=-5)
    with pytest.raises(ConfigError, match="set only one"):
        BudgetConfig(tokens=5, steps=3)
