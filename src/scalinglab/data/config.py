"""DataConfig: which text, which tokenizer, how much of it, and which held-out sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from scalinglab.config import check


@dataclass(frozen=True)
class EvalSetConfig:
    """An extra held-out set evaluated under the training tokenizer (for transfer, Kaplan Fig 8)."""

    name: str
    """Column name in metrics (e.g. 'code'); 'valid' is reserved for the training corpus's own split."""
    corpus: str
    """Corpus spec string (same forms as data.corpus)."""
    split: Literal["train", "valid", "test", "all"] = "all"
    """Which split of that corpus to evaluate on; 'all' uses the whole corpus (it is not trained on)."""

    def __post_init__(self) -> None:
        check(bool(self.name) and self.name.isidentifier(), f"eval set name {self.name!r} must be a simple identifier like 'code'.")
        check(self.name != "valid", "eval set name 'valid' is reserved for the training corpus's own validation split.")
        check(bool(self.corpus), f"eval set '{self.name}' needs a corpus spec.")


@dataclass(frozen=True)
class DataConfig:
    """Text and tokens for one run; every field is part of the run identity."""

    corpus: str = "stdlib"
    """Corpus spec: 'stdlib' or 'stdlib-docstrings' (built in), a path (.txt, .txt.xz, .gz, .jsonl, a directory, a glob), or 'hf:NAME[:CONFIG][:SPLIT]'."""
    tokenizer: Literal["bpe", "byte"] = "bpe"
    """'bpe': byte-level BPE trained on the corpus's train split; 'byte': raw bytes (vocab 256)."""
    vocab_size: int = 4096
    """BPE vocabulary size (ignored for 'byte', which is 256). Keep it small on CPU: the head dominates tiny models."""
    SUBSET_FIELDS: ClassVar[tuple[str, ...]] = ("subset", "subset_seed")
    """How a subset is drawn: left out of the run identity when train_tokens = 0 (no subset, nothing
    they change), so a run on all the data keeps the identity it had before they existed."""

    train_tokens: int = 0
    """Dataset size D: train on a nested subset of this many training tokens (0 = all); data repeats in epochs beyond it."""
    subset: Literal["shuffled", "prefix"] = "shuffled"
    """How train_tokens picks its tokens: 'shuffled' windows from subset_seed (every part of the corpus in
    proportion, so a subset differs from the whole only in size, as Kaplan §3.3 needs), 'prefix' the first tokens in corpus order."""
    subset_seed: int = 0
    """Seeds the shuffled subset, independently of the run's seed: every run sees the same subset of each size."""
    eval_sets: tuple[EvalSetConfig, ...] = ()
    """Extra held-out sets; the corpus's own validation split is always evaluated as 'valid'."""

    def __post_init__(self) -> None:
        check(bool(self.corpus), "data.corpus is empty; use 'stdlib' or a path to text.")
        check(self.vocab_size >= 257 or self.tokenizer == "byte", f"data.vocab_size must be at least 257 for BPE (got {self.vocab_size}).")
        check(self.train_tokens >= 0, f"data.train_tokens must be >= 0 (0 = all), got {self.train_tokens}.")
        names = [e.name for e in self.eval_sets]
        check(len(names) == len(set(names)), f"data.eval_sets has duplicate names: {names}.")

    @property
    def effective_vocab_size(self) -> int:
        return 256 if self.tokenizer == "byte" else self.vocab_size
