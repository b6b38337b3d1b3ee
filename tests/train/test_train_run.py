"""End-to-end runs of the real trainer on the built-in corpus (real text, real BPE, tiny models).

Covers the run-directory contract, the no-op re-run, divergence, exact resume after a real kill -9,
data parallelism over two gloo processes, and the CLI's one-line errors.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support import TINY_RUN, VOCAB, cli

from scalinglab.config import load_config
from scalinglab.errors import TrainingError
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.train import checkpoint
from scalinglab.train.config import RunConfig
from scalinglab.train.run import train
from scalinglab.train.rundir import read_json, read_metrics, read_status
from scalinglab.train.schedules import eval_steps

TINY = [*TINY_RUN, "model.n_layer=2", "eval.points=5"]  # the tests' tiny run at two layers (later overrides win)


@pytest.fixture
def cache(token_cache: str) -> str:
    """The session's token cache of the built-in corpus at VOCAB (tests/conftest.py: tokenised once)."""
    return token_cache


def tiny(cache: str, *overrides: str) -> RunConfig:
    return load_config(RunConfig, None, [*TINY, f"runtime.cache_dir={cache}", *overrides])


def test_run_writes_the_contract_and_a_rerun_is_a_noop(cache, tmp_path) -> None:
    docs = 'data.eval_sets=[{name = "again", corpus = "stdlib", split = "valid"}]'  # the valid text once more
    cfg = tiny(cache, "budget.steps=40", "eval.noise_scale=true", "optim.micro_batch_size=2", docs)
    summary = train(cfg, tmp_path)

    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == list(range(1, 41))
    always = {"step", "tokens", "flops_6N", "flops_6N_total", "flops_kaplan", "flops_structural", "lr",
              "train_loss", "grad_norm", "tokens_per_s", "wall_time", "epoch"}
    noise = {"noise_grad_sq", "noise_trace_sigma", "noise_b_simple"}
    assert all(always | noise <= r.keys() for r in records)
    evaluated = [r["step"] for r in records if "val_loss_valid" in r]
    assert evaluated == eval_steps(40, 5)
    fpt = flops_per_token(cfg.model)
    last = records[-1]
    assert last["tokens"] == 40 * 8 * 32
    assert last["flops_structural"] == pytest.approx(fpt["structural"] * last["tokens"])
    for r in records:  # the fraction of the machine's measured matmul peak, by each FLOP count
        assert r["model_flops_per_s"] == pytest.approx(r["tokens_per_s"] * fpt["model"])
        assert r["hardware_flops_per_s"] == pytest.approx(r["tokens_per_s"] * fpt["hardware"])
        assert 0 < r["fraction_of_peak_hardware"] <= 1 and 0 < r["fraction_of_peak_model"] <= 1, r
    assert (Path(cache) / "peak.json").is_file()  # measured once, then read by every later run
    from scalinglab.host import cpu_model

    assert any(cpu_model() in key for key in json.loads((Path(cache) / "peak.json").read_text()))  # per CPU, not per host name
    assert records[0]["train_loss"] == pytest.approx(math.log(VOCAB), abs=0.3)  # a fresh model is near uniform
    assert last["val_loss_valid"] < records[0]["val_loss_valid"] - 0.5
    assert last["noise_trace_sigma"] > 0
    assert [r.get("val_loss_again") for r in records] == [r.get("val_loss_valid") for r in records]

    assert summary["status"] == "done" and summary["steps"] == 40 and summary["tokens"] == last["tokens"]
    assert summary["params"]["N"] == count_params(cfg.model)["N"]
    final = summary["final"]["valid"]
    assert final["loss"] == pytest.approx(last["val_loss_valid"])
    assert final["bpb"] < final["loss"] / math.log(2)  # BPE tokens span more than one byte
    per_pos = summary["per_position_loss"]["valid"]
    assert len(per_pos) == 32 and sum(per_pos) / 32 == pytest.approx(final["loss"])
    assert read_status(tmp_path)["state"] == "done"
    assert read_json(tmp_path / "config.json")["model"]["d_model"] == 32
    assert read_json(tmp_path / "env.json")["threads"] == 1

    before = (tmp_path / "metrics.jsonl").stat().st_mtime_ns
    assert train(cfg, tmp_path) == read_json(tmp_path / "summary.json")
    assert (tmp_path / "metrics.jsonl").stat().st_mtime_ns == before


def test_gradient_accumulation_matches_the_full_batch(cache, tmp_path) -> None:
    whole = train(tiny(cache, "budget.steps=6", "eval.points=1"), tmp_path / "whole")
    accumulated = train(tiny(cache, "budget.steps=6", "eval.points=1", "optim.micro_batch_size=2"), tmp_path / "acc")
    a, b = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "acc")
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-5)
    assert whole["final"]["valid"]["loss"] == pytest.approx(accumulated["final"]["valid"]["loss"], rel=1e-5)


def test_a_noise_scale_measured_one_step_in_four_trains_the_same_run(cache, tmp_path) -> None:
    noise = ("budget.steps=12", "eval.points=1", "eval.noise_scale=true", "optim.micro_batch_size=2")
    every = tiny(cache, *noise)
    sparse = tiny(cache, *noise, "eval.noise_scale_every=4")
    assert every.identity() != sparse.identity()
    assert every.identity() == tiny(cache, *noise, "eval.noise_scale_every=1").identity()
    train(every, tmp_path / "every")
    train(sparse, tmp_path / "sparse")
    a, b = read_metrics(tmp_path / "every"), read_metrics(tmp_path / "sparse")
    # one pass of 8 rows or four of 2: the same mean gradient, so the same run up to rounding
    assert [r["train_loss"] for r in b] == pytest.approx([r["train_loss"] for r in a], rel=1e-5)
    assert a[0]["noise_grad_sq"] == pytest.approx(b[0]["noise_grad_sq"], rel=1e-5)  # step 0 is measured in both
    # every record carries the estimate; it moves only after a measured step (0, 4, 8)
    changed = [r["step"] for prev, r in zip(b, b[1:]) if r["noise_trace_sigma"] != prev["noise_trace_sigma"]]
    assert changed == [5, 9]


