"""Parameter and FLOP counts against hand counts and against a real GPT module."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import (
    PF_DAY,
    count_params,
    flops_per_token,
    forward_flops_per_token,
    param_groups,
    pf_days,
)
from scalinglab.model.gpt import GPT

# Three shapes: the benchmark's small one (tied, biases), an untied bias-free one, and an odd one
# (d_ff not 4*d_model, 3 heads, small vocabulary).
SMALL = ModelConfig(n_layer=2, d_model=128, n_head=4, n_ctx=128, vocab_size=4096)
UNTIED = ModelConfig(n_layer=4, d_model=256, n_head=4, n_ctx=256, vocab_size=4096, tie_embeddings=False, bias=False)
ODD = ModelConfig(n_layer=3, d_model=96, n_head=3, d_ff=200, n_ctx=64, vocab_size=1000)

# Written out by hand from the module definitions: per layer, attention = qkv (d x 3d + 3d) + proj
# (d x d + d); mlp = fc (d x f + f) + proj (f x d + d); 2 LayerNorms per block + 1 final (d weights + d biases).
HAND_PARAMS = {
    SMALL: {
        "embeddings": 4096 * 128,
        "positions": 128 * 128,
        "head": 0,
        "attention": 2 * (128 * 384 + 384 + 128 * 128 + 128),
        "mlp": 2 * (128 * 512 + 512 + 512 * 128 + 128),
        "norms": 5 * (128 + 128),
        "biases": 2 * (384 + 128 + 512 + 128) + 5 * 128,
    },
    UNTIED: {
        "embeddings": 4096 * 256,
        "positions": 256 * 256,
        "head": 4096 * 256,
        "attention": 4 * (256 * 768 + 256 * 256),
        "mlp": 4 * (256 * 1024 + 1024 * 256),
        "norms": 9 * 256,
        "biases": 0,
    },
    ODD: {
        "embeddings": 1000 * 96,
        "positions": 64 * 96,
        "head": 0,
        "attention": 3 * (96 * 288 + 288 + 96 * 96 + 96),
        "mlp": 3 * (96 * 200 + 200 + 200 * 96 + 96),
        "norms": 7 * (96 + 96),
        "biases": 3 * (288 + 96 + 200 + 96) + 7 * 96,
    },
}

# Forward FLOPs per token by hand (Hoffmann App F, divided by s = n_ctx):
# 2Vd embeddings + L[6d² qkv + 2sd logits + 3hs softmax + 2sd softmax·V + 2d² proj + 4df mlp] + 2dV head.
HAND_FORWARD = {
    SMALL: 2 * 4096 * 128
    + 2 * (6 * 128**2 + 2 * 128 * 128 + 3 * 4 * 128 + 2 * 128 * 128 + 2 * 128**2 + 4 * 128 * 512)
    + 2 * 128 * 4096,
    UNTIED: 2 * 4096 * 256
    + 4 * (6 * 256**2 + 2 * 256 * 256 + 3 * 4 * 256 + 2 * 256 * 256 + 2 * 256**2 + 4 * 256 * 1024)
    + 2 * 256 * 4096,
    ODD: 2 * 1000 * 96
    + 3 * (6 * 96**2 + 2 * 64 * 96 + 3 * 3 * 64 + 2 * 64 * 96 + 2 * 96**2 + 4 * 96 * 200)
    + 2 * 96 * 1000,
}

SHAPES = list(HAND_PARAMS)


def _module_groups(model: GPT) -> dict[str, int]:
    """Group the real module's distinct parameters by name, independently of counting.py."""
    groups = dict.fromkeys(HAND_PARAMS[SMALL], 0)
    for name, p in model.named_parameters():  # a tied head appears once, as wte
        group = (
            "embeddings" if name.startswith("wte") else
            "positions" if name.startswith("wpe") else
            "head" if name.startswith("head") else
            "attention" if ".attn." in name else
            "mlp" if ".mlp." in name else
            "norms"
        )
        groups[group] += p.numel()
        if name.endswith(".bias"):
            groups["biases"] += p.numel()
    return groups


