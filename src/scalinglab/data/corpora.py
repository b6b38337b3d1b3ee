"""Corpus sources: a spec string -> a fingerprint and a deterministic stream of text documents.

Specs:

- ``stdlib``: the ``.py`` files of the running interpreter's standard library (tests, bundled
  packages and generated tables left out), one document per file. Real text on every machine.
- ``stdlib-docstrings``: the docstrings of those files (English prose about code), one document per
  file under the same key, so its validation split comes from the files ``stdlib`` never trains on: a
  second distribution for transfer (Kaplan Fig 8) on every machine.
- a path: a ``.txt``/``.txt.xz``/``.txt.gz``/``.gz``/``.xz`` file, a ``.jsonl`` file (optionally
  compressed) whose records have a ``text`` field, a directory (every such file under it) or a glob.
  Text files hold documents separated by lines reading ``<|endoftext|>``; one without is one document.
- ``hf:NAME[:CONFIG][:SPLIT]``: a Hugging Face dataset with a ``text`` column (streamed; NAME may
  also be a local directory written by ``save_to_disk`` or holding data files).

Documents are assigned to train/valid/test by a hash of a stable key (the file path for ``stdlib``,
the text otherwise), so the splits never depend on reading order and grow gracefully.
"""

from __future__ import annotations

import ast
import codecs
import collections
import functools
import glob
import gzip
import hashlib
import io
import itertools
import json
import lzma
import os
import re
import sys
import sysconfig
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scalinglab.errors import DataError

Split = Literal["train", "valid", "test", "all"]
SPLITS: tuple[str, ...] = ("train", "valid", "test", "all")
SPLIT_FRACTIONS = {"train": 0.90, "valid": 0.05, "test": 0.05}
"""Share of documents in each split (by hash, so the realised shares vary a little)."""
MIN_DOCUMENTS = 100
"""A corpus with fewer documents is cut into pieces at line breaks before splitting, so that a
single long text still gets a validation split."""
PIECES = 200
"""How many pieces such a small corpus is cut into."""
EOT_LINE = "<|endoftext|>"

# Folders of the standard library that are not ordinary human-written modules.
STDLIB_EXCLUDED = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "encodings", "pydoc_data", "ensurepip"}
)
TEXT_SUFFIXES = (".txt", ".txt.xz", ".txt.gz", ".xz", ".gz", ".jsonl", ".jsonl.xz", ".jsonl.gz", ".md", ".rst")


@dataclass(frozen=True)
class Document:
    """One document: ``key`` decides its split (same key, same split, on every machine)."""

    key: str
    text: str


class ReplacementCounter:
    """Counts text that is not UTF-8 (bad bytes in files, lone surrogates in JSON), replaced by U+FFFD."""

    count = 0

    @classmethod
    def handler(cls, error: UnicodeDecodeError) -> tuple[str, int]:
        cls.count += 1
        return "\ufffd", error.end

    @classmethod
    def clean(cls, text: str) -> str:
        """``text`` with lone surrogates (which JSON can hold but UTF-8 cannot) replaced and counted."""
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            text, n = _SURROGATE.subn("\ufffd", text)
            cls.count += n
            return text


_SURROGATE = re.compile("[\ud800-\udfff]")
codecs.register_error("scalinglab.replace", ReplacementCounter.handler)


class Corpus(ABC):
    """A named source of documents with a fingerprint that changes whenever its text may change."""

    spec: str
    name: str

    @abstractmethod
    def fingerprint(self) -> str:
        """Short hex digest identifying this corpus's content (part of every cache key)."""

    @abstractmethod
    def documents(self) -> Iterator[Document]:
        """Every document, in a fixed order, as valid Unicode text."""

    def split(self, split: Split) -> Iterator[str]:
        """Texts of the documents in ``split`` ('all' = every document), in corpus order."""
        docs = self.documents()
        head = []
        for doc in docs:
            head.append(doc)
            if len(head) >= MIN_DOCUMENTS:
                break
        if len(head) < MIN_DOCUMENTS and split != "all":
            yield from _split_pieces(head, split)
            return
        for doc in itertools.chain(head, docs):
            if split == "all" or split_of(doc.key) == split:
                yield doc.text


def split_of(key: str) -> str:
    """The split a document key belongs to: a uniform hash compared with SPLIT_FRACTIONS."""
    u = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") / 2**64
    if u < SPLIT_FRACTIONS["train"]:
        return "train"
    return "valid" if u < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["valid"] else "test"


