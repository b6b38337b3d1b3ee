"""Causal attention on one CPU thread: the flash kernel against the small-head path, forward + backward.

``model.gpt.CausalSelfAttention`` sends contexts of at most ``SMALL_ATTENTION_MAX_T`` tokens with heads
of at most ``SMALL_ATTENTION_MAX_HEAD`` through :class:`~scalinglab.model.gpt.SmallCausalAttention`
(batched matmuls, the softmax kept for backward) and everything else through
``scaled_dot_product_attention``. This prints both on each shape, from the fused projection (B, T, 3C)
to (B, T, C) and back, as the model calls them, best of ``--rounds`` alternating rounds, so the two
constants can be checked on a new machine.

    taskset -c 0 .venv/bin/python benchmarks/attention_kernels.py
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from scalinglab.model.gpt import SMALL_ATTENTION_MAX_HEAD, SMALL_ATTENTION_MAX_T, SmallCausalAttention  # noqa: E402

# (batch rows, heads, n_ctx, head size): the demo's micro-batches (4 rows, head size 8; IsoFLOP runs 8
# rows, head size 4; the batch scan up to 32 rows), then larger heads and longer contexts
SHAPES = [(4, 4, 64, 8), (4, 12, 64, 8), (8, 6, 64, 4), (8, 10, 64, 4), (32, 4, 64, 8),
          (8, 4, 64, 16), (8, 4, 64, 32), (8, 8, 128, 8), (8, 4, 128, 16), (8, 8, 256, 16)]  # fmt: skip


def flash(qkv: torch.Tensor, n_head: int) -> torch.Tensor:
    """The model's general path: split, (B, H, T, hd) views, the fused kernel, back to (B, T, C)."""
    B, T, C3 = qkv.shape
    q, k, v = (t.view(B, T, n_head, -1).transpose(1, 2) for t in qkv.split(C3 // 3, dim=2))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C3 // 3)


def seconds(path: Callable[[torch.Tensor, int], torch.Tensor], qkv: torch.Tensor, n_head: int,
            upstream: torch.Tensor, calls: int) -> float:
    """Mean seconds of one forward + backward of ``path`` over ``calls`` calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        path(qkv, n_head).backward(upstream)
    return (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"small-head path used at n_ctx <= {SMALL_ATTENTION_MAX_T} and head size <= {SMALL_ATTENTION_MAX_HEAD}")
    print(f"{'B':>3} {'H':>3} {'T':>4} {'hd':>3} {'flash us':>9} {'small us':>9} {'speed-up':>8}  used")
    for B, H, T, hd in SHAPES:
        qkv = torch.randn(B, T, 3 * H * hd, requires_grad=True)
        upstream = torch.randn(B, T, H * hd)
        paths = {"flash": flash, "small": SmallCausalAttention.apply}
        calls = max(5, int(2e5 / (B * H * T * T / 64)))
        best = {name: float("inf") for name in paths}
        for path in paths.values():
            seconds(path, qkv, H, upstream, 3)  # warm-up
        for _ in range(args.rounds):
            for name, path in paths.items():
                best[name] = min(best[name], seconds(path, qkv, H, upstream, calls))
        used = "small" if T <= SMALL_ATTENTION_MAX_T and hd <= SMALL_ATTENTION_MAX_HEAD else "flash"
        print(f"{B:>3} {H:>3} {T:>4} {hd:>3} {best['flash'] * 1e6:>9.0f} {best['small'] * 1e6:>9.0f} "
              f"{best['flash'] / best['small']:>7.2f}x  {used}")  # fmt: skip


if __name__ == "__main__":
    main()
