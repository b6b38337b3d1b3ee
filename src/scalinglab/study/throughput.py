"""Training speed measured on this machine: seconds per AdamW step of a GPT shape, cached on disk.

The plan's time estimates come from here. A measurement builds the real model, runs one warm-up step
and then times real steps (forward, backward, gradient clipping, fused AdamW, as the trainer does)
until it has at least 3 steps and 0.5 s; the median resists noise from other processes. Results are
cached per host, torch version, thread count, shape and micro-batch in
``$SCALINGLAB_CACHE/throughput.json`` (default ``~/.cache/scalinglab``).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
from pathlib import Path

from scalinglab.config import stable_hash, to_dict
from scalinglab.model.config import ModelConfig
from scalinglab.train.rundir import read_json, write_json

MIN_STEPS, MIN_SECONDS, MAX_STEPS = 3, 0.5, 50


def cache_path() -> Path:
    root = os.environ.get("SCALINGLAB_CACHE") or Path.home() / ".cache" / "scalinglab"
    return Path(root) / "throughput.json"


def _key(model: ModelConfig, micro: int, threads: int) -> str:
    import torch

    shape = {k: v for k, v in to_dict(model).items() if k not in ("dropout", "init_std")}
    return stable_hash({"host": socket.gethostname(), "torch": torch.__version__, "threads": threads, "model": shape, "micro": micro})


def measure_step_seconds(model: ModelConfig, micro: int, threads: int = 1) -> float:
    """Median wall time of one training step on ``micro`` sequences, with ``threads`` CPU threads."""
    import torch

    from scalinglab.model.gpt import GPT

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        net = GPT(model)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
        batch = torch.randint(0, model.vocab_size, (micro, model.n_ctx + 1))

        def step() -> None:
            loss = net.loss(batch[:, :-1], batch[:, 1:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss.item()

        step()  # warm-up: allocations and first-call costs
        times: list[float] = []
        while len(times) < MIN_STEPS or (sum(times) < MIN_SECONDS and len(times) < MAX_STEPS):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        torch.set_num_threads(previous)


def step_seconds(model: ModelConfig, micro: int, threads: int = 1) -> float:
    """Seconds per step of ``micro`` sequences: from the cache, or measured now and cached."""
    path = cache_path()
    key = _key(model, micro, threads)
    try:
        cache = read_json(path) or {}
    except json.JSONDecodeError:  # a damaged cache is only a lost measurement
        cache = {}
    if key not in cache:
        cache[key] = measure_step_seconds(model, micro, threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {**(read_json(path) or {}), key: cache[key]})  # keep entries other processes added
    return float(cache[key])
