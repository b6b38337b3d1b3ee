"""``scalinglab backtest``: fit a law on the smaller runs and score its predictions of the larger ones."""

from __future__ import annotations

import argparse

from scalinglab.cli._common import (
    add_json_flag,
    add_plot_flag,
    command,
    print_json,
    print_warnings,
    wrote_figure,
)
from scalinglab.cli.fit import add_table_arguments, fit_options, read_table

DESCRIPTION = """\
Backtest a scaling law: fit it on the runs an ordered split selects (--train "C<1e21"), predict the
others with prediction intervals, and score the predictions: mean absolute error, bias (prediction
minus actual), worst absolute and relative errors, and the share of held-out runs inside their
intervals. This is how much to trust an extrapolation before paying for it.

A split is COLUMN<VALUE (also <=, >, >=) on any column of the table, e.g. C<1e21 or N<=1e8.
With --law auto the law is chosen by rollout cross-validation inside the training runs only.

Examples:
  scalinglab backtest runs.csv --law chinchilla --train "C<1e21"
  scalinglab backtest runs.csv --law chinchilla --train "C<1e21" --drop-highest-loss 5 --json
  scalinglab backtest runs.csv --law auto --train "N<1e9" --drop-highest-loss 5
  scalinglab backtest runs.csv --law chinchilla --tie alpha=beta --train "N<1e9"
  scalinglab backtest runs.parquet --law kaplan_n --train "N<1e7" --points --json
  scalinglab backtest runs.csv --law auto --train "C<1e20" --plot backtest.png
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "backtest", "score a law's predictions of held-out larger runs", DESCRIPTION, run)
    add_table_arguments(p)
    p.add_argument("--train", required=True, metavar="SPLIT", help='runs to fit on, e.g. "C<1e21" or "N<=1e8"')
    p.add_argument("--bootstrap", type=int, default=200, metavar="K", help="bootstrap refits for intervals (default 200)")
    p.add_argument("--points", action="store_true", help="include the per-run table in --json output")
    add_plot_flag(p, "backtest.png (the held-out runs beside their predictions)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.laws.backtest import backtest

    table = read_table(args)
    result = backtest(args.law, table, args.train, bootstrap=args.bootstrap, **fit_options(args, table))
    print_warnings("backtest", result.warnings)
    if args.plot:
        from scalinglab.report.plots import plot_backtest

        wrote_figure("backtest", str(plot_backtest(result, args.plot)))
    if args.json:
        print_json(result.to_dict(points=args.points))
        return 0
    level = f"{result.level:.0%}"
    rows, final = ("checkpoint rows", "the final checkpoint of ") if result.fit.run_column else ("runs", "")
    print(f"law: {result.fit.label}; fitted on {result.split} ({result.n_train} {rows}), predicting {final}{result.n_test} runs")
    for c in result.fit.candidates:
        cv = "not scored" if c["cv_error"] is None else f"rollout CV mean |log error| {c['cv_error']:.4f}"
        if c["cv_error"] is not None and c.get("cv_se") is not None:
            cv += f" ± {c['cv_se']:.4f}, {c['free']} parameters{'' if c['floor'] else ', no floor'}"
        same = f" (same fit as {c['same_as']})" if c.get("same_as") else ""
        print(f"  candidate {c['name']:<28} {cv}, weight {c['weight']:.2f}{same}{'  <- chosen' if c['chosen'] else ''}")
    print(f"  MAE {result.mae:.4f}   bias {result.bias:+.4f}   max abs error {result.max_abs_error:.4f}   "
          f"max rel error {result.max_rel_error:.2%}   {level} interval coverage {result.coverage:.0%}")  # fmt: skip
    print()
    table = result.table.copy()
    table["covered"] = table["covered"].map({True: "yes", False: "NO"})
    print(table.to_string(float_format=lambda v: f"{v:.5g}"))
    return 0
