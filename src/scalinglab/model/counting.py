"""Parameter and FLOP counts of a model of every family in every convention, as pure functions of its config.

No torch needed: a study can cost a run (N, C, PF-days) before building it. The counts are exact for
:class:`scalinglab.model.gpt.GPT`, :class:`scalinglab.model.lstm.LSTM` and
:class:`scalinglab.model.universal.UniversalTransformer` (tests compare them with ``sum(p.numel())``
of a real module).

Conventions (../shared/spec/paper-spec.md §2, §5.1, §5.4):

- ``N``: Kaplan's non-embedding count: everything but the token embedding, the positions and the
  head (Kaplan Table 1, eq 2.1), so biases and LayerNorms are in it.
- ``N_total``: Chinchilla's count: every distinct parameter, a tied head counted once (Hoffmann App F).
- ``N_with_head``: Porian's count: ``N`` plus the output head ``vocab_size * d_model``, tied or not.
- ``N_with_reuse``: ``N`` with each reused block counted once per application (Kaplan Fig 17); ``N``
  itself counts distinct parameters. The two differ only for the universal Transformer, and every
  FLOP count charges each application, since FLOPs are the work done.
"""

from __future__ import annotations

from typing import Any

from scalinglab.constants import PF_DAY  # FLOPs in a PF-day, re-exported for callers
from scalinglab.model.config import ModelConfig


def param_groups(cfg: ModelConfig) -> dict[str, int]:
    """Parameters per group: embeddings, positions, head, attention, mlp, norms, and biases.

    ``attention`` and ``mlp`` include their linear biases and ``norms`` the LayerNorm biases; ``biases``
    is a separate tally of all of those (a subset of the other groups, not an extra group to add).
    ``head`` is 0 when tied to the embedding. The LSTM has ``lstm`` (its gate matrices and biases) in
    place of ``attention`` and ``mlp``, and no positions.
    """
    d, f, L, V = cfg.d_model, cfg.ff_width, cfg.n_layer, cfg.vocab_size
    b = int(cfg.bias)
    if cfg.arch == "lstm":
        gate_bias = 2 * 4 * d  # PyTorch keeps b_ih and b_hh, each 4d (gates i, f, g, o)
        return {
            "embeddings": V * d,
            "positions": 0,
            "head": 0 if cfg.tie_embeddings else V * d,
            "lstm": L * (2 * 4 * d * d + b * gate_bias),  # W_ih and W_hh, each (4d, d)
            "norms": d + b * d,  # the final LayerNorm
            "biases": b * (L * gate_bias + d),
        }
    attn_bias = 3 * d + d  # qkv and output projection
    mlp_bias = f + d  # fc and projection
    norm_bias = (2 * L + 1) * d  # two LayerNorms per block and the final one
    return {
        "embeddings": V * d,
        "positions": cfg.n_ctx * d,
        "head": 0 if cfg.tie_embeddings else V * d,
        "attention": L * (d * 3 * d + d * d + b * attn_bias),
        "mlp": L * (2 * d * f + b * mlp_bias),
        "norms": (2 * L + 1) * d + b * norm_bias,
        "biases": b * (L * (attn_bias + mlp_bias) + norm_bias),
    }


def count_params(cfg: ModelConfig) -> dict[str, Any]:
    """``N``, ``N_total``, ``N_with_head``, ``N_with_reuse``, ``N_kaplan_formula`` and the per-group counts.

    ``N_kaplan_formula`` is Kaplan's approximation 2·d_model·n_layer·(2·d_attn + d_ff) (Table 1), which
    is 12·n_layer·d_model² for the standard shape d_ff = 4·d_model; it leaves out biases and norms.
    For the LSTM it is the same leading term of its own shape, the gate matrices 8·n_layer·d_model².
    """
    g = param_groups(cfg)
    d, L = cfg.d_model, cfg.n_layer
    final_norm = d + int(cfg.bias) * d
    if cfg.arch == "lstm":
        n = g["lstm"] + g["norms"]
        formula = 8 * L * d * d  # 4 gates x (input + recurrent) d x d matrices per layer
    else:
        n = g["attention"] + g["mlp"] + g["norms"]  # Kaplan eq 2.1: no embeddings, positions or head
        formula = 2 * d * L * (2 * d + cfg.ff_width)  # d_attn = n_head * head_dim = d_model
    return {
        "N": n,
        "N_total": n + g["embeddings"] + g["positions"] + g["head"],
        "N_with_head": n + cfg.vocab_size * d,
        "N_with_reuse": (n - final_norm) * cfg.reuse + final_norm,  # the blocks once per application
        "N_kaplan_formula": formula,
        "groups": g,
    }