def _split_pieces(docs: list[Document], split: str) -> Iterator[str]:
    """Cut a few long documents into about PIECES pieces at line breaks; yield the runs of
    consecutive pieces that fall in ``split`` (each run is one document of that split)."""
    size = max(1, sum(len(d.text) for d in docs) // PIECES)
    for doc in docs:
        run, start, i = [], 0, 0
        while start < len(doc.text):
            end = doc.text.find("\n", start + size)
            end = len(doc.text) if end < 0 else end + 1
            if split_of(f"{doc.key}#{i}") == split:
                run.append(doc.text[start:end])
            elif run:
                yield "".join(run)
                run = []
            start, i = end, i + 1
        if run:
            yield "".join(run)


def _slug(text: str) -> str:
    """A short name safe in a directory name (the fingerprint, not the name, identifies a corpus)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")[:40] or "corpus"


def _content_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _hash_files(paths: list[Path], root: Path | None, extra: str = "") -> str:
    """Digest of names (relative to ``root``) and contents, so moving a corpus keeps its cache."""
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(str(p.relative_to(root) if root else p.name).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------ stdlib


class StdlibCorpus(Corpus):
    """The running interpreter's standard library sources, one document per ``.py`` file."""

    spec = name = "stdlib"

    def __init__(self) -> None:
        self.root = Path(sysconfig.get_paths()["stdlib"])
        self.files = list(_stdlib_files(self.root))
        if not self.files:
            raise DataError(f"found no .py files under the standard library at '{self.root}'; use a corpus path instead.")

    def fingerprint(self) -> str:
        # The Python version names the text; file names and sizes catch a patched installation.
        h = hashlib.sha256(sys.version.encode())
        for p in self.files:
            h.update(f"{p.relative_to(self.root)}:{p.stat().st_size}\n".encode())
        return h.hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        for p in self.files:
            text = p.read_bytes().decode("utf-8", errors="scalinglab.replace")
            if text.strip():
                yield Document(p.relative_to(self.root).as_posix(), text)


@functools.lru_cache(maxsize=2)
def _stdlib_files(root: Path) -> tuple[Path, ...]:
    """The library's ``.py`` files, sorted, skipping excluded folders without entering them (once per process:
    a study's worker prepares data for every run)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in STDLIB_EXCLUDED]
        found += [Path(folder) / f for f in files if f.endswith(".py")]
    return tuple(sorted(p for p in found if p.is_file()))


class StdlibDocstringsCorpus(StdlibCorpus):
    """The docstrings of the standard library's modules, classes and functions, one document per file."""

    spec = name = "stdlib-docstrings"

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.spec}:{super().fingerprint()}".encode()).hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        for doc in super().documents():
            try:
                tree = ast.parse(doc.text)
            except (SyntaxError, ValueError):  # a file this interpreter cannot parse has no docstrings to give
                continue
            texts = [t for t in (ast.get_docstring(n) for n in _definitions(tree)) if t]
            if texts:
                yield Document(doc.key, "\n\n".join(texts) + "\n")


_DEFINITION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_HOLDS_STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)
"""The nodes a definition can sit under: statements and the except and case clauses that hold them
(an expression holds none)."""


def _definitions(tree: ast.Module) -> list[ast.AST]:
    """The module and its function and class definitions in ``ast.walk``'s breadth-first order, without
    visiting expressions: the same list (checked on every standard-library file), in 0.6 s instead of the
    1.7 s a walk over every node took on the standard library (the demo's first data preparation)."""
    found: list[ast.AST] = [tree]
    queue = collections.deque([tree])
    while queue:
        node = queue.popleft()
        children = [c for c in ast.iter_child_nodes(node) if isinstance(c, _HOLDS_STATEMENTS)]
        found += [c for c in children if isinstance(c, _DEFINITION)]
        queue.extend(children)
    return found


# ------------------------------------------------------------------------------------------- files


def _open_text(path: Path) -> io.TextIOBase:
    """A text stream over a plain, .xz or .gz file; bytes that are not UTF-8 are replaced and counted."""
    opener = lzma.open if path.name.endswith(".xz") else gzip.open if path.name.endswith(".gz") else open
    raw = opener(path, "rb")  # noqa: SIM115 (closed with the wrapper)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="scalinglab.replace", newline="")


def _is_jsonl(path: Path) -> bool:
    return ".jsonl" in path.suffixes


def _text_documents(path: Path) -> Iterator[str]:
    """Documents of a text file: the text between lines reading ``<|endoftext|>``."""
    lines: list[str] = []
    with _open_text(path) as f:
        for line in f:
            if line.rstrip("\r\n") == EOT_LINE:
                text = "".join(lines)
                lines = []
                # the line break before the separator belongs to the separator ("\n<|endoftext|>\n")
                text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
                if text.strip():
                    yield text
            else:
                lines.append(line)
    text = "".join(lines)
    if text.strip():
        yield text


