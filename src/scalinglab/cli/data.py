"""``scalinglab data prepare`` and ``scalinglab data info``: build and inspect the token cache."""

from __future__ import annotations

import argparse
import sys
import warnings

from scalinglab.cli._common import add_json_flag, command, print_json

PREPARE_DESCRIPTION = """\
Train the tokenizer on a corpus's train split and encode its splits into the token cache
(once; later runs read the cache). Prints tokens and bytes per token for every split.
Documents go to train/valid/test (90/5/5%) by a hash of each document, the same on every machine.

corpus specs:
  stdlib                          the running Python's standard library (built in, no download)
  stdlib-docstrings               its docstrings: English prose, split like stdlib (for transfer)
  books.txt.xz, data/, 'data/*.gz'  text files; documents separated by '<|endoftext|>' lines
  corpus.jsonl                    one JSON record per line with a 'text' field
  hf:NAME[:CONFIG][:SPLIT]        a Hugging Face dataset with a 'text' column (needs 'datasets')

examples:
  scalinglab data prepare
  scalinglab data prepare --corpus ../data/books_train.txt.xz --vocab-size 8192
  scalinglab data prepare --corpus stdlib --tokenizer byte --json
  scalinglab data prepare --corpus books.txt.xz --eval code=code.txt.xz --eval docs=docs.txt.xz:all
"""

INFO_DESCRIPTION = """\
List what the token cache holds: each tokenizer and the corpus splits encoded with it
(tokens, bytes per token, size on disk); interrupted entries are shown as incomplete.

examples:
  scalinglab data info
  scalinglab data info --cache-dir /scratch/tokens --json
"""


def _eval_set(text: str):
    from scalinglab.data.config import EvalSetConfig
    from scalinglab.errors import ConfigError

    name, sep, spec = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--eval '{text}' must look like NAME=CORPUS[:SPLIT], e.g. code=code.txt.xz")
    split = "all"
    head, colon, tail = spec.rpartition(":")
    if colon and tail in ("train", "valid", "test", "all") and not spec.startswith("hf:"):
        spec, split = head, tail
    try:
        return EvalSetConfig(name=name, corpus=spec, split=split)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _prepare(args: argparse.Namespace) -> int:
    from scalinglab.data import DataConfig, prepare

    cfg = DataConfig(corpus=args.corpus, tokenizer=args.tokenizer, vocab_size=args.vocab_size, eval_sets=tuple(args.eval))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare(cfg, cache_dir=args.cache_dir, progress=not args.json, workers=args.workers)
    for warning in caught:  # one line each, like errors
        print(f"scalinglab data prepare: warning: {warning.message}", file=sys.stderr)
    summary = prepared.summary()
    if args.json:
        print_json(summary)
        return 0
    print(f"tokenizer: {summary['tokenizer']}, vocab {summary['vocab_size']}  ({summary['tokenizer_dir']})")
    print(f"{'split':<12} {'tokens':>12} {'bytes':>14} {'bytes/token':>12} {'docs':>8}")
    for name, s in summary["splits"].items():
        print(f"{name:<12} {s['tokens']:>12,} {s['bytes']:>14,} {s['bytes_per_token']:>12.3f} {s['documents']:>8,}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from scalinglab.data import cache_info

    info = cache_info(args.cache_dir)
    if args.json:
        print_json(info)
        return 0
    print(f"cache: {info['cache_dir']}")
    if not info["tokenizers"]:
        print("  (empty; run `scalinglab data prepare`)")
    for tok in info["tokenizers"]:
        print(f"{tok['key']}  ({tok['tokenizer']}, vocab {tok['vocab_size']})")
        for name, s in tok["splits"].items():
            if not s["complete"]:
                print(f"  {name:<48} incomplete (rebuilt on next use)")
            else:
                print(
                    f"  {name:<48} {s['tokens']:>12,} tokens  {s['bytes_per_token']:.3f} bytes/token  "
                    f"{s['disk_bytes'] / 2**20:.1f} MiB"
                )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="prepare and inspect tokenized corpora",
        description="Tokenize corpora into the token cache and inspect it; see `scalinglab data prepare --help`.",
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = command(data_sub, "prepare", "tokenize a corpus into the cache", PREPARE_DESCRIPTION, _prepare)
    p.add_argument("--corpus", default="stdlib", help="corpus spec (default: stdlib)")
    p.add_argument("--tokenizer", choices=["bpe", "byte"], default="bpe", help="byte-level BPE or raw bytes (default: bpe)")
    p.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size (default: 4096)")
    p.add_argument(
        "--eval", type=_eval_set, action="append", default=[], metavar="NAME=CORPUS[:SPLIT]",
        help="also encode a held-out set under the same tokenizer (repeatable; SPLIT defaults to all)",
    )
    p.add_argument("--cache-dir", default=None, help="token cache (default: $SCALINGLAB_CACHE or ~/.cache/scalinglab)")
    p.add_argument("--workers", type=int, default=0, help="encoding processes (default: one per core)")
    add_json_flag(p)

    i = command(data_sub, "info", "list the token cache", INFO_DESCRIPTION, _info)
    i.add_argument("--cache-dir", default=None, help="token cache (default: $SCALINGLAB_CACHE or ~/.cache/scalinglab)")
    add_json_flag(i)
