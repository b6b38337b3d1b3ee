"""A GPT-2 style decoder-only Transformer, read top to bottom: attention, MLP, block, loss, model.

Pre-LayerNorm blocks, GELU MLP, learned positions, causal attention through
``scaled_dot_product_attention``; the head is tied to the token embedding by default (Kaplan Table 1
lists no de-embedding parameters). Parameter and FLOP counts live on the model as methods and are
computed from the config by :mod:`scalinglab.model.counting`, so a study can cost a run without
building it. Speed on CPU (benchmarks/train_throughput.py) comes from one fused QKV matmul, the
flash attention kernel (or, for the short contexts and small heads of tiny CPU models, batched matmuls
that beat it), the exact GELU and a head + cross-entropy that makes no copies of the logits.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from scalinglab.model.config import ModelConfig

SMALL_ATTENTION_MAX_T, SMALL_ATTENTION_MAX_HEAD = 64, 8
"""Where :class:`SmallCausalAttention` replaces the flash kernel on CPU in training: n_ctx and head size
at most these. Measured forward + backward on one thread (benchmarks/attention_kernels.py): 1.2-1.8x
faster at n_ctx 64 with head sizes 4 and 8, slower at head size 16 or n_ctx 128. Without a backward
(evaluation) the flash kernel's forward is the faster one."""


