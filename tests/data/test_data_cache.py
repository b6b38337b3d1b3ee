"""prepare(): the token cache, bits per byte, worker-count independence and crash safety."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scalinglab.data import DataConfig, EvalSetConfig, SequenceSampler, cache_info, prepare
from scalinglab.data import cache as cache_module
from scalinglab.data.cache import COMPLETE, _chunks, _encode_chunk
from scalinglab.errors import DataError


def test_byte_tokens_and_bits_per_byte_by_hand(tmp_path, make_corpus):
    docs = ["héllo wörld\n" * 40 + str(i) for i in range(120)]  # 2-byte characters make bytes != chars
    path = make_corpus(tmp_path / "c.txt", docs)
    prepared = prepare(DataConfig(corpus=str(path), tokenizer="byte"), cache_dir=tmp_path / "cache", progress=False)
    with pytest.warns(UserWarning, match="trains on"):
        everything = prepare(
            DataConfig(corpus=str(path), tokenizer="byte", eval_sets=(EvalSetConfig("everything", str(path), "all"),)),
            cache_dir=tmp_path / "cache",
            progress=False,
        ).splits["everything"]
    num_bytes = sum(len(d.encode("utf-8")) for d in docs)
    assert everything.num_bytes == num_bytes
    assert everything.num_tokens == num_bytes + len(docs)  # one end-of-document token each
    expected = b"".join(d.encode() + b"\x00" for d in docs)
    assert bytes(np.asarray(everything.tokens, dtype=np.uint8)) == expected
    # a model that is uniform over the 256 bytes: ln 256 nats/token; bits/byte = loss / ln 2 / bytes-per-token
    bpb = math.log(256) / math.log(2) / everything.bytes_per_token
    assert bpb == pytest.approx(8 * (num_bytes + len(docs)) / num_bytes)
    train, valid = prepared.splits["train"], prepared.splits["valid"]
    assert train.num_bytes + valid.num_bytes < num_bytes  # the test split is left out
    assert prepared.vocab_size == 256


def test_bpe_split_bytes_add_up(tmp_path, small_corpus):
    prepared = prepare(DataConfig(corpus=str(small_corpus), vocab_size=400), cache_dir=tmp_path, progress=False)
    tok = prepared.tokenizer
    valid = prepared.splits["valid"]
    ids = np.asarray(valid.tokens)
    assert (ids == tok.eot_id).sum() == valid.num_docs
    text_bytes = sum(len(tok.bytes([i])) for i in ids if i != tok.eot_id)
    assert text_bytes == valid.num_bytes
    assert valid.bytes_per_token == pytest.approx(valid.num_bytes / len(ids))
    assert 1.5 < valid.bytes_per_token < 6


def test_second_prepare_reads_the_cache(tmp_path, small_corpus):
    cfg = DataConfig(corpus=str(small_corpus), vocab_size=300)
    first = prepare(cfg, cache_dir=tmp_path, progress=False)
    marker = first.splits["train"].path / COMPLETE
    stamp = marker.stat().st_mtime_ns
    started = time.time()
    second = prepare(cfg, cache_dir=tmp_path, progress=False)
    assert time.time() - started < 2
    assert marker.stat().st_mtime_ns == stamp
    assert np.array_equal(second.splits["train"].tokens, first.splits["train"].tokens)
    info = cache_info(tmp_path)
    (entry,) = info["tokenizers"]
    assert entry["vocab_size"] == 300 and all(s["complete"] for s in entry["splits"].values())


def test_cache_dir_defaults_to_environment(tmp_path, small_corpus, monkeypatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "env_cache"))
    prepared = prepare(DataConfig(corpus=str(small_corpus), tokenizer="byte"), progress=False)
    assert prepared.splits["train"].path.is_relative_to(tmp_path / "env_cache")


def test_tokens_do_not_depend_on_worker_count(tmp_path, small_corpus, monkeypatch):
    # small chunks and pieces so this small corpus really is cut up and spread over processes
    monkeypatch.setattr(cache_module, "CHUNK_CHARS", 20_000)
    monkeypatch.setattr(cache_module, "PIECE_CHARS", 1_000)
    cfg = DataConfig(corpus=str(small_corpus), vocab_size=300)
    one = prepare(cfg, cache_dir=tmp_path / "one", progress=False, workers=1)
    two = prepare(cfg, cache_dir=tmp_path / "two", progress=False, workers=2)
    for name in ("train", "valid"):
        assert np.array_equal(one.splits[name].tokens, two.splits[name].tokens)
    a = SequenceSampler(one.splits["train"], 32, seed=3)
    b = SequenceSampler(two.splits["train"], 32, seed=3)
    assert np.array_equal(a.next_batch(16), b.next_batch(16))


def test_cut_documents_encode_like_whole_ones(tmp_path, small_docs, monkeypatch):
    monkeypatch.setattr(cache_module, "PIECE_CHARS", 500)
    from scalinglab.data.tokenizer import train_bpe

    tok = train_bpe(small_docs, 350)
    doc = "\n\n".join(small_docs[:20])
    (chunk,) = list(_chunks(iter([doc])))
    assert len(chunk) > 10  # really cut
    ids, num_bytes, docs = _encode_chunk(chunk, tok)
    assert ids.tolist() == tok.encode(doc) + [tok.eot_id]
    assert (num_bytes, docs) == (len(doc.encode()), 1)


def test_eval_sets_use_the_training_tokenizer(tmp_path, small_corpus, make_corpus, stdlib_texts):
    other_docs = stdlib_texts(300)[150:]
    other = make_corpus(tmp_path / "other.txt", other_docs)
    cfg = DataConfig(corpus=str(small_corpus), vocab_size=300, eval_sets=(EvalSetConfig("other", str(other)),))
    prepared = prepare(cfg, cache_dir=tmp_path / "cache", progress=False)
    assert set(prepared.splits) == {"train", "valid", "other"}
    assert prepared.splits["other"].num_docs == len(other_docs) > 0
    assert prepared.splits["other"].tokens.max() < prepared.vocab_size


def test_eval_on_training_text_warns(tmp_path, small_corpus):
    cfg = DataConfig(corpus=str(small_corpus), tokenizer="byte", eval_sets=(EvalSetConfig("seen", str(small_corpus), "train"),))
    with pytest.warns(UserWarning, match="split 'test'"):
        prepare(cfg, cache_dir=tmp_path, progress=False)


def test_undecodable_bytes_are_counted_in_the_split(tmp_path, small_docs):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\n<|endoftext|>\n".join(d.encode() for d in small_docs) + b"\n<|endoftext|>\n\xff\xff oops")
    cfg = DataConfig(corpus=str(path), tokenizer="byte", eval_sets=(EvalSetConfig("all_text", str(path)),))
    with pytest.warns(UserWarning, match="2 invalid UTF-8 sequence"), pytest.warns(UserWarning, match="trains on"):
        prepared = prepare(cfg, cache_dir=tmp_path / "cache", progress=False)
    assert prepared.splits["all_text"].replaced == 2


def test_lone_surrogates_in_json_are_replaced_and_counted(tmp_path, small_docs):
    path = tmp_path / "c.jsonl"
    with open(path, "w") as f:
        for doc in [*small_docs, "broken \ud800 pair"]:
            f.write(json.dumps({"text": doc}) + "\n")  # JSON escapes the lone surrogate as \\ud800
    cfg = DataConfig(corpus=str(path), tokenizer="byte", eval_sets=(EvalSetConfig("all_text", str(path)),))
    with pytest.warns(UserWarning, match="1 invalid UTF-8 sequence"), pytest.warns(UserWarning, match="trains on"):
        prepared = prepare(cfg, cache_dir=tmp_path / "cache", progress=False)
    split = prepared.splits["all_text"]
    assert split.replaced == 1
    assert "broken \ufffd pair".encode() in bytes(np.asarray(split.tokens, dtype=np.uint8))


def test_empty_corpus_and_oversized_train_tokens_name_the_fix(tmp_path, small_corpus):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n<|endoftext|>\n  \n")
    with pytest.raises(DataError, match="split of corpus .* is empty"):
        prepare(DataConfig(corpus=str(empty), tokenizer="byte"), cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.tmp")), "a failed build leaves nothing behind"
    with pytest.raises(DataError, match="data.train_tokens=.* exceeds"):
        prepare(DataConfig(corpus=str(small_corpus), tokenizer="byte", train_tokens=10**9), cache_dir=tmp_path, progress=False)


KILL_SCRIPT = """
import sys
from scalinglab.data import DataConfig, prepare
prepare(DataConfig(corpus=sys.argv[1], tokenizer="byte"), cache_dir=sys.argv[2], progress=False, workers=1)
"""


def test_killed_encode_never_looks_complete_and_a_rerun_recovers(tmp_path, small_docs, make_corpus):
    docs = [f"{i} {d}" for i in range(24) for d in small_docs]  # ~14 MB: seconds to encode
    path = make_corpus(tmp_path / "big.txt", docs)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path), str(cache)], start_new_session=True)
    deadline = time.time() + 120
    partial = None
    while time.time() < deadline and proc.poll() is None:
        partial = next((p for p in cache.glob("*/.*.tmp/tokens.bin") if p.stat().st_size > 0), None)
        if partial:
            break
        time.sleep(0.01)
    assert partial is not None, "the encoder finished before it could be killed; make the corpus larger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial.exists()  # killed mid-write: the half-written entry is still there...
    split_dirs = [p for p in partial.parent.parent.iterdir() if p.name != "tokenizer" and p.is_dir()]
    assert not any((p / COMPLETE).exists() for p in split_dirs)  # ...but nothing claims to be complete
    info = cache_info(cache)
    assert not any(s["complete"] for t in info["tokenizers"] for s in t["splits"].values())

    prepared = prepare(DataConfig(corpus=str(path), tokenizer="byte"), cache_dir=cache, progress=False)
    assert not list(cache.rglob("*.tmp"))
    fresh = prepare(DataConfig(corpus=str(path), tokenizer="byte"), cache_dir=tmp_path / "fresh", progress=False)
    for name in ("train", "valid"):
        assert np.array_equal(prepared.splits[name].tokens, fresh.splits[name].tokens)
        meta = json.loads((prepared.splits[name].path / "meta.json").read_text())
        assert meta["num_tokens"] == len(prepared.splits[name].tokens)


def test_cut_books_encode_like_whole_ones(shared_file, monkeypatch):
    import lzma

    from scalinglab.data.tokenizer import train_bpe

    with lzma.open(shared_file("gutenberg_books_valid.txt.xz"), "rt", encoding="utf-8") as f:
        book = f.read(300_000).split("\n<|endoftext|>\n")[0]
    tok = train_bpe([book], 500)
    monkeypatch.setattr(cache_module, "PIECE_CHARS", 2_000)
    (chunk,) = list(_chunks(iter([book])))
    assert len(chunk) > 50
    ids, _, _ = _encode_chunk(chunk, tok)
    assert ids.tolist() == tok._hf.encode(book).ids + [tok.eot_id]
