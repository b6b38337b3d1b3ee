"""ModelConfig: the shape of a GPT-2 style decoder-only Transformer (no torch import, cheap to use)."""

from __future__ import annotations

from dataclasses import dataclass

from scalinglab.config import check


@dataclass(frozen=True)
class ModelConfig:
    """Shape and regularisation of one model; every field is part of the run identity."""

    n_layer: int = 4
    """Number of Transformer blocks (Kaplan's n_layer). Kaplan excludes 1-layer models from fits."""
    d_model: int = 128
    """Width of the residual stream. Must be divisible by n_head."""
    n_head: int = 4
    """Attention heads; head dimension = d_model / n_head (Kaplan Fig 5 uses 64)."""
    d_ff: int = 0
    """Inner MLP width; 0 means the standard 4 * d_model (Kaplan Table 1)."""
    n_ctx: int = 128
    """Context length in tokens; also the number of learned positions."""
    vocab_size: int = 4096
    """Rows of the token embedding; must cover the tokenizer's vocabulary (data.vocab_size)."""
    dropout: float = 0.0
    """Dropout on attention output, MLP output and embeddings (Kaplan used 0.1 for L(N,D))."""
    tie_embeddings: bool = True
    """Share the output head with the token embedding (GPT-2; Kaplan Table 1 lists no head params)."""
    bias: bool = True
    """Biases in linear layers and LayerNorms (GPT-2 style)."""
    init_std: float = 0.02
    """Std of the normal init; residual projections are scaled by 1/sqrt(2 n_layer) (GPT-2)."""

    def __post_init__(self) -> None:
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
