"""A/B two versions of the model file in one process: training steps of each, timed in alternation.

On a shared machine two benchmark runs minutes apart differ by 10-20%, more than most changes to the
model code gain; and a kernel timed alone often gains what it does not gain inside a step (a block-causal
attention 1.2x faster alone at n_ctx 256 gave 1.01x in the model). Here both versions are imported
from their files, built with the same seed and config, and stepped (forward, backward, clipping, AdamW
on flat buffers, as the trainer does: benchmarks/train_throughput.make_step) in alternating blocks; the best block of each is kept, by this
process's CPU time divided by the threads, so both see the same machine. Also printed: the largest
difference of their training losses, 0 when the change keeps the arithmetic.

    git show HEAD:src/scalinglab/model/gpt.py > /tmp/gpt_head.py
    taskset -c 0 .venv/bin/python -m benchmarks.model_ab /tmp/gpt_head.py --shapes 2x32 2x64 3x96   # from the repository root
    .venv/bin/python -m benchmarks.model_ab /tmp/gpt_head.py --threads 2 --shapes 4x256 --n-ctx 256 --tokens 4096 --vocab 4096 --head-size 64
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from benchmarks.train_throughput import make_step

from scalinglab.model.config import ModelConfig

OURS = Path(__file__).resolve().parents[1] / "src" / "scalinglab" / "model" / "gpt.py"


def load(path: Path, name: str) -> ModuleType:
    """The model file at ``path`` imported as module ``name`` (its own imports come from the installed package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stepper(module: ModuleType, cfg: ModelConfig, tokens: int) -> Callable[[], float]:
    """A training step of ``module``'s GPT built from ``cfg``; the same init and batch for every version."""
    torch.manual_seed(0)
    model = module.GPT(cfg)
    torch.manual_seed(1)  # the batch: the same whatever the init drew
    return make_step(model, cfg, torch.device("cpu"), tokens=tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="the model file to compare against (e.g. a past commit's gpt.py)")
    parser.add_argument("b", type=Path, nargs="?", default=OURS, help="the other (default: this checkout's)")
    parser.add_argument("--shapes", nargs="+", default=["2x32", "2x64", "3x96"], help="n_layer x d_model (default: the demo's)")
    parser.add_argument("--n-ctx", type=int, default=64, help="context (default 64, the demo's)")
    parser.add_argument("--tokens", type=int, default=512, help="tokens per step (default 512, the demo's)")
    parser.add_argument("--vocab", type=int, default=2048, help="vocabulary (default 2048, the demo's)")
    parser.add_argument("--head-size", type=int, default=8, help="head size (default 8, the demo's ladder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a demo worker)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block (default 20)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating blocks per version; the best is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    versions = {"a": load(args.a, "model_a"), "b": load(args.b, "model_b")}
    print(f"a = {args.a}\nb = {args.b}\n{args.threads} thread(s), n_ctx {args.n_ctx}, {args.tokens} tokens per step, "
          f"vocab {args.vocab}; ms per step, best of {args.rounds} blocks of {args.steps} (CPU time / threads)")  # fmt: skip
    print(f"{'shape':>7} {'a':>9} {'b':>9} {'a / b':>7}  largest loss difference")
    for shape in args.shapes:
        n_layer, d_model = (int(v) for v in shape.split("x"))
        cfg = ModelConfig(n_layer=n_layer, d_model=d_model, n_head=max(1, d_model // args.head_size),
                          n_ctx=args.n_ctx, vocab_size=args.vocab)  # fmt: skip
        steps = {k: stepper(m, cfg, args.tokens) for k, m in versions.items()}
        losses = {k: [step() for _ in range(5)] for k, step in steps.items()}  # warm-up, the same steps
        diff = max(abs(x - y) for x, y in zip(losses["a"], losses["b"]))
        best = {k: float("inf") for k in steps}
        for _ in range(args.rounds):
            for k, step in steps.items():
                t0 = time.process_time()
                for _ in range(args.steps):
                    step()
                best[k] = min(best[k], (time.process_time() - t0) / args.threads / args.steps)
        print(f"{shape:>7} {best['a'] * 1e3:>9.3f} {best['b'] * 1e3:>9.3f} {best['a'] / best['b']:>6.3f}x  {diff:.2e}")


if __name__ == "__main__":
    main()
