"""Training throughput as a fraction of the matmul peak measured in the same run (CPU fp32, CUDA bf16).

For each shape it times real training steps as the trainer runs them (forward, backward, gradient
clipping and AdamW on flat buffers, 4,096 tokens per step) and converts tokens/s to FLOP/s two ways
(scalinglab.model.counting): model FLOPs, PaLM's 6N + 12·L·T·d (full attention, the head included),
and hardware FLOPs, the matmuls the kernels really do (causal attention at half). The peak is large
square matmuls on the same threads (bf16 under autocast on CUDA), timed over about as long as a step.
Other processes make timings noisy, so peak and shapes are measured in alternation over several
rounds and the best of each is kept: the ratio compares the two at their quietest. On CPU it is given
twice: by wall time, and by the process's CPU time divided by the threads, which leaves out the time
other processes held the cores. The hardware fraction cannot pass 1: it counts only work done, timed
against the best rate of the same kernels (tests/model/test_model_counting.py checks the count).

The peak is the best any matmul reaches here; a step's own matrix products are smaller and thinner (at
d_model 256, 4,096 x 256 by 256 x 768). So each shape also gets its matmul bound: the products one of its
steps runs (recorded at their shapes and dtypes), replayed alone and timed in the same rounds. The bound
as a fraction of the peak is the most a step made only of those matmuls could print; the step's hardware
FLOP/s over the bound says how near the step is to it (the rest is attention inside the flash kernel,
norms, the loss, the optimizer).

A nanoGPT-style model (``NanoGPT`` below, written here after Karpathy's nanoGPT model.py: the same
blocks, but ``F.cross_entropy`` on materialised logits, torch's fused AdamW and clip_grad_norm_) is timed in
the same loop, so the speed-up over it is a ratio from one run.

    .venv/bin/python benchmarks/train_throughput.py                  # the issue's three shapes, 2 threads
    .venv/bin/python benchmarks/train_throughput.py --rounds 5 --json
    .venv/bin/python benchmarks/train_throughput.py --device cuda    # fraction of the GPU's bf16 peak
    .venv/bin/python benchmarks/train_throughput.py --families       # and an LSTM and a universal Transformer at each N

With --families each GPT shape is timed beside the other model families at its N: an LSTM as deep,
its width giving the same non-embedding N (8·L·d² against 12·L·d²), and a universal Transformer of
the same shape applying each block twice (the same N, twice the FLOPs; their counts charge each
application and the LSTM's gate matmuls).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from scalinglab.model import build_model
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.model.gpt import GPT
from scalinglab.train.adamw import FlatAdamW

# (n_layer, d_model, n_ctx) and the target fraction of peak by model FLOPs on 2 cores (issue 14).
SHAPES = {(2, 128, 128): 0.45, (4, 256, 256): 0.83, (6, 384, 256): 0.83}
TOKENS_PER_STEP = 4096
VOCAB = 4096
HEAD_DIM = 64  # GPT-2 and Kaplan Fig 5
PEAK_N, PEAK_REPS = 2048, 8  # the CPU peak: 8 fp32 2048² matmuls, ~1 s like a step, so both see the same noise
CUDA_PEAK_N, CUDA_PEAK_REPS = 8192, 50  # the GPU peak: bf16 8192² matmuls, large enough to saturate the tensor cores


class Timing:
    """Fastest wall and CPU seconds per call seen so far (CPU time per thread: process time / threads)."""

    def __init__(self, sync: Callable[[], None] = lambda: None) -> None:
        self.wall = self.cpu = float("inf")
        self.sync = sync

    def measure(self, fn: Callable[[], object], seconds: float) -> None:
        """Call ``fn`` once to warm up, then for about ``seconds`` (at least 3 calls)."""
        fn()
        self.sync()
        spent, calls = 0.0, 0
        while calls < 3 or spent < seconds:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            self.sync()  # CUDA kernels run asynchronously: time them to completion
            wall, cpu = time.perf_counter() - w0, (time.process_time() - c0) / torch.get_num_threads()
            self.wall, self.cpu = min(self.wall, wall), min(self.cpu, cpu)
            spent, calls = spent + wall, calls + 1


class RecordMatmuls(TorchDispatchMode):
    """Records the shapes, strides and dtype of every matrix product run under it (the weight matmuls, and
    the attention's where it is done as batched products; the flash kernel's own products are not seen)."""

    OPS = {torch.ops.aten.mm.default: 0, torch.ops.aten.addmm.default: 1, torch.ops.aten.bmm.default: 0, torch.ops.aten.baddbmm.default: 1}

    def __init__(self) -> None:
        super().__init__()
        self.products: list[tuple[torch.dtype, tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], tuple[int, ...]]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.OPS:
            a, b = args[self.OPS[func]], args[self.OPS[func] + 1]
            self.products.append((a.dtype, (tuple(a.shape), a.stride()), (tuple(b.shape), b.stride())))
        return func(*args, **(kwargs or {}))


def step_matmuls(step: Callable[[], object], device: torch.device) -> tuple[Callable[[], object], float]:
    """The matrix products of one ``step`` replayed alone, at their own shapes, layouts (a weight's transpose
    stays a transposed view) and dtypes, and their FLOPs.

    Their best rate is what the step's shapes allow: small and thin products run below the square peak,
    so a step made only of its matmuls could reach no more than this rate.
    """
    with RecordMatmuls() as record:
        step()
    work, calls = 0.0, []
    for dtype, *layouts in record.products:
        a, b = (torch.empty_strided(shape, stride, device=device, dtype=dtype).normal_() for shape, stride in layouts)
        out = torch.matmul(a, b)
        calls.append((a, b, out))
        work += 2.0 * math.prod(a.shape) * b.shape[-1]
    return (lambda: [torch.matmul(a, b, out=out) for a, b, out in calls]), work


def matmuls(device: torch.device) -> tuple[Callable[[], object], float]:
    """The peak workload and its FLOPs: square fp32 matmuls on CPU, bf16 on CUDA (autocast's dtype)."""
    n, reps, dtype = (CUDA_PEAK_N, CUDA_PEAK_REPS, torch.bfloat16) if device.type == "cuda" else (PEAK_N, PEAK_REPS, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    return (lambda: [torch.mm(a, b, out=out) for _ in range(reps)]), reps * 2.0 * n**3


class NanoBlock(nn.Module):
    """nanoGPT's block: pre-LN, fused c_attn, flash attention, 4x GELU MLP."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.attn_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    """nanoGPT's GPT: tied embeddings and the loss as F.cross_entropy of the full logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(cfg.vocab_size, cfg.d_model), nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.h = nn.ModuleList(NanoBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 0.02) if p.dim() >= 2 else None

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def family_configs(cfg: ModelConfig) -> dict[str, ModelConfig]:
    """The other families at a GPT's N: an LSTM as deep (8·L·d² = 12·L·d_gpt², width a multiple of 8)
    and a universal Transformer of the same shape applying each block twice (Kaplan Figs 7, 17)."""
    d = 8 * round(cfg.d_model * math.sqrt(12 / 8) / 8)
    return {
        "lstm": dataclasses.replace(cfg, arch="lstm", d_model=d, n_head=1),
        "universal": dataclasses.replace(cfg, arch="universal", reuse=2),
    }


def make_step(
    model: nn.Module, cfg: ModelConfig, device: torch.device, flat: bool = True, tokens: int = TOKENS_PER_STEP
) -> Callable[[], float]:
    """One training step as the trainer takes it (bf16 autocast on CUDA), on a fixed random batch of ``tokens``:
    its flat-buffer AdamW and clipping, or with ``flat=False`` torch's fused AdamW and clip_grad_norm_ (nanoGPT's
    loop). The step returns its loss, read as the trainer reads it (one host sync)."""
    model = model.to(device)
    named = list(model.named_parameters())
    no_decay = [int(p.dim() < 2 or n.startswith("wpe.")) for n, p in named]
    batch = torch.randint(0, cfg.vocab_size, (max(1, tokens // cfg.n_ctx), cfg.n_ctx + 1), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    params = [p for _, p in named]
    if flat:
        opt = FlatAdamW(params, no_decay, [0.1, 0.0], lr=1e-4, betas=(0.9, 0.95), eps=1e-8)

        def step() -> float:
            with autocast:
                loss = model.loss(batch[:, :-1], batch[:, 1:])
            loss.backward()
            opt.clip_(opt.grad_norm(), 1.0)
            opt.step(1e-4)
            opt.zero_grad()
            return loss.item()

        return step
    groups = [{"params": [p for p, g in zip(params, no_decay) if g == k], "weight_decay": wd} for k, wd in ((0, 0.1), (1, 0.0))]
    torch_opt = torch.optim.AdamW(groups, lr=1e-4, fused=True)

    def torch_step() -> float:
        with autocast:
            loss = model.loss(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        torch_opt.step()
        torch_opt.zero_grad(set_to_none=True)
        return loss.item()

    return torch_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of peak and shapes (default 3)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per measurement (default 2)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (fp32) or cuda (bf16 autocast)")
    parser.add_argument("--shapes", nargs="+", metavar="LxDxT", help="n_layer x d_model x n_ctx (default: the three above)")
    parser.add_argument("--no-nanogpt", action="store_true", help="skip the nanoGPT-style comparison")
    parser.add_argument("--families", action="store_true", help="also an LSTM and a universal Transformer (reuse 2) at each shape's N")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; run on a GPU machine or use --device cpu")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes] if args.shapes else list(SHAPES)
    configs = {
        shape: ModelConfig(n_layer=shape[0], d_model=shape[1], n_head=shape[1] // HEAD_DIM, n_ctx=shape[2], vocab_size=VOCAB)
        for shape in shapes
    }
    (peak_fn, peak_work), peak = matmuls(device), Timing(sync)
    models = {"scalinglab": GPT} if args.no_nanogpt else {"scalinglab": GPT, "nanogpt": NanoGPT}
    steps, timings = {}, {}
    for shape, cfg in configs.items():
        for name, cls in models.items():
            torch.manual_seed(0)
            steps[shape, name], timings[shape, name] = make_step(cls(cfg), cfg, device, flat=name == "scalinglab"), Timing(sync)
    families = {(shape, arch): c for shape, cfg in configs.items() for arch, c in family_configs(cfg).items()} if args.families else {}
    for key, c in families.items():
        torch.manual_seed(0)
        steps[key], timings[key] = make_step(build_model(c), c, device), Timing(sync)
    bounds = {shape: (*step_matmuls(steps[shape, "scalinglab"], device), Timing(sync)) for shape in configs}
    for _ in range(args.rounds):
        peak.measure(peak_fn, args.seconds)
        for key, step in steps.items():
            timings[key].measure(step, args.seconds)
        for fn, _, timing in bounds.values():
            timing.measure(fn, args.seconds / 2)

    peak_flops = peak_work / peak.wall
    rows = []
    for shape, cfg in configs.items():
        t, f = timings[shape, "scalinglab"], flops_per_token(cfg)
        row = {
            "n_layer": shape[0], "d_model": shape[1], "n_ctx": shape[2], "n_head": cfg.n_head,
            "tokens_per_s": TOKENS_PER_STEP / t.wall,
            "model_gflops": TOKENS_PER_STEP * f["model"] / t.wall / 1e9,
            "hardware_gflops": TOKENS_PER_STEP * f["hardware"] / t.wall / 1e9,
            "fraction_of_peak_model": TOKENS_PER_STEP * f["model"] / t.wall / peak_flops,
            "fraction_of_peak_hardware": TOKENS_PER_STEP * f["hardware"] / t.wall / peak_flops,
            "fraction_of_peak_model_cpu_time": TOKENS_PER_STEP * f["model"] / t.cpu * peak.cpu / peak_work,
            "target_model": SHAPES.get(shape, math.nan),
            "matmul_bound_gflops": bounds[shape][1] / bounds[shape][2].wall / 1e9,
        }  # fmt: skip
        row["matmul_bound_of_peak"] = row["matmul_bound_gflops"] * 1e9 / peak_flops
        row["fraction_of_matmul_bound_hardware"] = row["hardware_gflops"] / row["matmul_bound_gflops"]
        if "nanogpt" in models:
            row["vs_nanogpt"] = timings[shape, "nanogpt"].wall / t.wall
        rows.append(row)
    family_rows = []
    for (shape, arch), c in families.items():
        t, f, n = timings[shape, arch], flops_per_token(c), count_params(c)
        family_rows.append({
            "arch": arch, "n_layer": c.n_layer, "d_model": c.d_model, "reuse": c.reuse, "n_ctx": c.n_ctx,
            "N": n["N"], "N_with_reuse": n["N_with_reuse"], "tokens_per_s": TOKENS_PER_STEP / t.wall,
            "fraction_of_peak_model": TOKENS_PER_STEP * f["model"] / t.wall / peak_flops,
            "fraction_of_peak_hardware": TOKENS_PER_STEP * f["hardware"] / t.wall / peak_flops,
            "tokens_per_s_vs_gpt": timings[shape, "scalinglab"].wall / t.wall,
        })  # fmt: skip
    # The hardware count is work done, and the bound is matmuls: either above the peak means a noisy peak.
    over = [r for r in rows + family_rows if r["fraction_of_peak_hardware"] > 1 or r.get("matmul_bound_of_peak", 0) > 1]
    if args.json:
        print(json.dumps({"device": args.device, "threads": args.threads, "peak_gflops": peak_flops / 1e9, "shapes": rows,
                          **({"families": family_rows} if family_rows else {})}, indent=2))
    else:
        kind = "bf16 (autocast)" if device.type == "cuda" else f"fp32 on {args.threads} threads"
        name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        print(f"{name} matmul peak: {peak_flops / 1e9:.1f} GFLOP/s {kind} (torch {torch.__version__})")
        print("model FLOPs = 6·N_with_head + 12·L·T·d (PaLM App B); hardware FLOPs = matmuls done, causal attention at half")
        print("matmul bound = the step's own matrix products replayed alone (their shapes' best rate, of the peak); "
              "hw of bound = the step's hardware FLOP/s over it")  # fmt: skip
        print(f"{'n_layer':>7} {'d_model':>7} {'n_ctx':>5} {'tokens/s':>9} {'model GF/s':>10} {'of peak':>8} "
              f"{'(cpu time)':>10} {'hw of peak':>10} {'target':>7} {'vs nanoGPT':>10} {'matmul bound':>12} {'hw of bound':>11}")  # fmt: skip
        for r in rows:
            vs = f"{r['vs_nanogpt']:.2f}x" if "vs_nanogpt" in r else "-"
            print(
                f"{r['n_layer']:>7} {r['d_model']:>7} {r['n_ctx']:>5} {r['tokens_per_s']:>9,.0f} {r['model_gflops']:>10.1f} "
                f"{r['fraction_of_peak_model']:>8.0%} {r['fraction_of_peak_model_cpu_time']:>10.0%} "
                f"{r['fraction_of_peak_hardware']:>10.0%} {r['target_model']:>7.0%} {vs:>10} "
                f"{r['matmul_bound_of_peak']:>12.0%} {r['fraction_of_matmul_bound_hardware']:>11.0%}"
            )
        if family_rows:
            print("\nother families at each shape's N (tokens/s against the GPT of that shape):")
            print(f"{'arch':>9} {'n_layer':>7} {'d_model':>7} {'reuse':>5} {'N':>10} {'tokens/s':>9} {'of peak':>8} "
                  f"{'hw of peak':>10} {'vs GPT':>7}")  # fmt: skip
            for r in family_rows:
                print(f"{r['arch']:>9} {r['n_layer']:>7} {r['d_model']:>7} {r['reuse']:>5} {r['N']:>10,} {r['tokens_per_s']:>9,.0f} "
                      f"{r['fraction_of_peak_model']:>8.0%} {r['fraction_of_peak_hardware']:>10.0%} {r['tokens_per_s_vs_gpt']:>6.2f}x")
    if over:
        raise SystemExit(f"{len(over)} shape(s) above 100% of the measured peak: the peak was timed while the machine was busy; rerun with more --rounds")


if __name__ == "__main__":
    main()
