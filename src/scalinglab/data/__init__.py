"""Data: corpus -> tokenizer -> token cache -> training windows and evaluation batches.

    from scalinglab.data import prepare, SequenceSampler, eval_batches
    prepared = prepare(DataConfig(corpus="stdlib"))
    sampler = SequenceSampler(prepared.splits["train"], seq_len=128, seed=0)
    batch = sampler.next_batch(32)   # int64 (32, 129)
"""

from scalinglab.data.cache import PreparedData, TokenSplit, cache_info, default_cache_dir, prepare
from scalinglab.data.config import DataConfig, EvalSetConfig
from scalinglab.data.corpora import load_corpus
from scalinglab.data.sampler import SequenceSampler, eval_batches, num_windows
from scalinglab.data.tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "DataConfig",
    "EvalSetConfig",
    "PreparedData",
    "SequenceSampler",
    "TokenSplit",
    "Tokenizer",
    "cache_info",
    "default_cache_dir",
    "eval_batches",
    "load_corpus",
    "load_tokenizer",
    "num_windows",
    "prepare",
]
