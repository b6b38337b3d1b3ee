"""A universal (recurrent, parameter-reusing) Transformer: the GPT with each block applied ``reuse`` times.

Kaplan Fig 17 (App D.2) trains Transformers that reuse their parameters 2, 4 or 8 times and finds them
slightly better per parameter and slightly worse per FLOP than plain ones. Here each of the
``n_layer`` distinct blocks is applied ``cfg.reuse`` times in a row, so the model is as deep as a GPT
of ``n_layer * reuse`` blocks while holding the parameters of ``n_layer``. Everything else (embeddings,
positions, the blocks themselves, head, loss, the residual init scaled by the applied depth) is the
GPT's; the counts give N without and with reuse (``N``, ``N_with_reuse``) and FLOPs that charge
every application (:mod:`scalinglab.model.counting`).
"""

from __future__ import annotations

import torch

from scalinglab.model.gpt import GPT


class UniversalTransformer(GPT):
    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The final normalised residual stream (B, T, C) after every block ``reuse`` times in a row."""
        T = idx.shape[1]
        if self.cfg.n_ctx < T:
            raise ValueError(f"sequence of {T} tokens is longer than model.n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            for _ in range(self.cfg.reuse):  # the same weights again: depth without parameters
                x = block(x)  # (B, T, C)
        return self.ln_f(x)  # (B, T, C)
