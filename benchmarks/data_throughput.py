"""Data-pipeline throughput: BPE training time and token-cache encoding speed on one corpus.

    python benchmarks/data_throughput.py [CORPUS] [--vocab-size 4096] [--workers 0]

CORPUS defaults to ../shared/data/gutenberg_books_train.txt.xz (80 MB of books) when present.
Runs the real `prepare` path in a fresh temporary cache and prints: BPE training seconds, encode
MB/s of the train split (reading and decompression included) with the pool and with one worker,
and, for reference, `tokenizers`' own single-threaded encode on a sample.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from scalinglab.data import DataConfig, load_corpus, prepare
from scalinglab.data.cache import _encode_split
from scalinglab.data.tokenizer import load_tokenizer

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gutenberg_books_train.txt.xz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(DEFAULT))
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=0, help="encoding processes (0 = one per core)")
    parser.add_argument("--sample-mb", type=float, default=4.0, help="text for the reference tokenizers encode")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        started = time.time()
        prepared = prepare(DataConfig(corpus=args.corpus, vocab_size=args.vocab_size), cache, progress=False, workers=args.workers)
        total = time.time() - started
        train = prepared.splits["train"]
        train_meta = json.loads((train.path / "meta.json").read_text())
        valid_meta = json.loads((prepared.splits["valid"].path / "meta.json").read_text())
        bpe_seconds = total - train_meta["seconds"] - valid_meta["seconds"]  # the rest is reading + BPE

        # the same split again with a single worker, for the speed-up
        corpus = load_corpus(args.corpus)
        tokenizer = load_tokenizer(prepared.tokenizer_dir)
        single_dir = Path(cache) / "single"
        single_dir.mkdir()
        started = time.time()
        _encode_split(corpus, "train", tokenizer, prepared.tokenizer_dir, single_dir, workers=1, progress=False)
        single_seconds = time.time() - started

        sample = next(corpus.split("valid"))[: int(args.sample_mb * 1e6)]
        hf = tokenizer._hf
        started = time.time()
        hf.encode(sample)
        hf_rate = len(sample.encode()) / (time.time() - started) / 1e6

    mb = train.num_bytes / 1e6
    print(f"corpus: {args.corpus}  (train split {mb:.1f} MB, {train.num_tokens:,} tokens, {train.bytes_per_token:.3f} bytes/token)")
    print(f"cores available: {len(os.sched_getaffinity(0))}, load average: {os.getloadavg()[0]:.1f}")
    print(f"BPE training (vocab {prepared.vocab_size}) incl. reading the split: {bpe_seconds:.1f} s")
    print(f"encode, pool of {args.workers or len(os.sched_getaffinity(0))}: {mb / train_meta['seconds']:.2f} MB/s ({train_meta['seconds']:.1f} s)")
    print(f"encode, 1 worker: {mb / single_seconds:.2f} MB/s ({single_seconds:.1f} s)")
    print(f"reference: tokenizers' Tokenizer.encode, single call on {len(sample) / 1e6:.1f} MB: {hf_rate:.2f} MB/s")


if __name__ == "__main__":
    main()
