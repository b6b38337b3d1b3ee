"""The token cache: each corpus split encoded once into a memory-mapped array on disk.

Layout under the cache directory ($SCALINGLAB_CACHE or ~/.cache/scalinglab)::

    <tokenizer key>/                 'byte', or 'bpe<V>-<corpus>-<hash>' for BPE trained on <corpus>
        tokenizer/                   tokenizer files + COMPLETE
        <corpus>-<fingerprint>-<split>/
            tokens.bin               uint16 (uint32 if the vocabulary needs it), documents end in EOT
            meta.json                tokens, bytes, documents, replaced bytes, bytes per token
            COMPLETE

Every entry is built as an atomic directory (:mod:`scalinglab.atomic`: a temporary sibling, synced,
marked COMPLETE with each file's size and checksum, renamed into place) under a file lock, so a
killed build never leaves an entry that looks complete (the next run deletes the leftovers and
starts that entry again) and concurrent runs build each entry once. Reading an entry checks it
against its marker (sizes always, checksums of files below ``CHECKSUM_BELOW``) and that every token
id is inside the vocabulary; a damaged entry is rebuilt with a warning.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scalinglab.atomic import COMPLETE, atomic_dir, remove_leftovers, verify_dir
from scalinglab.config import stable_hash
from scalinglab.data.config import DataConfig
from scalinglab.data.corpora import Corpus, ReplacementCounter, load_corpus, warn_replaced
from scalinglab.data.tokenizer import ByteTokenizer, Tokenizer, load_tokenizer, train_bpe
from scalinglab.errors import DataError

try:
    import fcntl
except ImportError:  # not POSIX: builds are still atomic, but concurrent ones are not serialised
    fcntl = None

TOKENS_FILE = "tokens.bin"
SPLIT_META = "meta.json"
FORMAT_VERSION = 1
"""Bump when the cache layout or the encoding changes: old entries are then simply not found."""
BPE_TRAIN_CHARS = 400_000_000
"""BPE learns from at most this much of the train split (time and memory stay bounded)."""
CHECKSUM_BELOW = 64 << 20
"""Files smaller than this are checked against their SHA-256 on every read (about 0.1 s at the limit)."""
CHUNK_CHARS = 1 << 20
"""Text per unit of parallel work."""
PIECE_CHARS = 1 << 16
"""Long documents are cut into pieces of about this size so that one book keeps all cores busy."""

# Places to cut a long document without changing its ids: GPT-2's pre-tokenizer never joins text
# across a lone line break between non-spaces, nor across the point just before the last character
# of a run of (ASCII) whitespace that is followed by a non-space.
_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)|(?<=[ \t\n\r])(?=[ \t\n\r]\S)")


def default_cache_dir() -> Path:
    """$SCALINGLAB_CACHE, else ~/.cache/scalinglab."""
    return Path(os.environ.get("SCALINGLAB_CACHE") or Path.home() / ".cache" / "scalinglab").expanduser()


@dataclass(frozen=True)
class TokenSplit:
    """One encoded split: a read-only memory map of token ids and the counts behind bits per byte."""

    name: str
    path: Path
    tokens: np.ndarray
    num_tokens: int
    num_bytes: int
    num_docs: int
    replaced: int

    @property
    def bytes_per_token(self) -> float:
        """UTF-8 bytes of text per token: bits/byte = (nats/token) / (ln 2 * bytes_per_token)."""
        return self.num_bytes / self.num_tokens

    @classmethod
    def load(cls, name: str, path: Path) -> TokenSplit:
        meta = json.loads((path / SPLIT_META).read_text())
        tokens = np.memmap(path / TOKENS_FILE, dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))
        return cls(name, path, tokens, meta["num_tokens"], meta["num_bytes"], meta["num_docs"], meta["replaced"])

    @staticmethod
    def damage(path: Path) -> str:
        """'' when the entry at ``path`` is intact, else what is wrong with it (read before :meth:`load`)."""
        problem = verify_dir(path, CHECKSUM_BELOW)
        if problem:
            return problem
        try:
            meta = json.loads((path / SPLIT_META).read_text())
            expected = meta["num_tokens"] * np.dtype(meta["dtype"]).itemsize
            size = (path / TOKENS_FILE).stat().st_size
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"{SPLIT_META} or {TOKENS_FILE} cannot be read ({type(e).__name__})"
        if size != expected:
            return f"{TOKENS_FILE} has {size} bytes, {meta['num_tokens']} tokens need {expected}"
        if meta["num_tokens"] and int(np.memmap(path / TOKENS_FILE, dtype=meta["dtype"], mode="r").max()) >= meta["vocab_size"]:
            return f"{TOKENS_FILE} holds token ids outside the vocabulary of {meta['vocab_size']}"
        return ""

    def summary(self) -> dict:
        return {
            "tokens": self.num_tokens,
            "bytes": self.num_bytes,
            "documents": self.num_docs,
            "bytes_per_token": self.bytes_per_token,
            "replaced": self.replaced,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class PreparedData:
    """A tokenizer and the encoded splits of one DataConfig: 'train', 'valid' and each eval set."""

    tokenizer: Tokenizer
    splits: dict[str, TokenSplit]
    tokenizer_dir: Path

    @property
    def vocab_size(self) -> int:
        """The tokenizer's real vocabulary (BPE may learn fewer tokens than asked on a tiny corpus)."""
        return self.tokenizer.vocab_size

    def summary(self) -> dict:
        return {
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.vocab_size,
            "tokenizer_dir": str(self.tokenizer_dir),
            "splits": {name: s.summary() for name, s in self.splits.items()},
        }