def test_measuring_the_matmul_peak_leaves_the_run_unchanged(cache, tmp_path) -> None:
    cfg = tiny(cache, "budget.steps=3", "eval.points=1", "model.dropout=0.1")  # dropout draws from the run's stream
    train(cfg, tmp_path / "first")  # measures the peak at the run's threads, if no test did before
    train(cfg, tmp_path / "cached")
    (Path(cache) / "peak.json").unlink()
    train(cfg, tmp_path / "measured")  # measures it again, between building the model and its first step
    a, b = read_metrics(tmp_path / "cached"), read_metrics(tmp_path / "measured")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]  # bitwise equal
    assert (Path(cache) / "peak.json").is_file()


def test_a_diverging_run_is_marked_failed_with_step_and_reason(cache, tmp_path) -> None:
    cfg = tiny(cache, "budget.steps=30", "optim.lr=1e12", "schedule.warmup_steps=1")
    with pytest.raises(TrainingError, match="diverged at step"):
        train(cfg, tmp_path)
    status = read_status(tmp_path)
    assert status["state"] == "failed" and status["step"] >= 1
    assert f"diverged at step {status['step']}" in status["reason"]
    assert read_json(tmp_path / "summary.json")["status"] == "failed"


@pytest.mark.slow
def test_kill_9_then_resume_reproduces_the_uninterrupted_losses_exactly(cache, tmp_path) -> None:
    args = [*TINY, f"runtime.cache_dir={cache}", "budget.steps=150", "model.dropout=0.1", "runtime.checkpoint_steps=20",
            "eval.noise_scale=true", "optim.micro_batch_size=2", "eval.noise_scale_every=7"]  # resumed between measurements
    killed = tmp_path / "killed"
    proc = cli("train", *args, "--run-dir", str(killed))
    marker = killed / "checkpoints" / "step_60" / "COMPLETE"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached its step-60 checkpoint"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert read_status(killed)["state"] == "running"  # a killed run cannot say so; its heartbeat goes stale
    assert 60 <= len(read_metrics(killed)) < 150

    resumed = cli("train", *args, "--run-dir", str(killed))
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    whole = tmp_path / "whole"
    train(load_config(RunConfig, None, args), whole)

    a, b = read_metrics(killed), read_metrics(whole)
    assert [r["step"] for r in a] == list(range(1, 151))
    for key in ("train_loss", "grad_norm", "lr", "val_loss_valid", "noise_grad_sq", "noise_trace_sigma"):
        assert [r.get(key) for r in a] == [r.get(key) for r in b], key  # bitwise equal
    assert read_json(killed / "summary.json")["final"] == read_json(whole / "summary.json")["final"]


@pytest.mark.slow
def test_sigterm_checkpoints_and_stops_cleanly(cache, tmp_path) -> None:
    proc = cli("train", *TINY, f"runtime.cache_dir={cache}", "budget.steps=100000", "--run-dir", str(tmp_path))
    deadline = time.monotonic() + 120
    while len(read_metrics(tmp_path)) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "stopped by SIGTERM" in err and len(err.splitlines()) == 1, err
    assert "error:" not in err  # a stop from outside, after a checkpoint, is not a failure
    status = read_status(tmp_path)
    assert status["state"] == "pending" and "SIGTERM" in status["reason"]
    step, _ = checkpoint.latest_checkpoint(tmp_path)
    assert step == status["step"] == read_metrics(tmp_path)[-1]["step"]  # nothing trained is lost
    summary = read_json(tmp_path / "summary.json")  # stopped, not failed: the summary says so too
    assert summary["status"] == "pending" and summary["steps"] == step


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_at_the_same_global_batch(cache, tmp_path) -> None:
    args = [*TINY, f"runtime.cache_dir={cache}", "budget.steps=12", "eval.points=3", "eval.noise_scale=true"]
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "scalinglab", "train", *args, "--run-dir", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # one process: the same global batch of 8, as two micro-batches of 4 (B_small for the noise scale)
    train(load_config(RunConfig, None, [*args, "optim.micro_batch_size=4"]), tmp_path / "one")

    a, b = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "one")
    assert len(a) == len(b) == 12
    for ra, rb in zip(a, b):
        for key in ("train_loss", "grad_norm", "val_loss_valid", "noise_grad_sq", "noise_trace_sigma"):
            if key in rb:
                assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), (ra["step"], key)
    assert read_json(tmp_path / "ddp" / "env.json")["world_size"] == 2


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("model.n_head=5", ["model.d_model=32", "model.n_head=5", "pick n_head among"]),
        ("model.d_modle=64", ["'model.d_modle'", "Did you mean 'd_model'"]),
        ("budget.tokens=-1000", ["budget.tokens", "set a positive budget"]),
        ("data.train_tokens=20", ["model.n_ctx=32", "data.train_tokens=20", "lower model.n_ctx"]),
    ],
)
def test_bad_configs_fail_with_one_line_naming_the_field(cache, tmp_path, override, names) -> None:
    proc = cli("train", *TINY, f"runtime.cache_dir={cache}", "--run-dir", str(tmp_path), "budget.steps=5", override)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("scalinglab train: error:") and all(n in err for n in names), err
