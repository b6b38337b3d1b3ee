"""Training throughput on this CPU as a fraction of the fp32 matmul peak measured in the same run.

For each shape it times real training steps as the trainer runs them (forward, backward, gradient
clipping, fused AdamW, 4,096 tokens per step) and converts tokens/s to GFLOP/s with the structural
FLOP count (Chinchilla App F; scalinglab.model.counting). The peak is large square fp32 matmuls on
the same threads, timed over about as long as a step. Other processes make timings noisy, so peak
and shapes are measured in alternation over several rounds and the best of each is kept: the ratio
compares the two at their quietest. It is given twice: by wall time, and by the process's CPU time
divided by the threads, which leaves out the time other processes held the cores.

    .venv/bin/python benchmarks/train_throughput.py                  # the issue's three shapes, 2 threads
    .venv/bin/python benchmarks/train_throughput.py --rounds 5 --json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import flops_per_token
from scalinglab.model.gpt import GPT

# (n_layer, d_model, n_ctx) and the target fraction of peak on 2 cores (issue 2 acceptance).
SHAPES = {(2, 128, 128): 0.45, (4, 256, 256): 0.75, (6, 384, 256): 0.75}
TOKENS_PER_STEP = 4096
VOCAB = 4096
HEAD_DIM = 64  # GPT-2 and Kaplan Fig 5
PEAK_N, PEAK_REPS = 2048, 8  # the peak: 8 fp32 2048² matmuls, ~1 s like a step, so both see the same noise


class Timing:
    """Fastest wall and CPU seconds per call seen so far (CPU time per thread: process time / threads)."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")

    def measure(self, fn: Callable[[], object], seconds: float) -> None:
        """Call ``fn`` once to warm up, then for about ``seconds`` (at least 3 calls)."""
        fn()
        spent, calls = 0.0, 0
        while calls < 3 or spent < seconds:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - w0, (time.process_time() - c0) / torch.get_num_threads()
            self.wall, self.cpu = min(self.wall, wall), min(self.cpu, cpu)
            spent, calls = spent + wall, calls + 1


def matmuls() -> Callable[[], object]:
    """PEAK_REPS square fp32 matmuls of size PEAK_N: PEAK_FLOPS FLOPs."""
    a, b, out = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N), torch.empty(PEAK_N, PEAK_N)
    return lambda: [torch.mm(a, b, out=out) for _ in range(PEAK_REPS)]


PEAK_FLOPS = PEAK_REPS * 2 * PEAK_N**3


def make_step(cfg: ModelConfig) -> Callable[[], float]:
    """One training step as the trainer takes it, on a fixed random batch."""
    torch.manual_seed(0)
    model = GPT(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("wpe.")]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("wpe."))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-4, fused=True)
    batch = torch.randint(0, cfg.vocab_size, (TOKENS_PER_STEP // cfg.n_ctx, cfg.n_ctx + 1))

    def step() -> float:
        loss = model.loss(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of peak and shapes (default 3)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per measurement (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    configs = {
        shape: ModelConfig(n_layer=shape[0], d_model=shape[1], n_head=shape[1] // HEAD_DIM, n_ctx=shape[2], vocab_size=VOCAB)
        for shape in SHAPES
    }
    peak_fn, peak = matmuls(), Timing()
    steps = {shape: make_step(cfg) for shape, cfg in configs.items()}
    timings = {shape: Timing() for shape in SHAPES}
    for _ in range(args.rounds):
        peak.measure(peak_fn, args.seconds)
        for shape, step in steps.items():
            timings[shape].measure(step, args.seconds)

    peak_flops = PEAK_FLOPS / peak.wall
    rows = []
    for shape, cfg in configs.items():
        t, step_flops = timings[shape], TOKENS_PER_STEP * flops_per_token(cfg)["structural"]
        rows.append(
            {
                "n_layer": shape[0], "d_model": shape[1], "n_ctx": shape[2], "n_head": cfg.n_head,
                "tokens_per_s": TOKENS_PER_STEP / t.wall, "gflops": step_flops / t.wall / 1e9,
                "fraction_of_peak": peak.wall / t.wall * step_flops / PEAK_FLOPS,
                "fraction_of_peak_cpu_time": peak.cpu / t.cpu * step_flops / PEAK_FLOPS,
                "target": SHAPES[shape],
            }
        )
    if args.json:
        print(json.dumps({"threads": args.threads, "peak_gflops": peak_flops / 1e9, "shapes": rows}, indent=2))
        return
    print(f"fp32 matmul peak: {peak_flops / 1e9:.1f} GFLOP/s on {args.threads} threads (torch {torch.__version__})")
    print(f"{'n_layer':>7} {'d_model':>7} {'n_ctx':>5} {'tokens/s':>9} {'GFLOP/s':>8} {'of peak':>8} {'(cpu time)':>10} {'target':>7}")
    for r in rows:
        print(
            f"{r['n_layer']:>7} {r['d_model']:>7} {r['n_ctx']:>5} {r['tokens_per_s']:>9,.0f} {r['gflops']:>8.1f} "
            f"{r['fraction_of_peak']:>8.0%} {r['fraction_of_peak_cpu_time']:>10.0%} {r['target']:>7.0%}"
        )


if __name__ == "__main__":
    main()
