"""Training throughput of the demo's tiny models on one thread, with a breakdown of each step.

The demo's runs (d_model 24-96, n_ctx 64, 512 tokens per step, vocab 2048, head size 8) are run by
the real :class:`~scalinglab.train.trainer.Trainer` on the built-in corpus for ``--steps`` steps; its
parts are timed by wrapping them: data (the sampler), forward (``model.loss``), backward (the rest of
the step), clipping, optimizer, logging (the metrics record and its write) and evaluation. The demo
evaluates 12 times in a run of thousands of steps, so evaluation is given per evaluation and amortised
over the real run's length. Fractions use the hardware FLOP count (scalinglab.model.counting) over the
fp32 matmul peak of one thread measured in the same run, in alternation with the shapes.

    taskset -c 0 .venv/bin/python benchmarks/tiny_throughput.py
    taskset -c 0 .venv/bin/python benchmarks/tiny_throughput.py --shapes 2x32 2x64 --steps 300 --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread, as the demo runs its workers

import torch  # noqa: E402

from scalinglab.config import load_config  # noqa: E402
from scalinglab.model.counting import flops_per_token  # noqa: E402
from scalinglab.study.recipes import get_recipe  # noqa: E402
from scalinglab.train import rundir  # noqa: E402
from scalinglab.train.budget import resolve_steps  # noqa: E402
from scalinglab.train.config import RunConfig  # noqa: E402
from scalinglab.train.distributed import Distributed  # noqa: E402
from scalinglab.train.trainer import Trainer  # noqa: E402

DEMO_SHAPES = ["2x24", "2x32", "2x48", "2x64", "3x80", "3x96"]  # the demo's ladder (scalinglab.demo)
DEMO = [  # the demo's base run (scalinglab.demo.DEMO_STUDY, recipe tiny-v1) and its ladder's noise-scale micro-batches
    "model.n_ctx=64", "model.vocab_size=2048", "data.corpus=stdlib", "data.vocab_size=2048",
    "optim.batch_size=8", "eval.tokens=16384", "eval.noise_scale=true", "optim.micro_batch_size=4",
    "eval.noise_scale_every=4",
    "runtime.threads=1", "runtime.progress=false", "runtime.device=cpu",
]  # fmt: skip
DEMO_EVAL_POINTS, DEMO_TOKENS_PER_PARAM = 12, 8  # scalinglab.demo: points = 12, tokens_per_param = 8
PARTS = ["data", "forward", "backward", "clipping", "optimizer", "logging", "evaluation", "other"]


class Clock:
    """Seconds per named part, added up by wrapped callables (wall time, or this process's CPU time)."""

    now = staticmethod(time.perf_counter)

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.evaluating = False

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed under ``part``; calls made during an evaluation count as evaluation only."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.evaluating:
                return fn(*args, **kwargs)
            self.evaluating = part == "evaluation"
            t0 = self.now()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += self.now() - t0
                self.calls[part] += 1
                self.evaluating = False

        return timed


class TimedTrainer(Trainer):
    """The real trainer with its parts wrapped in a :class:`Clock` (the loop itself is untouched)."""

    clock: Clock

    def _build(self) -> None:
        super()._build()
        c = self.clock
        self.sampler.next_batch = c.wrap("data", self.sampler.next_batch)
        self.model.loss = c.wrap("forward", self.model.loss)
        self.optimizer.step = c.wrap("optimizer", self.optimizer.step)
        self.optimizer.grad_norm = c.wrap("clipping", self.optimizer.grad_norm)  # the clip's norm and the noise scale's
        self.optimizer.clip_ = c.wrap("clipping", self.optimizer.clip_)
        self._train_step = c.wrap("step", self._train_step)
        self._record = c.wrap("logging", self._record)
        self.evaluate = c.wrap("evaluation", self.evaluate)


def config(shape: str, steps: int, cache: str, out: str, **extra: str) -> RunConfig:
    n_layer, d_model = (int(v) for v in shape.split("x"))
    items = [*DEMO, f"model.n_layer={n_layer}", f"model.d_model={d_model}", f"model.n_head={d_model // 8}"]
    items += [f"budget.steps={steps}", "eval.points=3", f"runtime.out_dir={out}", f"runtime.cache_dir={cache}"]
    return get_recipe("tiny-v1")(load_config(RunConfig, None, items + [f"{k}={v}" for k, v in extra.items()]))


def measure(shape: str, steps: int, cache: str, **extra: str) -> dict[str, Any]:
    """Train one fresh run of ``shape`` and return its per-step breakdown (seconds per step)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = config(shape, steps, cache, out, **extra)
        clock = Clock()
        trainer = TimedTrainer(cfg, Path(out) / "run", torch.device("cpu"), Distributed())
        trainer.clock = clock
        write = rundir.MetricsWriter.write
        rundir.MetricsWriter.write = clock.wrap("logging", write)
        try:
            t0 = Clock.now()
            trainer.run()
            total = Clock.now() - t0
        finally:
            rundir.MetricsWriter.write = write
    s, n_eval = clock.seconds, max(clock.calls["evaluation"], 1)
    per_step = {k: s[k] for k in ("data", "forward", "clipping", "optimizer", "logging")}
    per_step["backward"] = s["step"] - sum(per_step[k] for k in ("data", "forward", "clipping", "optimizer"))
    per_step["other"] = total - s["step"] - s["logging"] - s["evaluation"]  # setup, progress, checkpoints
    per_step = {k: v / steps for k, v in per_step.items()}
    demo_steps = resolve_steps(config(shape, 1, cache, "unused", **{"budget.steps": "0", "budget.tokens_per_param": str(DEMO_TOKENS_PER_PARAM)}))
    per_step["evaluation"] = s["evaluation"] / n_eval * DEMO_EVAL_POINTS / demo_steps  # amortised over the demo run
    step = sum(per_step.values())
    tokens = cfg.optim.batch_size * cfg.model.n_ctx
    f = flops_per_token(cfg.model)
    return {"shape": shape, "tokens_per_step": tokens, "step_s": step, "per_step": per_step,
            "train_tokens_per_s": tokens / (s["step"] / steps), "tokens_per_s": tokens / step,
            "hardware_flops_per_token": f["hardware"], "model_flops_per_token": f["model"],
            "eval_s": s["evaluation"] / n_eval, "demo_steps": demo_steps}  # fmt: skip


def peak_flops(seconds: float = 1.0) -> float:
    """Best fp32 matmul FLOP/s of this thread over about ``seconds`` (512² matmuls, cache-resident)."""
    n = 512
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=out)
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t0 = Clock.now()
        for _ in range(8):
            torch.mm(a, b, out=out)
        dt = Clock.now() - t0
        best, spent = min(best, dt), spent + dt
    return 8 * 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=DEMO_SHAPES, help="n_layer x d_model (default: the demo's ladder)")
    parser.add_argument("--steps", type=int, default=200, help="steps per measurement (default 200)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of peak and shapes; the best is kept")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier when other processes share the core)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.clock == "cpu":
        Clock.now = staticmethod(time.process_time)
    torch.set_num_threads(1)
    from scalinglab.data import prepare

    cache = tempfile.mkdtemp(prefix="scalinglab-bench-")
    prepare(config(args.shapes[0], 1, cache, "unused").data, cache_dir=cache, progress=False)
    extra = dict(item.split("=", 1) for item in args.set)
    peak, best = 0.0, {}
    for _ in range(args.rounds):
        peak = max(peak, peak_flops())
        for shape in args.shapes:
            r = measure(shape, args.steps, cache, **extra)
            if shape not in best or r["step_s"] < best[shape]["step_s"]:
                best[shape] = r
    rows = list(best.values())
    for r in rows:
        r["fraction_of_peak"] = r["tokens_per_s"] * r["hardware_flops_per_token"] / peak
        r["fraction_of_peak_model"] = r["tokens_per_s"] * r["model_flops_per_token"] / peak
    if args.json:
        print(json.dumps({"clock": args.clock, "peak_gflops": peak / 1e9, "load": os.getloadavg(), "shapes": rows}, indent=2))
        return
    print(f"fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s on 1 thread ({args.clock} time); load average {os.getloadavg()[0]:.1f}")
    print(f"{'shape':>5} {'tokens/s':>9} {'(steps)':>9} {'of peak':>7} {'(model)':>7}  ms per step: "
          + " ".join(f"{p:>9}" for p in PARTS))  # fmt: skip
    for r in rows:
        print(f"{r['shape']:>5} {r['tokens_per_s']:>9,.0f} {r['train_tokens_per_s']:>9,.0f} {r['fraction_of_peak']:>7.1%} "
              f"{r['fraction_of_peak_model']:>7.1%}               " + " ".join(f"{r['per_step'][p] * 1e3:>9.3f}" for p in PARTS))  # fmt: skip


if __name__ == "__main__":
    main()
