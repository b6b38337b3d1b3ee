"""``scalinglab demo``: a real small study on the built-in corpus, analysed into an HTML report."""

from __future__ import annotations

import argparse

from scalinglab.cli._common import add_json_flag, command, print_json

DESCRIPTION = """\
Reproduce Kaplan et al. 2020's scaling laws on this machine, with no download: train a real small
study of GPT models on the Python standard library (the built-in 'stdlib' corpus, a 2,048-token BPE)
- a ladder of 6 sizes over two decades of compute, IsoFLOP profiles of 5 sizes at 3 budgets, a dataset-size
sweep on nested shuffled subsets, a batch-size scan and a shape scan, every run also evaluated on
the library's docstrings for transfer - then fit the laws and write an HTML report with the paper's
figures. It ends with a summary: the report's headline numbers (alpha_N, alpha_D, B_crit(L), the
backtest error), the compute-optimal exponent a from Chinchilla's approaches 1, 2 and 3 with 95%
intervals, warnings (intervals that disagree, a constant the data cannot support, a fit on a bound),
a conclusion about the papers computed from the intervals, and the report's path. --json gives the
same as numbers (a_envelope, a_isoflop, a_parametric and each *_interval), warnings and conclusion.

6-15 minutes on 2 CPU cores (two one-thread workers), by the CPU; --quick shrinks it to a few minutes.
Progress is one line per finished run (k/N done and an ETA), readable in a log file too.
Interrupted? Run the same command again: finished runs are kept and unfinished ones resume.
The study file (scalinglab/studies/demo.toml in the package) is written to OUT/study.toml: extend it
and re-run it with `scalinglab study run`.

Examples:
  scalinglab demo                           # runs/demo, report in runs/demo/report/index.html
  scalinglab demo --quick --out /tmp/demo   # the few-minute version
  scalinglab demo --workers 4 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "demo", "train a small real study and write the scaling-law report", DESCRIPTION, run)
    p.add_argument("--quick", action="store_true", help="the few-minute version (tests and CI)")
    p.add_argument("--out", metavar="DIR", default=None, help="study directory (default runs/demo or runs/demo-quick)")
    p.add_argument("--workers", type=int, default=2, help="runs trained in parallel, one thread each (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (they go to stderr, also under --json)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.demo import run_demo, summary_lines
    from scalinglab.errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {args.workers}).")
    out = args.out or ("runs/demo-quick" if args.quick else "runs/demo")
    result = run_demo(out, quick=args.quick, workers=args.workers, progress=not args.quiet)  # stderr: --json keeps stdout clean
    if args.json:
        print_json(result.to_dict())
    else:
        print("\n".join(summary_lines(result)))
    return 0
