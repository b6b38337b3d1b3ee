"""ModelConfig: the family and shape of one language model (no torch import, cheap to use).

Three families (Kaplan §3.2.1 and App D.2): the GPT-2 style decoder-only Transformer, an LSTM, and
a universal (recurrent, parameter-reusing) Transformer whose blocks are each applied ``reuse`` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from scalinglab.config import check

Arch = Literal["gpt", "lstm", "universal"]
ARCHS: tuple[str, ...] = ("gpt", "lstm", "universal")


@dataclass(frozen=True)
class ModelConfig:
    """Family, shape and regularisation of one model; every field is part of the run identity."""

    IDENTITY_DEFAULTS: ClassVar[dict[str, Any]] = {"arch": "gpt", "reuse": 1}
    """Fields added after runs existed: left out of a run's identity at these values, so a GPT run
    keeps the directory it had before the other families (RunConfig.identity)."""

    arch: Arch = "gpt"
    """Model family: 'gpt' (Transformer), 'lstm' (Kaplan Fig 7) or 'universal' (reused blocks, Kaplan Fig 17)."""
    reuse: int = 1
    """Universal Transformer only: each block's weights are applied this many times in a row (Fig 17: 2, 4, 8)."""
    n_layer: int = 4
    """Number of Transformer blocks or LSTM layers (Kaplan's n_layer). Kaplan excludes 1-layer Transformers from fits."""
    d_model: int = 128
    """Width of the residual stream (the LSTM's hidden and input width). Must be divisible by n_head."""
    n_head: int = 4
    """Attention heads; head dimension = d_model / n_head (Kaplan Fig 5 uses 64)."""
    d_ff: int = 0
    """Inner MLP width; 0 means the standard 4 * d_model (Kaplan Table 1)."""
    n_ctx: int = 128
    """Context length in tokens; also the number of learned positions (the LSTM has none)."""
    vocab_size: int = 4096
    """Rows of the token embedding; must cover the tokenizer's vocabulary (data.vocab_size)."""
    dropout: float = 0.0
    """Dropout on attention output, MLP output and embeddings (the LSTM: embeddings and each layer's
    output). Kaplan used 0.1 for L(N,D)."""
    tie_embeddings: bool = True
    """Share the output head with the token embedding (GPT-2; Kaplan Table 1 lists no head params)."""
    bias: bool = True
    """Biases in linear layers and LayerNorms (GPT-2 style)."""
    init_std: float = 0.02
    """Std of the normal init (the LSTM's gate weights too); residual projections are scaled by
    1/sqrt(2 n_layer reuse) (GPT-2, counting each application of a reused block)."""

    def __post_init__(self) -> None:
        check(self.arch in ARCHS, f"model.arch={self.arch!r} is not a model family; choose one of {', '.join(ARCHS)}.")
        check(self.reuse >= 1, f"model.reuse must be at least 1 (got {self.reuse}); 1 applies each block once.")
        check(
            self.reuse == 1 or self.arch == "universal",
            f"model.reuse={self.reuse} applies only to model.arch='universal' (got arch={self.arch!r}); "
            "set model.arch=universal or model.reuse=1.",
        )
        check(self.n_layer >= 1, f"model.n_layer must be at least 1 (got {self.n_layer}).")
        check(self.d_model >= 1, f"model.d_model must be positive (got {self.d_model}).")
        check(self.n_head >= 1, f"model.n_head must be positive (got {self.n_head}).")
        check(
            self.d_model % self.n_head == 0,
            f"model.d_model={self.d_model} is not divisible by model.n_head={self.n_head}; "
            f"pick n_head among {_divisors(self.d_model)} or change d_model.",
        )
        check(self.d_ff >= 0, f"model.d_ff must be >= 0 (0 means 4*d_model), got {self.d_ff}.")
        check(self.n_ctx >= 1, f"model.n_ctx must be positive (got {self.n_ctx}).")
        check(self.vocab_size >= 2, f"model.vocab_size must be at least 2 (got {self.vocab_size}).")
        check(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1) (got {self.dropout}).")
        check(self.init_std > 0, f"model.init_std must be positive (got {self.init_std}).")

    @property
    def ff_width(self) -> int:
        """The MLP width actually used (d_ff, or 4 * d_model when d_ff is 0)."""
        return self.d_ff or 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


def _divisors(n: int) -> str:
    ds = [d for d in range(1, n + 1) if n % d == 0 and d <= 64]
    return ", ".join(str(d) for d in ds[-8:])