@pytest.mark.parametrize("cfg", SHAPES, ids=["small", "untied", "odd"])
def test_param_groups_match_hand_count_and_module(cfg: ModelConfig) -> None:
    assert param_groups(cfg) == HAND_PARAMS[cfg]
    model = GPT(cfg)
    assert _module_groups(model) == HAND_PARAMS[cfg]
    assert count_params(cfg)["N_total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cfg", SHAPES, ids=["small", "untied", "odd"])
def test_conventions(cfg: ModelConfig) -> None:
    g = HAND_PARAMS[cfg]
    p = count_params(cfg)
    assert p["N"] == g["attention"] + g["mlp"] + g["norms"]
    assert p["N_total"] == p["N"] + g["embeddings"] + g["positions"] + g["head"]
    assert p["N_with_head"] == p["N"] + cfg.vocab_size * cfg.d_model  # Porian: head counted even when tied
    assert p["N_kaplan_formula"] == 2 * cfg.d_model * cfg.n_layer * (2 * cfg.d_model + cfg.ff_width)
    assert GPT(cfg).num_params("N_with_head") == p["N_with_head"]


def test_kaplan_formula_is_12_L_d2_for_the_standard_shape() -> None:
    assert count_params(SMALL)["N_kaplan_formula"] == 12 * 2 * 128**2
    assert count_params(UNTIED)["N_kaplan_formula"] == 12 * 4 * 256**2
    # biases and norms are all that separate the real count from the formula
    p = count_params(UNTIED)
    assert p["N"] - p["N_kaplan_formula"] == HAND_PARAMS[UNTIED]["norms"]


@pytest.mark.parametrize("cfg", SHAPES, ids=["small", "untied", "odd"])
def test_training_flops_per_token(cfg: ModelConfig) -> None:
    n = count_params(cfg)["N"]
    n_total = count_params(cfg)["N_total"]
    f = flops_per_token(cfg)
    assert f["6N"] == 6 * n
    assert f["6N_total"] == 6 * n_total
    assert f["kaplan"] == 3 * (2 * n + 2 * cfg.n_layer * cfg.n_ctx * cfg.d_model)  # Kaplan Table 1
    assert f["structural"] == 3 * HAND_FORWARD[cfg]
    assert GPT(cfg).flops_per_token() == f


@pytest.mark.parametrize("cfg", SHAPES, ids=["small", "untied", "odd"])
def test_linear_layer_flops_match_torch_flop_counter(cfg: ModelConfig) -> None:
    """torch counts the real module's matmuls (not the CPU attention kernel, lookups or softmax)."""
    torch.manual_seed(0)
    model = GPT(cfg)
    B, T = 2, cfg.n_ctx
    idx = torch.randint(0, cfg.vocab_size, (B, T))
    with FlopCounterMode(display=False) as counter:
        model(idx)
    terms = forward_flops_per_token(cfg)
    linear = terms["qkv"] + terms["attn_proj"] + terms["mlp"] + terms["head"]
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    matmul_flops = sum(n for op, n in counts.items() if "mm" in op)
    assert matmul_flops == linear * B * T


def test_structural_exceeds_6N_most_when_the_head_dominates() -> None:
    # Porian: the head is a large share of a tiny model's compute, so 6N undercounts it most.
    ratio_small = flops_per_token(SMALL)["structural"] / flops_per_token(SMALL)["6N"]
    big = ModelConfig(n_layer=12, d_model=768, n_head=12, n_ctx=256, vocab_size=4096)
    ratio_big = flops_per_token(big)["structural"] / flops_per_token(big)["6N"]
    assert ratio_small > 3 > ratio_big > 1


def test_pf_days() -> None:
    assert PF_DAY == 8.64e19
    assert pf_days(8.64e19) == 1.0
    assert pf_days(6 * 1e6 * 1e9) == pytest.approx(6e15 / 8.64e19)


