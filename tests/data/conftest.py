"""Small real corpora for the data tests: standard-library sources written as text files."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _stdlib_texts(count: int, max_chars: int = 6000) -> list[str]:
    """The first ``count`` standard-library modules (truncated), as real human-written documents."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")[:max_chars].strip()
        if text:
            texts.append(text)
        if len(texts) == count:
            break
    return texts


def write_corpus(path: Path, docs: list[str]) -> Path:
    """Documents separated by '<|endoftext|>' lines, like the shared corpora."""
    path.write_text("\n<|endoftext|>\n".join(docs) + "\n<|endoftext|>\n", encoding="utf-8")
    return path


@pytest.fixture
def small_docs() -> list[str]:
    return _stdlib_texts(150)


@pytest.fixture
def small_corpus(tmp_path: Path, small_docs: list[str]) -> Path:
    return write_corpus(tmp_path / "small.txt", small_docs)


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data directory is only on development machines)")
    return path


@pytest.fixture
def shared_file():
    """``shared_file(name)``: a file of ../shared/data, or skip the test when it is absent."""
    return shared


@pytest.fixture
def make_corpus():
    """``make_corpus(path, docs)``: write documents as an '<|endoftext|>'-separated text file."""
    return write_corpus


@pytest.fixture(scope="session")
def stdlib_texts():
    """``stdlib_texts(count, max_chars=6000)``: the first standard-library modules as documents."""
    return _stdlib_texts
