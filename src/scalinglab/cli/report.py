"""``scalinglab report``: Kaplan's analyses of a study as one self-contained HTML page."""

from __future__ import annotations

import argparse
import math
import sys

from scalinglab.cli._common import add_json_flag, command, print_json

DESCRIPTION = """\
Analyse a study directory the way Kaplan et al. 2020 analyse theirs, and write a self-contained HTML
report (figures inlined; PNG and SVG copies beside it): L(N), L(D), L(N, D) and the overfitting
collapse, the L(C) frontier and the compute-optimal N(C), S(C), L(C_min), L(N, S), the critical batch
size from batch scans and from the gradient noise scale, sample efficiency, shape invariance,
embedding vs non-embedding parameters, transfer to other eval sets, the per-position loss, and
Chinchilla's three approaches beside Kaplan's allocation. It also tabulates every fitted constant
with its 95% interval beside the paper's value, the backtest errors, and the recommended allocation
at a few budgets. A figure the study has no data for is skipped with a visible note. The answer
goes beside the headline: the compute-optimal exponent a by each of Chinchilla's approaches with its
95% interval, which paper's value the intervals support, and every warning that doubts it (also on
stderr).

The runs are collected from the run directories each time (runs.parquet and steps.parquet are
written to the study directory when missing or older than a run, so `scalinglab fit STUDY` fits
the same runs).

Examples:
  scalinglab report runs/ladder                      # writes runs/ladder/report/index.html
  scalinglab report runs/ladder --out /tmp/report --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "report", "Kaplan's analyses and figures of a study as an HTML report", DESCRIPTION, run)
    p.add_argument("study_dir", metavar="STUDY_DIR", help="the study directory (runs/<study name>)")
    p.add_argument("--out", metavar="DIR", help="where to write index.html and figures/ (default STUDY_DIR/report)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes that draw the figures (default: this machine's CPUs, at most 4; 1 draws in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scalinglab.report.answer import allocation_exponents, answer_warnings, conclusion, write_answer
    from scalinglab.report.build import build_report, resolve_workers
    from scalinglab.study.collect import stale_tables

    workers = resolve_workers(args.workers)  # a bad count fails before any collection
    study_dir = Path(args.study_dir)
    stale = stale_tables(study_dir)  # the tables `fit STUDY` reads, kept current with what the report fits
    result = build_report(study_dir, args.out, progress=not args.quiet and not args.json, workers=workers,
                          keep_tables=stale is not None)
    if stale and not args.quiet:
        print(f"scalinglab report: {stale}: collected again", file=sys.stderr)
    exponents = allocation_exponents(result.results, result.runs)  # the answer, with its intervals and doubts
    warnings = answer_warnings(result.results, result.runs, exponents)
    write_answer(result, exponents, warnings)
    for w in warnings:
        print(f"scalinglab report: warning: {w['message']}", file=sys.stderr)
    if args.json:
        print_json({**result.to_dict(), "exponents": [e.to_dict() for e in exponents],
                    "warnings": warnings, "conclusion": conclusion(exponents)})  # fmt: skip
        return 0
    n = result.numbers
    for key in ("alpha_N", "alpha_D", "alpha_B", "backtest_max_error"):
        if math.isfinite(n[key]):
            lo, hi = n.get(f"{key}_low", math.nan), n.get(f"{key}_high", math.nan)
            found = "; ".join(result.flags.get(key, []))
            print(f"{key:20s} {n[key]:.4g}" + (f"  [{lo:.4g}, {hi:.4g}] 95% interval" if math.isfinite(lo) and math.isfinite(hi) else "")
                  + (f"  ⚠ {found}" if found else ""))
    for e in exponents:
        print(f"a, {e.text()}")
    print(conclusion(exponents))
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"report: {result.path} ({len(result.figures)} figures)")
    return 0