@lru_cache(maxsize=8)
def _causal_mask(T: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive (T, T) mask on CPU: 0 on and below the diagonal, -inf above (never written to)."""
    return torch.full((T, T), float("-inf"), dtype=dtype).triu_(1)


class SmallCausalAttention(torch.autograd.Function):
    """Causal softmax attention from the fused projection ``qkv`` (B, T, 3C) to ``y`` (B, T, C).

    The same maths as ``scaled_dot_product_attention(is_causal=True)``, for tiny CPU models: at head
    size 8 the flash kernel does a few FLOPs per block and recomputes the softmax backward. Here five
    batched matmuls, each laid out with the head size as its short side first ((hd, T) outputs, which
    MKL runs 3x faster than (T, hd) ones), and the softmax kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, n_head: int) -> torch.Tensor:
        B, T, C3 = qkv.shape
        C, H = C3 // 3, n_head
        hd = C // H
        parts = qkv.view(B, T, 3, H, hd)
        q = parts[:, :, 0].transpose(1, 2).reshape(B * H, T, hd)  # (BH, T, hd)
        kT = parts[:, :, 1].permute(0, 2, 3, 1).reshape(B * H, hd, T)  # (BH, hd, T)
        vT = parts[:, :, 2].permute(0, 2, 3, 1).reshape(B * H, hd, T)  # (BH, hd, T)
        att = torch.baddbmm(_causal_mask(T, qkv.dtype), q, kT, alpha=hd**-0.5)  # (BH, T, T) masked scores
        att = torch.softmax(att, dim=-1)
        yT = torch.bmm(vT, att.transpose(1, 2))  # (BH, hd, T) = (att @ v)^T
        ctx.save_for_backward(q, kT, vT, att)
        ctx.n_head = H
        return yT.view(B, H, hd, T).permute(0, 3, 1, 2).reshape(B, T, C)  # (B, T, C)

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> tuple[torch.Tensor, None]:
        q, kT, vT, att = ctx.saved_tensors
        B, T, C = dy.shape
        H = ctx.n_head
        hd = C // H
        dyT = dy.view(B, T, H, hd).permute(0, 2, 3, 1).reshape(B * H, hd, T)  # (BH, hd, T)
        d_att = torch.bmm(dyT.transpose(1, 2), vT)  # (BH, T, T)
        d_scores = torch._softmax_backward_data(d_att, att, -1, att.dtype)  # masked entries: att = 0, so 0
        grads = (
            torch.bmm(kT, d_scores.transpose(1, 2)).mul_(hd**-0.5),  # (BH, hd, T) = (dS @ k)^T * scale
            torch.bmm(q.transpose(1, 2), d_scores).mul_(hd**-0.5),  # (BH, hd, T) = (dS^T @ q)^T * scale
            torch.bmm(dyT, att),  # (BH, hd, T) = (att^T @ dy)^T
        )
        dqkv = torch.empty(B, T, 3, H, hd, dtype=dy.dtype, device=dy.device)
        for i, g in enumerate(grads):
            dqkv[:, :, i].copy_(g.view(B, H, hd, T).permute(0, 3, 1, 2))
        return dqkv.view(B, T, 3 * C), None


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)  # one matmul for Q, K, V
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x)  # (B, T, 3C)
        drop = self.dropout if self.training else 0.0
        if not drop and self._small_heads_win(qkv):
            return self.resid_drop(self.proj(SmallCausalAttention.apply(qkv, self.n_head)))  # (B, T, C)
        q, k, v = qkv.split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))

    def _small_heads_win(self, qkv: torch.Tensor) -> bool:
        """Whether :class:`SmallCausalAttention` beats the flash kernel here: CPU training (a backward
        follows) in fp32/fp64 without autocast, at short contexts and small heads."""
        B, T, C3 = qkv.shape
        return (qkv.requires_grad and qkv.device.type == "cpu" and qkv.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled("cpu") and T <= SMALL_ATTENTION_MAX_T
                and C3 // 3 // self.n_head <= SMALL_ATTENTION_MAX_HEAD)  # fmt: skip


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ff_width, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ff_width, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # exact GELU: on CPU twice as fast as GPT-2's tanh approximation, which was only a speed trick
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # pre-LN residual (GPT-2)
        return x + self.mlp(self.ln_2(x))


class HeadCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy of the logits ``h @ w.T`` without copies of the (rows, vocab) logits.

    ``F.cross_entropy`` writes a log-softmax copy of the logits forward and, backward, a zero-filled
    gradient, another copy and a second exp pass; at vocab 4096 those passes over memory cost small
    CPU models about as much as the head matmul (an fp32 exp costs about 1 ns on a 2.4 GHz AVX2
    core). Here the logits buffer becomes the softmax in place, its one exp pass, and backward the
    gradient softmax - onehot in place. The loss is -log p[target] read off the softmax, with no pass
    over the logits of its own; rows whose target probability nears the float's smallest normal
    numbers (UNDERFLOW, a loss above 69 nats) get theirs from their logits again, exactly.
    """

    UNDERFLOW = 1e-30
    """Target probabilities below this are recomputed by :meth:`evaluate` (fp32's normals end at 1.2e-38)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = h @ w.t()  # (M, V)
        # in place: the kernel reads a row before it writes it
        probs = torch.ops.aten._softmax.out(logits, 1, False, out=logits)  # (M, V)
        ctx.save_for_backward(h, w, targets, probs)
        p_target = probs.gather(1, targets[:, None]).squeeze(1)  # (M,)
        loss = -torch.log(p_target)  # (M,) nats
        lost = (p_target < HeadCrossEntropy.UNDERFLOW).nonzero().squeeze(1)  # almost always empty
        if len(lost):
            loss[lost] = HeadCrossEntropy.evaluate(h[lost], w, targets[lost])  # log-softmax of their logits
        return loss

    @staticmethod
    def evaluate(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The same per-row loss where no backward follows (evaluation): the log-softmax in place alone."""
        logits = h @ w.t()  # (M, V)
        logp = torch.log_softmax(logits, dim=1, out=logits)  # in place, as above
        return -logp.gather(1, targets[:, None]).squeeze(1)  # (M,) nats

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        h, w, targets, grad = ctx.saved_tensors
        minus_one = torch.full_like(targets[:, None], -1, dtype=grad.dtype)
        grad.scatter_add_(1, targets[:, None], minus_one)  # softmax - onehot = d loss / d logits
        g = grad_loss[:, None]  # (M, 1): scale the small tensors rather than the (M, V) gradient
        grad_h = (grad @ w) * g if ctx.needs_input_grad[0] else None  # (M, C)
        # (V, C) as the transpose of a (C, V) product: MKL runs that orientation up to 2x faster at small C
        grad_w = ((h * g).t() @ grad).t() if ctx.needs_input_grad[1] else None
        return grad_h, grad_w, None


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # residual projections: std / sqrt(2 n_layer) (GPT-2), per applied block
                nn.init.normal_(p, mean=0.0, std=cfg.init_std / math.sqrt(2 * cfg.n_layer * cfg.reuse))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.cfg.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The final normalised residual stream (B, T, C) for token ids (B, T): the head's input."""
        T = idx.shape[1]
        if self.cfg.n_ctx < T:
            raise ValueError(f"sequence of {T} tokens is longer than model.n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.ln_f(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids (B, T)."""
        return self.head(self.features(idx))  # (B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy in nats/token: 'mean', 'sum', or 'none' for (B, T) per-position losses."""
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")
        x = self.features(idx).flatten(0, 1)  # (B*T, C)
        if torch.is_autocast_enabled(x.device.type):  # bf16 logits: F.cross_entropy upcasts them itself
            loss = F.cross_entropy(self.head(x).float(), targets.flatten(), reduction="none")
        else:
            head_loss = HeadCrossEntropy.apply if torch.is_grad_enabled() else HeadCrossEntropy.evaluate
            loss = head_loss(x, self.head.weight, targets.flatten())  # (B*T,)
        if reduction == "none":
            return loss.view(targets.shape)  # (B, T)
        return loss.mean() if reduction == "mean" else loss.sum()

    # ---- accounting (computed from the config; see scalinglab.model.counting) ----

    def param_groups(self) -> dict[str, int]:
        from scalinglab.model.counting import param_groups

        return param_groups(self.cfg)

    def num_params(self, convention: str = "N") -> int:
        """Parameters under a convention: 'N' (Kaplan), 'N_total' (Chinchilla), 'N_with_head' (Porian)."""
        from scalinglab.model.counting import count_params

        return count_params(self.cfg)[convention]

    def flops_per_token(self) -> dict[str, float]:
        """Training FLOPs per token in every convention (6N, 6N_total, kaplan, structural)."""
        from scalinglab.model.counting import flops_per_token

        return flops_per_token(self.cfg)
