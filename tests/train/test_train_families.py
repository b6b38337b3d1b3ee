"""The LSTM and the universal Transformer through the real trainer: metrics, noise scale, per-position
loss, and exact resume after a real kill -9 of ``scalinglab train`` (tiny models on the built-in corpus).
"""

from __future__ import annotations

import math
import os
import signal
import time

import pytest
from tests.support import TINY_RUN, VOCAB, cli

from scalinglab.config import load_config
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.train.config import RunConfig
from scalinglab.train.run import train
from scalinglab.train.rundir import read_json, read_metrics, read_status

TINY = [*TINY_RUN, "model.n_layer=2", "eval.points=4"]  # the tests' tiny run at two layers (later overrides win)
FAMILIES = {"lstm": ["model.arch=lstm"], "universal": ["model.arch=universal", "model.reuse=2"]}


@pytest.fixture
def cache(token_cache: str) -> str:
    """The session's token cache of the built-in corpus at VOCAB (tests/conftest.py: tokenised once)."""
    return token_cache


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_trains_with_every_metric(cache, tmp_path, family) -> None:
    args = [*TINY, *FAMILIES[family], f"runtime.cache_dir={cache}", "budget.steps=30",
            "eval.noise_scale=true", "optim.micro_batch_size=4"]  # fmt: skip
    cfg = load_config(RunConfig, None, args)
    summary = train(cfg, tmp_path)

    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == list(range(1, 31))
    fpt = flops_per_token(cfg.model)
    last = records[-1]
    assert last["flops_structural"] == pytest.approx(fpt["structural"] * last["tokens"])
    assert last["flops_6N"] == pytest.approx(6 * count_params(cfg.model)["N_with_reuse"] * last["tokens"])
    assert records[0]["train_loss"] == pytest.approx(math.log(VOCAB), abs=0.3)  # a fresh model is near uniform
    evaluated = [r for r in records if "val_loss_valid" in r]
    assert evaluated[-1]["val_loss_valid"] < evaluated[0]["val_loss_valid"] - 0.3
    assert last["noise_trace_sigma"] > 0 and "noise_b_simple" in last

    assert summary["status"] == "done" and summary["params"] == count_params(cfg.model)
    per_pos = summary["per_position_loss"]["valid"]
    assert len(per_pos) == 32 and sum(per_pos) / 32 == pytest.approx(summary["final"]["valid"]["loss"])
    assert read_json(tmp_path / "config.json")["model"]["arch"] == family


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_kill_9_then_resume_reproduces_the_uninterrupted_losses_exactly(cache, tmp_path, family) -> None:
    args = [*TINY, *FAMILIES[family], f"runtime.cache_dir={cache}", "budget.steps=60", "model.dropout=0.1",
            "runtime.checkpoint_steps=15"]  # fmt: skip
    killed = tmp_path / "killed"
    proc = cli("train", *args, "--run-dir", str(killed))
    marker = killed / "checkpoints" / "step_30" / "COMPLETE"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached its step-40 checkpoint"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert read_status(killed)["state"] == "running"  # a killed run cannot say so
    assert 30 <= len(read_metrics(killed)) < 60

    resumed = cli("train", *args, "--run-dir", str(killed))
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    whole = tmp_path / "whole"
    train(load_config(RunConfig, None, args), whole)

    a, b = read_metrics(killed), read_metrics(whole)
    assert [r["step"] for r in a] == list(range(1, 61))
    for key in ("train_loss", "grad_norm", "lr", "val_loss_valid"):
        assert [r.get(key) for r in a] == [r.get(key) for r in b], key  # bitwise equal
    assert read_json(killed / "summary.json")["final"] == read_json(whole / "summary.json")["final"]
    assert read_json(killed / "config.json")["model"]["arch"] == family