def forward_flops_per_token(cfg: ModelConfig) -> dict[str, int]:
    """Forward FLOPs per token of every matmul and the softmax, term by term (Hoffmann App F).

    Chinchilla counts each term per sequence of length s; these are those counts divided by s, with
    s = n_ctx. The attention terms use the full s² score matrix as Chinchilla does (no saving for the
    causal mask), so the K·Q logits cost 2·s·d_attn per token, not the causal average s·d_attn.
    A universal Transformer's blocks count once per application. The LSTM's terms are its gate
    matmuls, input and recurrent, per layer per token (its elementwise gate updates, like the norms
    and GELU of a Transformer, are not counted).
    """
    d, f, V, s, h = cfg.d_model, cfg.ff_width, cfg.vocab_size, cfg.n_ctx, cfg.n_head
    L = cfg.n_layer * cfg.reuse  # blocks applied per token
    if cfg.arch == "lstm":
        return {
            "embeddings": 2 * V * d,
            "lstm_input": L * 2 * d * 4 * d,  # x_t @ W_ih.T for the four gates
            "lstm_recurrent": L * 2 * d * 4 * d,  # h_{t-1} @ W_hh.T, the recurrence
            "head": 2 * d * V,
        }
    d_attn = cfg.d_model  # key size k times heads h
    return {
        "embeddings": 2 * V * d,  # the lookup counted as a one-hot matmul
        "qkv": L * 2 * 3 * d * d_attn,
        "logits_kq": L * 2 * s * d_attn,
        "softmax": L * 3 * h * s,
        "softmax_v": L * 2 * s * d_attn,
        "attn_proj": L * 2 * d_attn * d,
        "mlp": L * 2 * (d * f + d * f),
        "head": 2 * d * V,  # the final logits
    }


def flops_per_token(cfg: ModelConfig) -> dict[str, float]:
    """TRAINING FLOPs per token (forward + backward) in each convention.

    ``6N`` (Kaplan's C = 6N), ``6N_total`` (Chinchilla's 6·N_total), ``kaplan`` = 3·C_forward with
    C_forward = 2N + 2·n_layer·n_ctx·d_attn (Kaplan Table 1), ``structural`` = 3 x the forward
    count of :func:`forward_flops_per_token` (Hoffmann App F: backward = 2 x forward), and the two
    throughput counts of :func:`throughput_flops_per_token`, ``model`` and ``hardware``. N counts each
    application of a reused block; the LSTM attends over no context, so its ``kaplan`` is 6N.
    """
    p = count_params(cfg)
    reused = p["N_with_reuse"] - p["N"]  # the extra applications of a universal Transformer's blocks
    n, n_total = p["N_with_reuse"], p["N_total"] + reused
    context = 0 if cfg.arch == "lstm" else 2 * cfg.n_layer * cfg.reuse * cfg.n_ctx * cfg.d_model  # attention
    c_forward = 2 * n + context
    return {
        "6N": 6.0 * n,
        "6N_total": 6.0 * n_total,
        "kaplan": 3.0 * c_forward,
        "structural": 3.0 * sum(forward_flops_per_token(cfg).values()),
        **throughput_flops_per_token(cfg),
    }


def throughput_flops_per_token(cfg: ModelConfig) -> dict[str, float]:
    """Training FLOPs per token for utilisation figures: ``model`` and ``hardware``.

    ``model`` is PaLM's model-FLOPs count 6·N + 12·n_layer·n_ctx·d_attn (Chowdhery et al. 2022 App B)
    with N = ``N_with_head`` (the head is a real matmul, tied or not) and full T×T attention, whatever
    the kernel does. ``hardware`` is the work the kernels do: 6 FLOPs per token for each matmul weight
    (no biases or norms) and causal attention at its real cost, position t attending to t + 1 keys,
    (n_ctx + 1) / 2 on average; the small-head CPU path (model.gpt.SmallCausalAttention) also
    multiplies the masked half, so there the count is the useful part of the work, a lower bound.
    Neither charges the embedding lookup, a gather rather than a matmul.
    """
    d, f, V, s = cfg.d_model, cfg.ff_width, cfg.vocab_size, cfg.n_ctx
    d_attn = cfg.d_model  # n_head * head_dim
    p = count_params(cfg)
    n = p["N_with_head"] + p["N_with_reuse"] - p["N"]  # a reused block once per application
    if cfg.arch == "lstm":  # the gate matmuls, input and recurrent; no attention over the context
        L, weights = 0, cfg.n_layer * 2 * 4 * d * d + V * d
    else:
        L = cfg.n_layer * cfg.reuse  # blocks applied
        weights = L * (3 * d * d_attn + d_attn * d + 2 * d * f) + V * d  # qkv, out projection, mlp; the head
    return {
        "model": 6.0 * n + 12.0 * L * s * d_attn,  # PaLM App B: 6N + 12·L·H·Q·T
        "hardware": 6.0 * weights + 12.0 * L * d_attn * (s + 1) / 2,  # causal: mean key count (T + 1) / 2
    }


def pf_days(flops: float) -> float:
    """FLOPs expressed in petaflop/s-days (Kaplan's unit for compute)."""
    return flops / PF_DAY