def prepare(data_cfg: DataConfig, cache_dir: str | Path | None = None, progress: bool = True, workers: int = 0) -> PreparedData:
    """Tokenizer and token splits for ``data_cfg``, built on first use and read from the cache after.

    ``workers`` processes encode in parallel (0 = one per available core); the tokens do not depend
    on it. Raises DataError for a missing or empty corpus, or a train_tokens beyond the train split.
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    workers = workers or _available_cores()
    corpus = load_corpus(data_cfg.corpus)
    fingerprint = corpus.fingerprint()
    tok_root = root / _tokenizer_key(data_cfg, corpus, fingerprint)

    def build_tokenizer(tmp: Path) -> None:
        if data_cfg.tokenizer == "byte":
            ByteTokenizer().save(tmp)
            return
        texts = _limit_chars(corpus.split("train"), BPE_TRAIN_CHARS)
        train_bpe(texts, data_cfg.vocab_size, progress=_show(progress)).save(tmp)

    tokenizer_dir = _build_once(tok_root / "tokenizer", build_tokenizer, verify_dir)
    tokenizer = load_tokenizer(tokenizer_dir)

    def split(name: str, source: Corpus, source_fp: str, which: str) -> TokenSplit:
        path = tok_root / f"{source.name}-{source_fp}-{which}"
        _build_once(
            path, lambda tmp: _encode_split(source, which, tokenizer, tokenizer_dir, tmp, workers, progress), TokenSplit.damage
        )
        return TokenSplit.load(name, path)

    splits = {"train": split("train", corpus, fingerprint, "train"), "valid": split("valid", corpus, fingerprint, "valid")}
    for eval_set in data_cfg.eval_sets:
        same = eval_set.corpus == data_cfg.corpus
        if same and eval_set.split in ("train", "all"):
            warnings.warn(
                f"eval set '{eval_set.name}' uses the {eval_set.split!r} split of the training corpus, which the "
                "model trains on; use split 'test' for a held-out measurement.",
                stacklevel=2,
            )
        source = corpus if same else load_corpus(eval_set.corpus)
        splits[eval_set.name] = split(eval_set.name, source, fingerprint if same else source.fingerprint(), eval_set.split)
    available = splits["train"].num_tokens
    if data_cfg.train_tokens > available:
        raise DataError(
            f"data.train_tokens={data_cfg.train_tokens} exceeds the {available} tokens in the train split of "
            f"'{data_cfg.corpus}'; lower it (0 = all) or use a larger corpus."
        )
    return PreparedData(tokenizer, splits, tokenizer_dir)


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _show(progress: bool) -> bool:
    return progress and sys.stderr.isatty()


def _tokenizer_key(cfg: DataConfig, corpus: Corpus, fingerprint: str) -> str:
    if cfg.tokenizer == "byte":
        return f"byte-v{FORMAT_VERSION}"
    digest = stable_hash({"corpus": fingerprint, "vocab": cfg.vocab_size, "chars": BPE_TRAIN_CHARS, "v": FORMAT_VERSION}, 10)
    return f"bpe{cfg.vocab_size}-{corpus.name}-{digest}"


def _limit_chars(texts: Iterator[str], limit: int) -> Iterator[str]:
    total = 0
    for text in texts:
        if total >= limit:
            return
        total += len(text)
        yield text


# ------------------------------------------------------------------------------------- encoding


def _chunks(texts: Iterator[str]) -> Iterator[list[tuple[str, bool]]]:
    """Units of parallel work: lists of (piece of text, whether it ends its document)."""
    chunk: list[tuple[str, bool]] = []
    size = 0
    for text in texts:
        start = 0
        while len(text) - start > 2 * PIECE_CHARS:
            cut = _SAFE_CUT.search(text, start + PIECE_CHARS)
            if cut is None:
                break
            chunk.append((text[start : cut.start()], False))
            size += cut.start() - start
            start = cut.start()
        chunk.append((text[start:], True))
        size += len(text) - start
        if size >= CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


_WORKER_TOKENIZER: Tokenizer | None = None


def _init_worker(tokenizer_dir: Path) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = load_tokenizer(tokenizer_dir)


def _encode_chunk(chunk: list[tuple[str, bool]], tokenizer: Tokenizer | None = None) -> tuple[np.ndarray, int, int]:
    """(ids with EOT after each finished document, UTF-8 bytes, finished documents) of one chunk."""
    tok = tokenizer or _WORKER_TOKENIZER
    parts, num_bytes, docs = [], 0, 0
    eot = np.array([tok.eot_id], dtype=np.uint32)
    for text, ends_doc in chunk:
        parts.append(tok.encode_array(text))
        num_bytes += len(text.encode("utf-8"))
        if ends_doc:
            parts.append(eot)
            docs += 1
    return np.concatenate(parts), num_bytes, docs


def _encoded(chunks: Iterator[list[tuple[str, bool]]], tokenizer: Tokenizer, tokenizer_dir: Path, workers: int):
    """Encoded chunks in input order: in this process, or in a pool once there is more than one chunk."""
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if multiprocessing.current_process().daemon:  # daemonic processes may not start children
        workers = 1
    if second is None or workers <= 1:
        yield _encode_chunk(first, tokenizer)
        if second is not None:
            yield _encode_chunk(second, tokenizer)
            for chunk in chunks:
                yield _encode_chunk(chunk, tokenizer)
        return
    # fork keeps user scripts without a __main__ guard working; workers only run numpy and BPE
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(tokenizer_dir,)) as pool:
        pending: deque = deque()
        for chunk in itertools.chain([first, second], chunks):
            pending.append(pool.submit(_encode_chunk, chunk))
            if len(pending) >= 2 * workers:  # bounded read-ahead: memory stays flat on any corpus
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _encode_split(
    corpus: Corpus, split: str, tokenizer: Tokenizer, tokenizer_dir: Path, out: Path, workers: int, progress: bool
) -> dict:
    """Encode one split of ``corpus`` into ``out``/tokens.bin; write and return its meta.json."""
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
    replaced_before = ReplacementCounter.count
    started = time.time()
    num_tokens = num_bytes = num_docs = 0
    bar = tqdm(
        desc=f"encode {corpus.name}/{split}", unit="B", unit_scale=True, disable=None if progress else True, file=sys.stderr
    )
    with open(out / TOKENS_FILE, "wb") as f, bar:
        for ids, nbytes, ndocs in _encoded(_chunks(corpus.split(split)), tokenizer, tokenizer_dir, workers):
            f.write(ids.astype(dtype).tobytes())
            num_tokens += len(ids)
            num_bytes += nbytes
            num_docs += ndocs
            bar.update(nbytes)
    if num_docs == 0:
        raise DataError(
            f"the '{split}' split of corpus '{corpus.spec}' is empty; give the corpus more text or documents."
        )
    replaced = ReplacementCounter.count - replaced_before
    warn_replaced(replaced, f"corpus '{corpus.spec}' ({split})")
    meta = {
        "corpus": corpus.spec,
        "split": split,
        "tokenizer": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "dtype": np.dtype(dtype).name,
        "num_tokens": num_tokens,
        "num_bytes": num_bytes,
        "num_docs": num_docs,
        "replaced": replaced,
        "bytes_per_token": num_bytes / num_tokens,
        "seconds": time.time() - started,
        "format_version": FORMAT_VERSION,
    }
    (out / SPLIT_META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# ------------------------------------------------------------------------------- atomic entries


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (released by the OS if this process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another process preparing {path.with_suffix('')} ...", file=sys.stderr)
                fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _build_once(final: Path, build: Callable[[Path], None], damage: Callable[[Path], str]) -> Path:
    """``final``, built by ``build(tmp_dir)`` unless an intact copy exists; atomic and locked.

    ``damage(final)`` says what is wrong with an existing entry ('' when intact); a damaged entry is
    rebuilt with a warning that names it.
    """
    if (final / COMPLETE).is_file() and not damage(final):
        return final
    with _locked(final.parent / f"{final.name}.lock"):
        if (final / COMPLETE).is_file():  # another process may have built it while we waited
            problem = damage(final)
            if not problem:
                return final
            warnings.warn(f"the token cache entry {final} is damaged ({problem}); rebuilding it.", stacklevel=3)
        remove_leftovers(final.parent, final.name)  # left by a killed build
        for stale in final.parent.glob(f"{final.name}.tmp-*"):  # the same, from before scalinglab.atomic
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)  # never trust an entry without its marker
        with atomic_dir(final) as tmp:
            build(tmp)
    return final


def cache_info(cache_dir: str | Path | None = None) -> dict:
    """What the cache holds: each tokenizer with its encoded splits (incomplete entries flagged)."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    entries = []
    for tok_root in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        tok_dir = tok_root / "tokenizer"
        if not (tok_dir / COMPLETE).is_file():
            continue
        tokenizer = load_tokenizer(tok_dir)
        splits = {}
        for path in sorted(p for p in tok_root.iterdir() if p.is_dir() and p.name != "tokenizer"):
            if ".tmp-" in path.name or path.name.startswith(".") or not (path / COMPLETE).is_file():
                splits[path.name] = {"complete": False}
                continue
            meta = json.loads((path / SPLIT_META).read_text())
            size = (path / TOKENS_FILE).stat().st_size
            splits[path.name] = {
                "complete": True,
                "corpus": meta["corpus"],
                "split": meta["split"],
                "tokens": meta["num_tokens"],
                "bytes": meta["num_bytes"],
                "bytes_per_token": meta["bytes_per_token"],
                "disk_bytes": size,
            }
        entries.append({"key": tok_root.name, "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size, "splits": splits})
    return {"cache_dir": str(root), "tokenizers": entries}
