"""The machine's matmul peak, so that metrics.jsonl can say what fraction of it a run reaches.

Measured once per machine (host, CPU model and cores; the GPU's name on CUDA), torch version, device, dtype and thread count (the best rate of square
matmuls over about a quarter of a second, so a busy moment lowers it little) and cached in
``<cache>/peak.json`` beside the token cache; later runs read it for free.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from scalinglab.atomic import read_json, write_json
from scalinglab.errors import ScalinglabError
from scalinglab.host import machine

SECONDS = 0.25
CPU_N, CUDA_N = 512, 4096  # cache-resident on a CPU core; large enough to fill a GPU's tensor cores


def measure_peak(device: torch.device, dtype: torch.dtype, seconds: float = SECONDS) -> float:
    """Best FLOP/s of ``dtype`` square matmuls on ``device`` with the current threads over about ``seconds``."""
    n = CUDA_N if device.type == "cuda" else CPU_N
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = torch.Generator(device=device).manual_seed(0)  # its own: the run's random stream stays as if never measured
    a, b = (torch.randn(n, n, generator=rng, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: first-call costs
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b, out=out)
        sync()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return 4 * 2.0 * n**3 / best


def matmul_peak(device: torch.device, dtype: torch.dtype, cache_dir: Path) -> float:
    """This machine's matmul peak in FLOP/s for ``dtype`` on ``device`` (measured once, then read from the cache)."""
    where = " ".join(str(v) for v in machine().values())
    if device.type == "cuda":
        where += f" {torch.cuda.get_device_name(device)}"
    key = f"{where} torch {torch.__version__} {device.type} {dtype} threads {torch.get_num_threads()}"
    path = Path(cache_dir) / "peak.json"
    try:
        cache = read_json(path) or {}
    except (OSError, ScalinglabError):  # a damaged or unreadable cache only costs a measurement
        cache = {}
    if key not in cache:
        cache[key] = measure_peak(device, dtype)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, cache)
        except (OSError, ScalinglabError):  # a read-only or full cache: measure again next time
            pass
    return float(cache[key])
