"""Data-pipeline throughput: BPE training time and token-cache encoding speed on one corpus.

    python benchmarks/data_throughput.py [CORPUS] [--vocab-size 4096] [--workers 0]

CORPUS defaults to ../shared/data/gutenberg_books_train.txt.xz (80 MB of books) when present.
Runs the steps `prepare` runs, in a temporary directory: BPE training on the train split, then
encoding the train split (reading and decompression included) with a pool of workers and with
one, and for reference `tokenizers`' own single-threaded encode on a sample. Wall and CPU seconds
are both printed: on a shared machine the CPU seconds say what the code costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from scalinglab.data import load_corpus
from scalinglab.data.cache import _encode_split
from scalinglab.data.tokenizer import load_tokenizer, train_bpe

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gutenberg_books_train.txt.xz"


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(DEFAULT))
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=0, help="encoding processes (0 = one per core)")
    parser.add_argument("--sample-mb", type=float, default=4.0, help="text for the reference tokenizers encode")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    corpus = load_corpus(args.corpus)
    print(f"corpus: {args.corpus}; {cores} cores; load average before: {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = Path(tmp) / "tokenizer"
        tok_dir.mkdir()
        tok, wall, cpu = timed(lambda: train_bpe(corpus.split("train"), args.vocab_size))
        tok.save(tok_dir)
        print(f"BPE training, vocab {tok.vocab_size}, reading the split included: {wall:.1f} s wall, {cpu:.1f} s CPU")

        tokenizer = load_tokenizer(tok_dir)
        for n in dict.fromkeys([workers, 1]):
            out = Path(tmp) / f"encode{n}"
            out.mkdir()
            meta, wall, cpu = timed(lambda: _encode_split(corpus, "train", tokenizer, tok_dir, out, n, progress=False))  # noqa: B023
            mb = meta["num_bytes"] / 1e6
            print(f"encode train split ({mb:.1f} MB), {n} worker(s): {mb / wall:.2f} MB/s wall ({wall:.1f} s), {mb / cpu:.2f} MB per CPU-second")

        sample, size = [], 0
        for text in corpus.split("valid"):
            sample.append(text)
            size += len(text.encode())
            if size > args.sample_mb * 1e6:
                break
        _, wall, cpu = timed(lambda: [tokenizer._hf.encode(t) for t in sample])
        print(f"reference, tokenizers' Tokenizer.encode on {size / 1e6:.1f} MB: {size / 1e6 / wall:.2f} MB/s wall, {size / 1e6 / cpu:.2f} MB per CPU-second")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