# The shapes benchmarks/train_throughput.py and benchmarks/tiny_throughput.py report a fraction of peak for.
BENCHMARK_SHAPES = [
    ModelConfig(n_layer=2, d_model=128, n_head=2, n_ctx=128, vocab_size=4096),
    ModelConfig(n_layer=4, d_model=256, n_head=4, n_ctx=256, vocab_size=4096),
    ModelConfig(n_layer=6, d_model=384, n_head=6, n_ctx=256, vocab_size=4096),
    *(ModelConfig(n_layer=L, d_model=d, n_head=d // 8, n_ctx=64, vocab_size=2048) for L, d in [(2, 24), (2, 64), (3, 96)]),
]


@pytest.mark.parametrize("cfg", BENCHMARK_SHAPES, ids=lambda c: f"L{c.n_layer}-d{c.d_model}")
def test_hardware_flops_are_the_work_the_kernels_do(cfg: ModelConfig) -> None:
    """A training step's matmuls as torch counts them, plus causal attention, equal the hardware count.

    Timed against the best rate of the same kernels, a count of work done cannot pass 100% of peak
    (the old structural count charged the full T×T scores and the lookup, and printed 98-118%).
    """
    torch.manual_seed(0)
    model = GPT(cfg)
    B, T = 1, cfg.n_ctx
    idx = torch.randint(0, cfg.vocab_size, (B, T + 1))
    with FlopCounterMode(display=False) as counter:
        model.loss(idx[:, :-1], idx[:, 1:]).backward()
    # the weight matmuls; attention (the flash kernel, uncounted, or bmm over all T×T) is added as its causal part
    weight_ops = (torch.ops.aten.mm, torch.ops.aten.addmm)
    matmuls = sum(n for op, n in counter.get_flop_counts()["Global"].items() if op in weight_ops) / (B * T)
    # scores and weighted values, forward (2 x 2·d) and backward (2 x), over the t + 1 keys of position t
    causal_attention = cfg.n_layer * 3 * 4 * cfg.d_model * sum(t + 1 for t in range(T)) / T
    f = flops_per_token(cfg)
    assert f["hardware"] == pytest.approx(matmuls + causal_attention, rel=1e-12)
    # PaLM's model FLOPs are above the work done by the masked half of attention and 6 per bias or norm weight
    masked = 12 * cfg.n_layer * cfg.d_model * (T - (T + 1) / 2)
    not_matmul = 6 * count_params(cfg)["N_with_head"] - matmuls
    assert f["model"] - f["hardware"] == pytest.approx(masked + not_matmul, rel=1e-12)
    assert 0 < not_matmul < 0.05 * f["hardware"]
    assert f["hardware"] < f["structural"]  # the old count, above the work done


def test_model_flops_are_palms_6N_plus_attention() -> None:
    f, n = flops_per_token(SMALL), count_params(SMALL)["N_with_head"]
    assert f["model"] == 6 * n + 12 * SMALL.n_layer * SMALL.n_ctx * SMALL.d_model  # PaLM App B


def test_the_benchmarks_matmul_bound_replays_every_matrix_product_of_a_step() -> None:
    """benchmarks/train_throughput.py's matmul bound times a step's own products: it must see all that torch counts."""
    from benchmarks.train_throughput import make_step, step_matmuls

    cfg = ModelConfig(n_layer=2, d_model=64, n_head=8, n_ctx=64, vocab_size=512)  # head size 8: attention as batched products
    torch.manual_seed(0)
    step = make_step(GPT(cfg), cfg, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        step()
    products = (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm, torch.ops.aten.baddbmm)
    flops = counter.get_flop_counts()["Global"]
    assert any(op in flops for op in products[2:])  # the attention's products are among them
    replay, work = step_matmuls(step, torch.device("cpu"))
    assert work == pytest.approx(sum(n for op, n in flops.items() if op in products), rel=1e-12)
    replay()
