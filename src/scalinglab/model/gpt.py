"""A GPT-2 style decoder-only Transformer, read top to bottom: attention, MLP, block, loss, model.

Pre-LayerNorm blocks, GELU MLP, learned positions, causal attention through
``scaled_dot_product_attention``; the head is tied to the token embedding by default (Kaplan Table 1
lists no de-embedding parameters). Parameter and FLOP counts live on the model as methods and are
computed from the config by :mod:`scalinglab.model.counting`, so a study can cost a run without
building it. Speed on CPU (benchmarks/train_throughput.py) comes from one fused QKV matmul, the
flash attention kernel, the exact GELU and a head + cross-entropy that makes no copies of the logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from scalinglab.model.config import ModelConfig


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
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))


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
    gradient and another copy; at vocab 4096 those passes over memory cost small CPU models about as
    much as the head matmul. Here the logits buffer becomes the log-softmax in place and, backward,
    the gradient softmax - onehot in place.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = h @ w.t()  # (M, V)
        logp = torch.log_softmax(logits, dim=1, out=logits)  # in place: the kernel reads a row before writing it
        ctx.save_for_backward(h, w, targets, logp)
        return -logp.gather(1, targets[:, None]).squeeze(1)  # (M,) nats

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        h, w, targets, logp = ctx.saved_tensors
        grad = logp.exp_()  # softmax, in place
        grad[torch.arange(len(targets), device=grad.device), targets] -= 1  # d loss / d logits
        g = grad_loss[:, None]  # (M, 1): scale the small tensors rather than the (M, V) gradient
        grad_h = (grad @ w) * g if ctx.needs_input_grad[0] else None  # (M, C)
        grad_w = grad.t() @ (h * g) if ctx.needs_input_grad[1] else None  # (V, C)
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
            loss = HeadCrossEntropy.apply(x, self.head.weight, targets.flatten())  # (B*T,)
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
