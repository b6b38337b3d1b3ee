"""SequenceSampler and eval_batches: nested subsets, seeded order, exact resume, fixed eval windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.data import SequenceSampler, TokenSplit, eval_batches
from scalinglab.errors import DataError


def make_split(tmp_path, num_tokens: int) -> TokenSplit:
    """A split whose token i is i, so a window is identified by its first token."""
    path = tmp_path / "tokens.bin"
    np.arange(num_tokens, dtype=np.uint32).tofile(path)
    tokens = np.memmap(path, dtype=np.uint32, mode="r", shape=(num_tokens,))
    return TokenSplit("train", tmp_path, tokens, num_tokens, num_bytes=3 * num_tokens, num_docs=1, replaced=0)


def one_epoch_starts(sampler: SequenceSampler) -> list[int]:
    return sampler.next_batch(sampler.num_windows)[:, 0].tolist()


def test_windows_are_contiguous_and_targets_shift_by_one(tmp_path):
    batch = SequenceSampler(make_split(tmp_path, 1000), seq_len=16, seed=0).next_batch(4)
    assert batch.dtype == np.int64 and batch.shape == (4, 17)
    assert (np.diff(batch, axis=1) == 1).all()
    assert (batch[:, 0] % 16 == 0).all()  # windows start on multiples of seq_len: every token a target once


def test_each_epoch_is_a_permutation_and_epochs_differ(tmp_path):
    sampler = SequenceSampler(make_split(tmp_path, 1601), seq_len=16, seed=1)
    assert sampler.num_windows == 100
    first, second = one_epoch_starts(sampler), one_epoch_starts(sampler)
    assert sorted(first) == sorted(second) == list(range(0, 1600, 16))
    assert first != second
    assert sampler.epoch == 2.0
    sampler.next_batch(25)
    assert sampler.epoch == 2.25


@pytest.mark.parametrize("shuffled", [True, False])
def test_data_limits_are_nested_and_the_same_for_every_run_seed(tmp_path, shuffled):
    split = make_split(tmp_path, 20_000)
    windows = {}
    for d in (1025, 2049, 4097, 8193):  # D0 * 2^k (+1 for the last target)
        sampler = SequenceSampler(split, seq_len=32, seed=7, max_tokens=d, shuffled=shuffled)
        starts = one_epoch_starts(sampler)
        assert len(starts) == (d - 1) // 32 == len(set(starts))
        if not shuffled:
            assert max(starts) + 33 <= d  # a prefix never reads past the limit
        other_seed = SequenceSampler(split, seq_len=32, seed=8, max_tokens=d, shuffled=shuffled)
        assert set(one_epoch_starts(other_seed)) == set(starts)  # the run's seed orders the subset, never picks it
        windows[d] = set(starts)
    sizes = sorted(windows)
    for small, big in zip(sizes, sizes[1:]):
        assert windows[small] < windows[big]
    if shuffled:  # the subset is spread over the whole split, and another subset_seed draws another
        assert max(windows[1025]) > 10_000
        again = SequenceSampler(split, seq_len=32, seed=7, max_tokens=1025, subset_seed=1)
        assert set(one_epoch_starts(again)) != windows[1025]


def _unigram_distance(a: np.ndarray, b: np.ndarray, vocab: int) -> float:
    """Total variation distance between the token frequencies of two token arrays."""
    pa = np.bincount(a, minlength=vocab) / len(a)
    pb = np.bincount(b, minlength=vocab) / len(b)
    return 0.5 * float(np.abs(pa - pb).sum())


def test_a_small_shuffled_subset_has_the_token_statistics_of_the_whole_corpus(tmp_path, small_corpus):
    from scalinglab.data import prepare
    from scalinglab.data.config import DataConfig

    train = prepare(DataConfig(corpus=str(small_corpus), tokenizer="byte"), cache_dir=tmp_path / "cache", progress=False)
    train = train.splits["train"]
    whole = np.asarray(train.tokens, dtype=np.int64)
    d = len(whole) // 20  # a 5% subset
    seq = 64

    def subset(shuffled: bool) -> np.ndarray:
        return SequenceSampler(train, seq, seed=0, max_tokens=d, shuffled=shuffled).next_batch((d - 1) // seq)[:, 1:].ravel()

    shuffled, prefix = _unigram_distance(subset(True), whole, 256), _unigram_distance(subset(False), whole, 256)
    # the stdlib modules in file order: a prefix is a few modules, a shuffled subset samples them all
    assert shuffled < 0.04, shuffled
    assert shuffled < prefix / 2, (shuffled, prefix)


def test_same_seed_same_order_whatever_the_batching(tmp_path):
    split = make_split(tmp_path, 5000)
    one = SequenceSampler(split, 16, seed=3)
    other = SequenceSampler(split, 16, seed=3)
    # one process taking 12 rows at a time, or ranks/micro-batches taking 4 each: the same stream
    whole = np.concatenate([one.next_batch(12) for _ in range(40)])
    parts = np.concatenate([other.next_batch(4) for _ in range(120)])
    assert np.array_equal(whole, parts)
    assert not np.array_equal(whole[:12], SequenceSampler(split, 16, seed=4).next_batch(12))


def test_resume_continues_the_exact_sequence_across_epochs(tmp_path):
    split = make_split(tmp_path, 3000)
    reference = SequenceSampler(split, 32, seed=11)
    expected = [reference.next_batch(10) for _ in range(30)]  # ~3 epochs of 93 windows
    first = SequenceSampler(split, 32, seed=11)
    for _ in range(17):
        first.next_batch(10)
    state = json.loads(json.dumps(first.state_dict()))  # through JSON, as a checkpoint stores it
    resumed = SequenceSampler(split, 32, seed=11)
    resumed.load_state_dict(state)
    assert resumed.epoch == first.epoch
    for batch in expected[17:]:
        assert np.array_equal(resumed.next_batch(10), batch)


def test_resume_refuses_a_different_setup(tmp_path):
    split = make_split(tmp_path, 3000)
    state = SequenceSampler(split, 32, seed=11).state_dict()
    with pytest.raises(DataError, match="seq_len=32"):
        SequenceSampler(split, 64, seed=11).load_state_dict(state)


def test_eval_batches_are_a_fixed_prefix(tmp_path):
    split = make_split(tmp_path, 10_000)
    batches = list(eval_batches(split, seq_len=64, max_tokens=1000, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 4, 3]  # (1000 - 1) // 64 = 15 windows
    starts = np.concatenate(batches)[:, 0]
    assert starts.tolist() == list(range(0, 15 * 64, 64))
    again = list(eval_batches(split, seq_len=64, max_tokens=1000, batch_size=4))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert sum(len(b) for b in eval_batches(split, 64, 10**9, 100)) == (10_000 - 1) // 64  # capped at the split


def test_a_corpus_smaller_than_one_context_names_the_fix(tmp_path):
    split = make_split(tmp_path, 100)
    with pytest.raises(DataError, match="fewer than one context of 129.*n_ctx"):
        SequenceSampler(split, seq_len=128, seed=0)
    with pytest.raises(DataError, match="max_tokens=1000 exceeds the 100 tokens"):
        SequenceSampler(split, seq_len=16, seed=0, max_tokens=1000)
    with pytest.raises(DataError, match="fewer than one context"):
        list(eval_batches(split, 16, 10, 4))


def test_how_a_subset_is_drawn_is_part_of_the_identity_only_of_a_run_with_a_subset():
    from scalinglab.config import replace_fields
    from scalinglab.train.config import RunConfig

    whole = RunConfig()
    assert replace_fields(whole, {"data.subset": "prefix", "data.subset_seed": 3}).identity() == whole.identity()
    limited = replace_fields(whole, {"data.train_tokens": 100_000})
    assert replace_fields(limited, {"data.subset": "prefix"}).identity() != limited.identity()
    assert replace_fields(limited, {"data.subset_seed": 1}).identity() != limited.identity()
