"""An LSTM language model, read top to bottom: embedding, stacked LSTM layers, final norm, head and loss.

Kaplan Fig 7 compares Transformers with LSTMs of 1, 2 and 4 layers at equal non-embedding N and finds
that LSTMs use the start of the context only: their per-token loss flattens after fewer than 100
tokens. Here ``n_layer`` LSTM layers of width ``d_model`` (input = hidden = d_model) run in PyTorch's
fused kernel; there are no learned positions (the recurrence orders the tokens) and every sequence
starts from a zero state. The final LayerNorm, the head tied to the embedding and the fused
cross-entropy are the GPT's (:mod:`scalinglab.model.gpt`), so both families compute their loss, its
per-position values and their parameter and FLOP counts by the same code.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from scalinglab.model.config import ModelConfig
from scalinglab.model.gpt import GPT


class LSTM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.d_model,
            cfg.d_model,
            num_layers=cfg.n_layer,
            bias=cfg.bias,
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layer > 1 else 0.0,  # between layers; the last layer's output below
        )
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self) -> None:
        """Normal(0, init_std) weights as the GPT's; zero biases but the forget gate's, which starts at 1."""
        d = self.cfg.d_model
        nn.init.normal_(self.wte.weight, mean=0.0, std=self.cfg.init_std)
        nn.init.normal_(self.head.weight, mean=0.0, std=self.cfg.init_std)  # the embedding again when tied
        for name, p in self.lstm.named_parameters():
            if name.startswith("weight_"):  # weight_ih_l{k}, weight_hh_l{k}: (4d, d), gates i, f, g, o
                nn.init.normal_(p, mean=0.0, std=self.cfg.init_std)
            else:
                nn.init.zeros_(p)
                if name.startswith("bias_ih"):  # a cell that keeps its memory at first (Jozefowicz et al. 2015)
                    nn.init.ones_(p[d : 2 * d])

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The final normalised LSTM output (B, T, C) for token ids (B, T): the head's input."""
        x = self.drop(self.wte(idx))  # (B, T, C)
        x, _ = self.lstm(x)  # (B, T, C), from a zero state
        return self.ln_f(self.drop(x))  # (B, T, C)

    # the GPT's head, loss and accounting: one code path for every family
    forward = GPT.forward
    loss = GPT.loss
    param_groups = GPT.param_groups
    num_params = GPT.num_params
    flops_per_token = GPT.flops_per_token