def _jsonl_documents(path: Path) -> Iterator[str]:
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: not valid JSON ({e.msg}); fix or remove that line.") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                keys = list(record) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"{path}:{number}: each JSONL record needs a string 'text' field (found {keys}).")
            if record["text"].strip():
                yield ReplacementCounter.clean(record["text"])


class FileCorpus(Corpus):
    """Text from a file, a directory of files, or a glob."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        path = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            self.root = None
            self.files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            what = f"no files match the glob '{spec}'"
        elif path.is_dir():
            self.root = path
            self.files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES))
            what = f"directory '{spec}' holds no text files ({', '.join(TEXT_SUFFIXES)})"
        elif path.is_file():
            self.root = None
            self.files = [path]
            what = ""
        else:
            raise DataError(f"corpus '{spec}' is not a file, directory or glob; check the path (or use 'stdlib').")
        if not self.files:
            raise DataError(f"{what}; point data.corpus at text files.")
        self.name = _slug(Path(spec.rstrip("/")).name.split(".")[0])

    def fingerprint(self) -> str:
        return _hash_files(self.files, self.root)

    def documents(self) -> Iterator[Document]:
        for path in self.files:
            read = _jsonl_documents if _is_jsonl(path) else _text_documents
            for text in read(path):
                yield Document(_content_key(text), text)


# ------------------------------------------------------------------------------------ Hugging Face


class HFCorpus(Corpus):
    """A Hugging Face dataset's ``text`` column, streamed (``hf:NAME[:CONFIG][:SPLIT]``)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        parts = spec.removeprefix("hf:").split(":")
        if not parts[0] or len(parts) > 3:
            raise DataError(f"corpus '{spec}' must look like hf:NAME[:CONFIG][:SPLIT], e.g. hf:wikitext:wikitext-2-raw-v1:train.")
        self.dataset = parts[0]
        self.config = parts[1] if len(parts) > 1 and parts[1] else None
        self.source_split = parts[2] if len(parts) > 2 and parts[2] else "train"
        self.name = _slug(Path(self.dataset.rstrip("/")).name)
        self.local = Path(self.dataset).expanduser()

    def _load(self):
        try:
            import datasets
        except ImportError:
            raise DataError("hf: corpora need the 'datasets' package; pip install 'scalinglab[hf]'.") from None
        if self.local.is_dir() and any((self.local / f).exists() for f in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(self.local))
            if isinstance(loaded, datasets.DatasetDict):
                if self.source_split not in loaded:
                    raise DataError(f"{self.spec}: no split '{self.source_split}'; it has {list(loaded)}.")
                loaded = loaded[self.source_split]
            return loaded
        try:
            return datasets.load_dataset(self.dataset, self.config, split=self.source_split, streaming=True)
        except Exception as e:  # the hub, a missing dataset or a bad config: one readable line
            raise DataError(f"cannot load {self.spec}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            " (check the name, config and split, or use a local path).") from None

    def fingerprint(self) -> str:
        if self.local.is_dir():
            files = sorted(p for p in self.local.rglob("*") if p.is_file())
            return _hash_files(files, self.local, extra=f"{self.config}:{self.source_split}")
        info = getattr(self._load(), "info", None)
        described = json.dumps(
            [self.spec, str(getattr(info, "version", "")), str(getattr(info, "splits", ""))], sort_keys=True
        )
        return hashlib.sha256(described.encode()).hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        dataset = self._load()
        columns = getattr(dataset, "column_names", None)
        if columns is not None and "text" not in columns:
            raise DataError(f"{self.spec} has no 'text' column (columns: {columns}); choose a text dataset.")
        for record in dataset:
            text = record.get("text")
            if isinstance(text, str) and text.strip():
                text = ReplacementCounter.clean(text)
                yield Document(_content_key(text), text)


def load_corpus(spec: str) -> Corpus:
    """The corpus a spec string names (see the module docstring for the forms)."""
    if spec == "stdlib":
        return StdlibCorpus()
    if spec == "stdlib-docstrings":
        return StdlibDocstringsCorpus()
    if spec.startswith("hf:"):
        return HFCorpus(spec)
    return FileCorpus(spec)


def warn_replaced(count: int, what: str) -> None:
    """Warn that ``count`` undecodable byte sequences in ``what`` became U+FFFD."""
    if count:
        warnings.warn(
            f"{count} invalid UTF-8 sequence(s) in {what} were replaced with U+FFFD; "
            "re-encode the source as UTF-8 to keep them.",
            stacklevel=2,
        )
