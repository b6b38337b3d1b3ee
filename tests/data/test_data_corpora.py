"""Corpus specs: documents, deterministic splits, fingerprints and the errors that name the fix."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest

from scalinglab.data import load_corpus
from scalinglab.data.corpora import MIN_DOCUMENTS, StdlibCorpus, split_of
from scalinglab.errors import DataError


def test_stdlib_splits_by_file_deterministically_and_disjointly():
    corpus = load_corpus("stdlib")
    assert isinstance(corpus, StdlibCorpus)
    keys = [d.key for d in corpus.documents()]
    assert len(keys) > MIN_DOCUMENTS and not any(k.split("/")[0] in ("test", "site-packages") for k in keys)
    assert not any("idle_test" in k or "/tests/" in k for k in keys)
    splits = {s: list(corpus.split(s)) for s in ("train", "valid", "test")}
    assert all(splits.values())
    assert sum(len(v) for v in splits.values()) == len(keys)
    assert len(splits["train"]) > 10 * len(splits["valid"])
    assert not set(splits["train"]) & set(splits["valid"])  # whole files, never shared
    assert list(load_corpus("stdlib").split("valid")) == splits["valid"]
    assert load_corpus("stdlib").fingerprint() == corpus.fingerprint()


def test_stdlib_docstrings_hold_out_the_files_stdlib_never_trains_on():
    code = {d.key: d.text for d in load_corpus("stdlib").documents()}
    docstrings = load_corpus("stdlib-docstrings")
    docs = list(docstrings.documents())
    assert len(docs) > MIN_DOCUMENTS and {d.key for d in docs} <= set(code)
    for d in docs[:50]:
        first = d.text.split("\n\n")[0].strip()
        assert first.splitlines()[0] in code[d.key] or "\\" in code[d.key]  # from that very file (unless escaped)
        assert "def " not in d.text.split("\n")[0]
    valid_keys = {d.key for d in docs if split_of(d.key) == "valid"}
    stdlib_train = {k for k in code if split_of(k) == "train"}
    assert valid_keys and not valid_keys & stdlib_train
    assert docstrings.fingerprint() != load_corpus("stdlib").fingerprint()


def test_text_file_documents_are_separated_by_eot_lines(tmp_path, small_docs, make_corpus):
    path = make_corpus(tmp_path / "c.txt", small_docs)
    corpus = load_corpus(str(path))
    assert list(corpus.split("all")) == small_docs
    parts = [list(corpus.split(s)) for s in ("train", "valid", "test")]
    assert sorted(sum(parts, [])) == sorted(small_docs)


def test_compressed_and_jsonl_files_give_the_same_documents(tmp_path, small_docs, make_corpus):
    text = make_corpus(tmp_path / "c.txt", small_docs).read_bytes()
    (tmp_path / "c.txt.xz").write_bytes(lzma.compress(text))
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(text))
    with open(tmp_path / "c.jsonl", "w") as f:
        for doc in small_docs:
            f.write(json.dumps({"text": doc, "id": 1}) + "\n")
    for name in ("c.txt.xz", "c.txt.gz", "c.jsonl"):
        corpus = load_corpus(str(tmp_path / name))
        assert list(corpus.split("all")) == small_docs, name
        assert list(corpus.split("valid")) == list(load_corpus(str(tmp_path / "c.txt")).split("valid"))


def test_directory_and_glob_read_one_document_per_file(tmp_path, small_docs):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, doc in enumerate(small_docs):
        (folder / f"{i:04d}.txt").write_text(doc)
    (folder / "notes.bin").write_bytes(b"\x00\x01")  # not text: ignored
    assert list(load_corpus(str(folder)).split("all")) == small_docs
    assert list(load_corpus(str(folder / "00*.txt")).split("all")) == small_docs[:100]
    assert load_corpus(str(folder)).fingerprint() != load_corpus(str(folder / "00*.txt")).fingerprint()
    assert load_corpus(str(folder / "00*.txt")).name == "00"  # safe in a cache directory name


def test_a_single_long_text_still_gets_a_validation_split(tmp_path, small_docs):
    path = tmp_path / "one.txt"
    path.write_text("\n".join(small_docs))  # no separators: one document
    corpus = load_corpus(str(path))
    valid = list(corpus.split("valid"))
    assert valid and sum(map(len, valid)) < 0.2 * path.stat().st_size
    assert "".join(corpus.split("all")) == path.read_text()


def test_fingerprint_follows_the_content(tmp_path, small_docs, make_corpus):
    path = make_corpus(tmp_path / "c.txt", small_docs)
    before = load_corpus(str(path)).fingerprint()
    make_corpus(path, small_docs[:-1])
    assert load_corpus(str(path)).fingerprint() != before


@pytest.mark.parametrize(
    ("spec", "message"),
    [("does/not/exist.txt", "not a file, directory or glob"), ("nothing_here_*.txt", "no files match"), ("hf:", "hf:NAME")],
)
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(DataError, match=message):
        load_corpus(spec)


def test_jsonl_without_text_field_names_the_keys(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:1: .*'text' field.*body"):
        list(load_corpus(str(path)).split("all"))


def test_hf_dataset_saved_to_disk(tmp_path, small_docs):
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": small_docs}), "test": datasets.Dataset.from_dict({"text": ["x"]})}
    ).save_to_disk(str(tmp_path / "ds"))
    corpus = load_corpus(f"hf:{tmp_path / 'ds'}")
    assert list(corpus.split("all")) == small_docs
    assert list(load_corpus(f"hf:{tmp_path / 'ds'}::test").split("all")) == ["x"]
    with pytest.raises(DataError, match="no split 'nope'"):
        list(load_corpus(f"hf:{tmp_path / 'ds'}::nope").split("all"))


def test_hf_local_data_files_are_streamed(tmp_path, small_docs):
    pytest.importorskip("datasets")
    folder = tmp_path / "hub_like"
    folder.mkdir()
    with open(folder / "train.jsonl", "w") as f:
        for doc in small_docs:
            f.write(json.dumps({"text": doc}) + "\n")
    corpus = load_corpus(f"hf:{folder}")
    assert list(corpus.split("all")) == small_docs
    assert len(corpus.fingerprint()) == 16


def test_hf_dataset_without_text_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"content": ["a", "b"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="no 'text' column"):
        list(load_corpus(f"hf:{tmp_path / 'ds'}").split("all"))


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good text\n<|endoftext|>\nbad \xff\xfe bytes \xc3\n<|endoftext|>\n")
    docs = list(load_corpus(str(path)).split("all"))
    assert docs == ["good text", "bad \ufffd\ufffd bytes \ufffd"]


def test_missing_path_is_not_mistaken_for_hf_or_stdlib(tmp_path):
    with pytest.raises(DataError, match=str(Path(tmp_path / "x.txt.xz"))):
        load_corpus(str(tmp_path / "x.txt.xz"))
