"""Training speed measured on this machine, for the plan's time estimates; cached on disk.

- :func:`step_seconds`: one AdamW step of a GPT shape. The real model runs one warm-up step, then real
  steps (forward, backward, gradient clipping, fused AdamW, as the trainer does) are timed until there
  are at least 3 and 0.5 s; the median resists noise from other processes.
- :func:`startup_seconds`: a fresh worker process importing the trainer (torch and its optimiser
  machinery), paid once per worker.
- :func:`data_seconds`: loading a prepared corpus from the token cache, paid by every run.

Step and startup times are cached per host, torch version, thread count, shape and micro-batch in
``<cache>/throughput.json`` (the token cache directory, $SCALINGLAB_CACHE or ~/.cache/scalinglab).
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalinglab.config import stable_hash, to_dict
from scalinglab.data import DataConfig, default_cache_dir, prepare
from scalinglab.model.config import ModelConfig
from scalinglab.train.rundir import read_json, write_json

MIN_STEPS, MIN_SECONDS, MAX_STEPS = 3, 0.5, 50

STARTUP = "import torch, torch._dynamo, scalinglab.train.trainer"
"""What a fresh worker imports before its first run (AdamW imports torch._dynamo on first use)."""


def cache_path() -> Path:
    return default_cache_dir() / "throughput.json"


def _cached(what: dict[str, Any], measure: Callable[[], float], refresh: bool = False) -> float:
    """``measure()`` once per host and torch version for ``what`` (again with ``refresh``), then from the cache."""
    import torch

    key = stable_hash({"host": socket.gethostname(), "torch": torch.__version__, **what})
    path = cache_path()
    try:
        cache = read_json(path) or {}
    except json.JSONDecodeError:  # a damaged cache only loses measurements
        cache = {}
    if refresh or key not in cache:
        cache[key] = measure()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, cache)
    return float(cache[key])


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


def step_seconds(model: ModelConfig, micro: int, threads: int = 1, refresh: bool = False) -> float:
    """Seconds per training step on ``micro`` sequences with ``threads`` threads (measured once, cached)."""
    shape = {k: v for k, v in to_dict(model).items() if k not in ("dropout", "init_std")}
    what = {"model": shape, "micro": micro, "threads": threads}
    return _cached(what, lambda: measure_step_seconds(model, micro, threads), refresh)


def startup_seconds(refresh: bool = False) -> float:
    """Seconds a fresh Python process takes to import the trainer (measured once, cached)."""

    def measure() -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP], check=True)
        return time.perf_counter() - start

    return _cached({"startup": STARTUP}, measure, refresh)


def data_seconds(data: DataConfig, cache_dir: str = "") -> float:
    """Seconds to load ``data`` from the token cache, as every run does (builds the cache first if cold)."""
    prepare(data, cache_dir=cache_dir or None, progress=False)
    start = time.perf_counter()
    prepare(data, cache_dir=cache_dir or None, progress=False)
    return time.perf_counter() - start
