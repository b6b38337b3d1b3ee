"""Tokenizers: byte-level BPE (trained with Hugging Face ``tokenizers``) and raw bytes.

Both map text to ids losslessly and know the raw bytes each id stands for, so a loss in nats/token
converts to bits/byte. Every document in a token cache ends with the tokenizer's ``eot_id``.

BPE encoding here does not go through ``tokenizers``' own ``encode``, which builds offsets and
alignments for every token and runs near 1 MB/s on one core. Instead text is split into words
with the same rule as GPT-2's byte-level pre-tokenizer, and each distinct word is run through the
trained BPE model once and then looked up in a cache; that is several times faster and gives
exactly the ids ``tokenizers`` gives (checked by the tests on real corpora).
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from scalinglab.errors import DataError

EOT_TEXT = "<|endoftext|>"
"""What the end-of-document token decodes to (the separator used by the shared corpora too)."""

TOKENIZER_FILE = "tokenizer.json"
META_FILE = "tokenizer_meta.json"


class Tokenizer(ABC):
    """Text <-> ids, plus the raw bytes behind every id (for bits per byte)."""

    kind: str
    vocab_size: int
    eot_id: int

    @abstractmethod
    def encode_array(self, text: str) -> np.ndarray:
        """Ids of ``text`` (no end-of-document token) as a 1-D uint32 array."""

    @abstractmethod
    def token_bytes(self) -> list[bytes]:
        """The raw bytes each id stands for, indexed by id (the end-of-document id gives EOT_TEXT)."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything :func:`load_tokenizer` needs into ``directory``."""

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without an end-of-document token."""
        return self.encode_array(text).tolist()

    def bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes ``ids`` stand for (exact even when a multi-byte character spans two tokens)."""
        table = self._bytes_table
        return b"".join(table[i] for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 on their own become U+FFFD."""
        return self.bytes(ids).decode("utf-8", errors="replace")

    @cached_property
    def _bytes_table(self) -> list[bytes]:
        return self.token_bytes()


class ByteTokenizer(Tokenizer):
    """The 256 byte values as ids; byte 0 (NUL, absent from real text) marks the end of a document."""

    kind = "byte"
    vocab_size = 256
    eot_id = 0

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint32)

    def token_bytes(self) -> list[bytes]:
        return [EOT_TEXT.encode()] + [bytes([b]) for b in range(1, 256)]

    def save(self, directory: Path) -> None:
        (directory / META_FILE).write_text(json.dumps({"kind": self.kind, "vocab_size": 256}) + "\n")


# ---------------------------------------------------------------------------------------------
# GPT-2's byte-level pre-tokenization, reproduced with Python's `re`.
#
# tokenizers' ByteLevel pre-tokenizer splits text with the GPT-2 rule
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Python's `re` has no \p{..}; written with its own classes (\w, \d, \s) the same rule is fast and
# agrees on every character except a few (superscript digits, Roman numerals, some control
# characters); text containing one of those gets a variant of the rule that classes them right.
# ---------------------------------------------------------------------------------------------

_CONTRACTIONS = r"'(?:[stmd]|re|ve|ll)"
_FAST_RULE = re.compile(rf"{_CONTRACTIONS}| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
# Unicode White_Space, which is what \s means to tokenizers' regex engine.
_WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def _exact_class(c: str) -> str:
    """The class GPT-2's rule puts ``c`` in: 's'pace, 'L'etter, 'N'umber or 'o'ther."""
    if c in _WHITE_SPACE:
        return "s"
    category = unicodedata.category(c)[0]
    return category if category in "LN" else "o"


def _fast_class(c: str) -> str:
    """The class ``c`` gets from ``_FAST_RULE`` (Python's \\s, \\w and \\d)."""
    if c.isspace():
        return "s"
    if c.isdecimal():
        return "N"
    return "L" if c.isalnum() else "o"


@lru_cache(maxsize=256)
def _rule_with(exceptions: frozenset[str]) -> re.Pattern[str]:
    """``_FAST_RULE`` with the ``exceptions`` (characters Python classes differently) put in their GPT-2 class."""
    ex = "".join(re.escape(c) for c in sorted(exceptions))

    def widen(base: str, cls: str) -> str:
        extra = "".join(re.escape(c) for c in sorted(exceptions) if _exact_class(c) == cls)
        return f"(?:{base}|[{extra}])" if extra else base

    letter = widen(rf"[^\W\d_{ex}]", "L")
    number = widen(rf"[^\D{ex}]", "N")
    other = widen(rf"(?:[^\s\w{ex}]|_)", "o")
    space = widen(rf"[^\S{ex}]", "s")
    return re.compile(rf"{_CONTRACTIONS}| ?{letter}+| ?{number}+| ?{other}+|{space}+(?={space}|\Z)|{space}+")


def _byte_chars() -> list[str]:
    """GPT-2's reversible byte -> printable character map that byte-level BPE vocabularies use."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


_BYTE_CHARS = _byte_chars()
_LATIN1_TO_BYTE_CHARS = str.maketrans({chr(b): c for b, c in enumerate(_BYTE_CHARS)})
_BYTE_CHAR_TO_BYTE = {c: b for b, c in enumerate(_BYTE_CHARS)}


class _WordIndex(dict):
    """word -> its slot in the BPE cache; -1 for a word not cached yet (no exception on the fast path)."""

    def __missing__(self, word: str) -> int:
        return -1


class BPETokenizer(Tokenizer):
    """Byte-level BPE from a ``tokenizers`` model file, encoded through a per-word cache."""

    kind = "bpe"
    MAX_CACHED_WORDS = 1_000_000  # ~100 MB; the cache starts over beyond this

    def __init__(self, hf_tokenizer) -> None:
        self._hf = hf_tokenizer
        self._model = hf_tokenizer.model
        self.vocab_size = hf_tokenizer.get_vocab_size()
        eot = hf_tokenizer.token_to_id(EOT_TEXT)
        if eot is None:
            raise DataError(f"tokenizer has no {EOT_TEXT} token; delete the token cache and prepare again.")
        self.eot_id = eot
        # characters met so far, and those among them that Python's classes put elsewhere (scanned
        # for with compiled character classes, which is much cheaper than set(text) on every call)
        self._seen_chars: set[str] = set()
        self._unseen = re.compile(r"[\s\S]")
        self._odd_chars: set[str] = set()
        self._odd: re.Pattern[str] | None = None
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._word_index = _WordIndex()
        self._flat = np.zeros(0, dtype=np.uint32)  # ids of all cached words, back to back
        self._start = np.zeros(0, dtype=np.int64)
        self._length = np.zeros(0, dtype=np.int64)

    def _rule_for(self, text: str) -> re.Pattern[str]:
        """The fast rule, widened for any character of ``text`` that it would classify differently."""
        if self._unseen.search(text):  # characters never met before: classify them once
            new = set(text) - self._seen_chars
            self._seen_chars |= new
            self._unseen = re.compile(f"[^{''.join(map(re.escape, sorted(self._seen_chars)))}]")
            odd = {c for c in new if _fast_class(c) != _exact_class(c)}
            if odd:
                self._odd_chars |= odd
                self._odd = re.compile(f"[{''.join(map(re.escape, sorted(self._odd_chars)))}]")
        exceptions = frozenset(self._odd.findall(text)) if self._odd else frozenset()
        return _rule_with(exceptions) if exceptions else _FAST_RULE

    def _add_words(self, words: Sequence[str]) -> None:
        seqs = [self._bpe(w) for w in words]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        starts = len(self._flat) + np.cumsum(lengths) - lengths
        base = len(self._word_index)
        self._word_index.update((w, base + i) for i, w in enumerate(words))
        self._flat = np.concatenate([self._flat, *seqs])
        self._start = np.concatenate([self._start, starts])
        self._length = np.concatenate([self._length, lengths])

    def _bpe(self, word: str) -> np.ndarray:
        """BPE ids of one pre-tokenized word, via its byte-level spelling."""
        spelled = word.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_BYTE_CHARS)
        return np.array([t.id for t in self._model.tokenize(spelled)], dtype=np.uint32)

    def encode_array(self, text: str) -> np.ndarray:
        words = self._rule_for(text).findall(text)
        idx = np.fromiter(map(self._word_index.__getitem__, words), dtype=np.int64, count=len(words))
        missing = np.flatnonzero(idx < 0)
        if len(missing):  # words not cached yet: run BPE on each once
            new = sorted({words[i] for i in missing})
            if len(self._word_index) + len(new) > self.MAX_CACHED_WORDS:
                self._reset_cache()
                new, missing = sorted(set(words)), np.arange(len(words))
            self._add_words(new)
            idx[missing] = [self._word_index[words[i]] for i in missing]
        lengths = self._length[idx]
        ends = np.cumsum(lengths)
        # where each output id sits in _flat: its word's start plus its offset inside the word
        offsets = np.repeat(self._start[idx] - (ends - lengths), lengths)
        return self._flat[offsets + np.arange(int(ends[-1]) if len(ends) else 0)]

    def token_bytes(self) -> list[bytes]:
        table = [b""] * self.vocab_size
        for token, i in self._hf.get_vocab().items():
            if i == self.eot_id:
                table[i] = EOT_TEXT.encode()
            else:
                table[i] = bytes(_BYTE_CHAR_TO_BYTE[c] for c in token)
        return table

    def save(self, directory: Path) -> None:
        self._hf.save(str(directory / TOKENIZER_FILE))
        meta = {"kind": self.kind, "vocab_size": self.vocab_size, "eot_id": self.eot_id}
        (directory / META_FILE).write_text(json.dumps(meta) + "\n")


def train_bpe(texts: Iterable[str], vocab_size: int, progress: bool = False) -> BPETokenizer:
    """Train byte-level BPE with ``tokenizers`` on ``texts``; id 0 is the end-of-document token.

    Warns (and keeps the smaller vocabulary) when the text is too small to learn ``vocab_size`` tokens.
    """
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is a token: no unknowns
        show_progress=progress,
    )
    hf.train_from_iterator(texts, trainer)
    learned = hf.get_vocab_size()
    if learned < vocab_size:
        warnings.warn(
            f"the training text supports only {learned} BPE tokens, fewer than data.vocab_size={vocab_size}; "
            f"using {learned}. Set data.vocab_size={learned} or smaller, or use a larger corpus.",
            stacklevel=2,
        )
    return BPETokenizer(hf)


def load_tokenizer(directory: Path) -> Tokenizer:
    """The tokenizer saved in ``directory`` by :meth:`Tokenizer.save`."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise DataError(f"no tokenizer in '{directory}'; run `scalinglab data prepare` again.")
    kind = json.loads(meta_path.read_text())["kind"]
    if kind == "byte":
        return ByteTokenizer()
    from tokenizers import Tokenizer as HFTokenizer

    return BPETokenizer(HFTokenizer.from_file(str(directory / TOKENIZER_FILE)))
