"""Training speed measured on this machine, for the plan's time estimates; cached on disk.

- :func:`step_seconds`: one AdamW step of a GPT shape. The real model runs one warm-up step, then real
  steps (forward, backward, gradient clipping and AdamW on flat buffers, as the trainer does) are timed until there
  are at least 3 and 0.5 s; the median resists noise from other processes.
- :func:`parallel_costs`: what K runs at once cost: K fresh processes start together (importing
  torch and the trainer, as pool workers do), then time the same reference
  step together, so the slowdown of parallel runs on this machine (shared cores, memory bandwidth,
  other users) is measured rather than assumed.
- :func:`data_seconds`: loading a prepared corpus from the token cache, paid by every run.

Measurements are cached per machine (host name, CPU model and the cores this process may use: sandboxes
and cloud images often share one host name) and torch version (and shape, micro-batch, threads, K) in
``<cache>/throughput.json`` (the token cache directory, $SCALINGLAB_CACHE or ~/.cache/scalinglab).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalinglab.config import stable_hash, to_dict
from scalinglab.data import DataConfig, default_cache_dir, prepare
from scalinglab.host import machine
from scalinglab.model.config import ModelConfig
from scalinglab.train.rundir import read_json, write_json

MIN_STEPS, MIN_SECONDS, MAX_STEPS = 3, 0.5, 50

PROBE = ModelConfig(n_layer=2, d_model=64, n_head=4, n_ctx=64, vocab_size=1024)
"""The reference model :func:`parallel_costs` times alone and K at a time (16 sequences per step)."""
PROBE_SECONDS = 2.0


def cache_path() -> Path:
    return default_cache_dir() / "throughput.json"


def _cached(what: dict[str, Any], measure: Callable[[], Any], refresh: bool = False) -> Any:
    """``measure()`` once per machine (:func:`scalinglab.host.machine`) and torch version for ``what`` (again with ``refresh``), then from the cache."""
    import torch

    key = stable_hash({**machine(), "torch": torch.__version__, **what})
    path = cache_path()
    try:
        cache = read_json(path) or {}
    except json.JSONDecodeError:  # a damaged cache only loses measurements
        cache = {}
    if refresh or key not in cache:
        cache[key] = measure()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, cache)
    return cache[key]


def measure_step_seconds(model: ModelConfig, micro: int, threads: int = 1, min_seconds: float = MIN_SECONDS) -> float:
    """Median wall time of one training step on ``micro`` sequences, with ``threads`` CPU threads."""
    import torch

    from scalinglab.model.gpt import GPT
    from scalinglab.train.adamw import FlatAdamW

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        net = GPT(model)
        params = list(net.parameters())
        opt = FlatAdamW(params, [int(p.dim() < 2) for p in params], [0.1, 0.0], lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
        batch = torch.randint(0, model.vocab_size, (micro, model.n_ctx + 1))

        def step() -> None:
            loss = net.loss(batch[:, :-1], batch[:, 1:])
            loss.backward()
            opt.clip_(opt.grad_norm(), 1.0)
            opt.step(1e-4)
            opt.zero_grad()
            loss.item()

        step()  # warm-up: allocations and first-call costs
        times: list[float] = []
        while len(times) < MIN_STEPS or (sum(times) < min_seconds and len(times) < MAX_STEPS):
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
    return float(_cached(what, lambda: measure_step_seconds(model, micro, threads), refresh))


def parallel_costs(workers: int, refresh: bool = False) -> tuple[float, float]:
    """(start-up seconds, slowdown) when ``workers`` fresh processes start and train at once: the slowdown is
    their reference step's time over one process's, the two timed back to back (so under the same load)."""
    startup, *steps = _cached({"parallel": workers, "probe": to_dict(PROBE)}, lambda: _measure_parallel(workers), refresh)
    together, alone = (steps[0], steps[0]) if workers == 1 else steps
    return float(startup), max(1.0, float(together) / float(alone))


def _measure_parallel(workers: int) -> list[float]:
    """[start-up, step seconds of ``workers`` processes at once, and (K > 1) of one process right after]."""
    startup, together = _start_and_time(workers)
    return [startup, together] if workers == 1 else [startup, together, _start_and_time(1)[1]]


def _start_and_time(workers: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        code = "from scalinglab.study.throughput import probe; probe({!r}, {})"
        start = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", code.format(tmp, i)], stdout=subprocess.PIPE, text=True)
            for i in range(workers)
        ]
        while not all((Path(tmp) / f"ready{i}").exists() for i in range(workers)):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a throughput probe process died; run `scalinglab study plan --no-measure`.")
            time.sleep(0.05)
        startup = time.perf_counter() - start
        (Path(tmp) / "go").touch()  # all processes time their steps over the same seconds
        steps = [float(p.communicate()[0]) for p in procs]
    return startup, statistics.mean(steps)


def probe(tmp: str, index: int) -> None:
    """One process of :func:`parallel_costs`: import what a worker imports, wait for the others, time steps."""
    import scalinglab.study.worker  # noqa: F401
    import scalinglab.train.trainer  # noqa: F401

    (Path(tmp) / f"ready{index}").touch()
    while not (Path(tmp) / "go").exists():
        time.sleep(0.01)
    print(measure_step_seconds(PROBE, 16, threads=1, min_seconds=PROBE_SECONDS))


def data_seconds(data: DataConfig, cache_dir: str = "") -> float:
    """Seconds to load ``data`` from the token cache, as every run does (builds the cache first if cold)."""
    prepare(data, cache_dir=cache_dir or None, progress=False)
    start = time.perf_counter()
    prepare(data, cache_dir=cache_dir or None, progress=False)
    return time.perf_counter() - start
