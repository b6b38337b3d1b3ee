"""Fixed-length training windows in a seeded, resumable order, and fixed evaluation batches.

A split of T tokens holds (T - 1) // seq_len windows: window i is tokens[i*seq_len : i*seq_len +
seq_len + 1], so inputs x = w[:-1] and targets y = w[1:] and every token is a target exactly once.
Limiting the data to D tokens keeps (D - 1) // seq_len windows: by default the first ones of a
permutation of all the split's windows drawn from ``subset_seed`` alone, so a subset samples the
whole corpus in proportion (a prefix of a corpus in file order is a few files, and a model trained
on it does worse on the validation split than its size says), the D = 2^k*D0 subsets of Kaplan's
L(D) study are nested (paper-spec §3.3), and every run of a study, whatever its seed, sees the same
subset of each size; ``subset="prefix"`` keeps the first D tokens instead. Training visits the
subset's windows in a random permutation drawn from (seed, epoch): the order depends on nothing
else, so the number of workers or ranks that later slice a batch cannot change it, and a saved
position resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from scalinglab.data.cache import TokenSplit
from scalinglab.errors import DataError


def num_windows(split: TokenSplit, seq_len: int, max_tokens: int = 0) -> int:
    """Windows of ``seq_len + 1`` tokens in the first ``max_tokens`` tokens of ``split`` (0 = all).

    Raises DataError, naming the fix, when not even one window fits.
    """
    if seq_len < 1:
        raise DataError(f"seq_len must be at least 1 (got {seq_len}).")
    if max_tokens < 0:
        raise DataError(f"max_tokens must be >= 0 (0 = all), got {max_tokens}.")
    if max_tokens > split.num_tokens:
        raise DataError(
            f"max_tokens={max_tokens} exceeds the {split.num_tokens} tokens of split '{split.name}'; "
            "lower it (0 = all) or use a larger corpus."
        )
    usable = max_tokens or split.num_tokens
    n = (usable - 1) // seq_len
    if n < 1:
        raise DataError(
            f"split '{split.name}' has {usable} usable tokens, fewer than one context of {seq_len + 1}; "
            "use a larger corpus (or data.train_tokens / eval tokens >= n_ctx + 1) or a shorter model.n_ctx."
        )
    return n


def subset_windows(split: TokenSplit, seq_len: int, max_tokens: int, subset_seed: int = 0, shuffled: bool = True) -> np.ndarray:
    """Indices of the windows a ``max_tokens`` subset of ``split`` holds (0 = all, in order).

    Shuffled: the first (max_tokens - 1) // seq_len windows of a permutation of every window of the
    split drawn from ``subset_seed``; a smaller subset is a prefix of that list, so subsets nest.
    """
    n = num_windows(split, seq_len, max_tokens)
    if not max_tokens or not shuffled:
        return np.arange(n, dtype=np.int64)
    every = np.random.default_rng([subset_seed, seq_len]).permutation(num_windows(split, seq_len))
    return every[:n].astype(np.int64)


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    """Rows tokens[s : s + seq_len + 1] for each start s, as int64."""
    index = starts[:, None] + np.arange(seq_len + 1)  # (B, T+1)
    return np.asarray(tokens[index], dtype=np.int64)


class SequenceSampler:
    """Batches of training windows in a seeded permutation, re-drawn every epoch.

    ``max_tokens > 0`` restricts training to a nested subset of the split (:func:`subset_windows`:
    shuffled windows from ``subset_seed``, or the prefix); ``epoch`` counts passes over it,
    fractionally. ``state_dict`` is plain JSON for exact resumption.
    """

    def __init__(
        self, split: TokenSplit, seq_len: int, seed: int, max_tokens: int = 0, subset_seed: int = 0, shuffled: bool = True
    ) -> None:
        self.split = split
        self.seq_len = seq_len
        self.seed = seed
        self.max_tokens = max_tokens
        self.windows = subset_windows(split, seq_len, max_tokens, subset_seed, shuffled)
        self.num_windows = len(self.windows)
        self._epoch = 0  # whole passes completed
        self._position = 0  # windows taken in the current pass
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)

    @property
    def epoch(self) -> float:
        """Passes over the (limited) training tokens so far, e.g. 1.5 = one and a half."""
        return self._epoch + self._position / self.num_windows

    @property
    def windows_seen(self) -> int:
        return self._epoch * self.num_windows + self._position

    def next_batch(self, batch_size: int) -> np.ndarray:
        """The next ``batch_size`` windows: int64 (batch_size, seq_len + 1); x = [:, :-1], y = [:, 1:]."""
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1 (got {batch_size}).")
        picked = []
        needed = batch_size
        while needed:
            take = min(needed, self.num_windows - self._position)
            picked.append(self._order[self._position : self._position + take])
            self._position += take
            needed -= take
            if self._position == self.num_windows:  # a new pass, in a new order
                self._epoch += 1
                self._position = 0
                self._order = self._permutation(self._epoch)
        starts = self.windows[np.concatenate(picked)] * self.seq_len
        return _windows(self.split.tokens, starts, self.seq_len)

    def state_dict(self) -> dict:
        """Where the sampler is, as JSON-able data (with what it was built for, to catch mismatches)."""
        return {
            "seed": self.seed,
            "seq_len": self.seq_len,
            "max_tokens": self.max_tokens,
            "num_windows": self.num_windows,
            "epoch": self._epoch,
            "position": self._position,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where ``state`` was saved; refuses a state from a different setup."""
        mine = self.state_dict()
        for key in ("seed", "seq_len", "max_tokens", "num_windows"):
            if state.get(key) != mine[key]:
                raise DataError(
                    f"sampler state has {key}={state.get(key)} but this sampler has {mine[key]}; "
                    "resume with the data settings the run started with."
                )
        self._epoch = int(state["epoch"])
        self._position = int(state["position"])
        self._order = self._permutation(self._epoch)


def eval_batches(split: TokenSplit, seq_len: int, max_tokens: int, batch_size: int) -> Iterator[np.ndarray]:
    """The first windows of ``split`` within ``max_tokens`` tokens (0 = all), in order, in batches.

    The same windows every call, so losses at different steps and in different runs compare.
    A budget above the split's size uses the whole split.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1 (got {batch_size}).")
    n = num_windows(split, seq_len, min(max_tokens, split.num_tokens))
    for first in range(0, n, batch_size):
        starts = np.arange(first, min(first + batch_size, n), dtype=np.int64) * seq_len
        yield _windows(split.tokens, starts, seq_len)
