"""``scalinglab frontier``: the compute-optimal N_opt ∝ C^a and D_opt ∝ C^b of an external runs table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scalinglab.cli._common import add_json_flag, add_plot_flag, command, print_json, runs_table, wrote_figure

DESCRIPTION = """\
The compute-efficient frontier of a runs table by one of Chinchilla's three approaches (Hoffmann et
al. 2022 §3): N_opt ∝ C^a and D_opt ∝ C^b, the optimum at each budget, and bootstrap intervals.

  envelope     approach 1: learning curves (one row per evaluation, a run column); at log-spaced
               compute, the run with the lowest loss so far; a is fitted where a smaller size is
               still training and a larger one exists (elsewhere the winner is the ladder's end, not
               an optimum; a warning says how much was left out); intervals resample the runs.
  isoflop      approach 2: runs at a few budgets; each budget's minimum of loss against N, from a
               cubic smoothing spline in log N, its smoothing chosen by Mallows' C_p at the runs'
               measured noise (--method akima interpolates instead, as Porian et al. 2024;
               parabola is Hoffmann's fit);
               budgets whose best run is their smallest or largest model are refused and listed.
               Intervals perturb every run by that noise and refit (a seed-noise bootstrap).
  parametric   approach 3: fit L = E + A/N^alpha + B/D^beta; a = beta/(alpha+beta) (eq 4); intervals
               from bootstrap refits over runs.

The table (CSV, Parquet, JSONL) has columns C, N, loss and optionally D (else D = C/(6N));
--columns maps other names; --where COL=VALUE keeps one configuration of a table that holds several.
A study directory gives each approach the runs the report uses for it: the isoflop designs' runs, the
single-pass runs' learning curves (steps.parquet) for the envelope, L(N, D)'s runs for parametric.
D_opt = C/(6 N_opt) throughout (Hoffmann §3), so b = 1 - a.

Examples:
  scalinglab frontier isoflop.csv --approach isoflop --json
  scalinglab frontier runs.csv --approach isoflop --columns N=n_params,C=flops --budget-column C
  scalinglab frontier porian.csv --columns N=n_params,C=flops --where "config_id=rw|tuned|short|const|standard|val"
  scalinglab frontier curves.csv --approach envelope --run-column run_id
  scalinglab frontier runs.csv --approach parametric --bootstrap 200
  scalinglab frontier runs/demo --approach isoflop                  # a study: its isoflop designs
  scalinglab frontier isoflop.csv --approach isoflop --plot frontier.png
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "frontier", "compute-optimal exponents a, b (Chinchilla approaches 1-3) of a runs table", DESCRIPTION, run)
    p.add_argument("table", metavar="RUNS", help="runs table (.csv, .parquet, .jsonl) with columns C, N, loss (D optional), or a study directory")
    p.add_argument("--approach", choices=["envelope", "isoflop", "parametric"], default="isoflop", help="default isoflop")
    p.add_argument("--columns", metavar="NAME=COL,...", help="map table columns, e.g. N=n_params,C=flops")
    p.add_argument("--where", metavar="COL=VALUE,...", help="keep only the rows whose columns equal these values")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K", help="drop the K highest-loss rows first")
    p.add_argument(
        "--method", choices=["spline", "akima", "parabola"],
        help="isoflop: how each budget's minimum is found (default spline)",
    )  # fmt: skip
    p.add_argument("--budget-column", metavar="COL", help="isoflop: column naming each run's budget (default: group C within 10%%)")
    p.add_argument("--noise", type=float, metavar="SD", help="isoflop: sd of log loss of one run (default: measured)")
    p.add_argument("--run-column", metavar="COL", help="envelope: column naming each run (default run_id)")
    p.add_argument("--bootstrap", type=int, metavar="K", help="bootstrap replicates (default 1000; parametric 100)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_plot_flag(p, "frontier.png (each budget's runs and optimum, N_opt against C)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.errors import ConfigError
    from scalinglab.laws.diagnostics import allocation_warnings
    from scalinglab.laws.tables import drop_highest

    if not 0 < args.level < 1:
        raise ConfigError(f"--level must be between 0 and 1, e.g. 0.95 (got {args.level}).")
    if args.bootstrap is not None and args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more replicates (got {args.bootstrap}).")
    given = {"--method": args.method, "--budget-column": args.budget_column, "--noise": args.noise, "--run-column": args.run_column}
    takes = {"isoflop": ("--method", "--budget-column", "--noise"), "envelope": ("--run-column",), "parametric": ()}
    ignored = [flag for flag, value in given.items() if value is not None and flag not in takes[args.approach]]
    if ignored:
        other = {flag: a for a, flags in takes.items() for flag in flags}
        raise ConfigError(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for --approach "
                          f"{other[ignored[0]]}, not {args.approach}: drop {'it' if len(ignored) == 1 else 'them'} or change the approach.")  # fmt: skip
    args.method, args.run_column = args.method or "spline", args.run_column or "run_id"
    table = drop_highest(frontier_table(args), args.drop_highest_loss)
    out = {"envelope": _envelope, "isoflop": _isoflop, "parametric": _parametric}[args.approach](table, args)
    out = {"approach": args.approach, "source": str(args.table), **out}
    given = [w for w in table.attrs.get("warnings", []) if w not in out["warnings"]]  # parametric's fit keeps them already
    out["warnings"] = [*given, *out["warnings"], *allocation_warnings(f"approach {args.approach}", out["a_interval"])]
    for w in out["warnings"]:
        print(f"scalinglab frontier: warning: {w['message']}", file=sys.stderr)
    if args.plot:
        from scalinglab.report.plots import plot_frontier

        wrote_figure("frontier", str(plot_frontier(out, table, args.plot)))
    if args.json:
        print_json(out)
    else:
        print(format_frontier(out))
    return 0


def frontier_table(args: argparse.Namespace):
    """The rows to find the frontier of: a table file as it is; from a study directory, the runs the report
    uses for the approach (study.selection.select_for_frontier), said on stderr."""
    from pathlib import Path

    from scalinglab.laws.tables import read_runs_table

    path = Path(args.table)
    table = runs_table(args, ["N", "C"]).to_frame()
    if not path.is_dir():
        return table
    from scalinglab.study.selection import select_for_frontier

    steps = path / "steps.parquet"
    curves = read_runs_table(steps).reset_index(drop=True) if args.approach == "envelope" and steps.is_file() else None
    selected, used = select_for_frontier(table, args.approach, curves)
    print(f"scalinglab frontier: {used}", file=sys.stderr)
    return selected.reset_index(drop=True)


def _optima(compute, n_opt, d_opt, loss, intervals=None) -> list[dict[str, Any]]:
    rows = []
    for i, (c, n, d, lo) in enumerate(zip(compute, n_opt, d_opt, loss)):
        row = {"C": float(c), "N_opt": float(n), "D_opt": float(d), "loss": float(lo)}
        if intervals is not None:
            row["N_opt_interval"] = intervals[i]
        rows.append(row)
    return rows


def _isoflop(table, args: argparse.Namespace) -> dict[str, Any]:
    from scalinglab.laws.diagnostics import warning
    from scalinglab.laws.frontier import isoflop_frontier

    k = 1000 if args.bootstrap is None else args.bootstrap
    r = isoflop_frontier(
        table, args.budget_column, strict=False, method=args.method, bootstrap=k, level=args.level, noise=args.noise,
        seed=args.seed,
    )  # fmt: skip
    f = r.frontier
    warnings = [warning("skipped_budget", None, f"budget C={c:.3g} left out: {reason}") for c, reason in r.refused.items()]
    if len(r.profiles) < 4:
        warnings.append(warning(
            "unidentified", "a", f"only {len(r.profiles)} budgets have an interior minimum; a from so few is fragile (add budgets).",
        ))  # fmt: skip
    return {
        "a": f.a, "a_interval": r.a_interval, "b": f.b, "b_interval": r.b_interval, "level": r.level,
        "optima": [
            {**o, "method": p.method}
            for o, p in zip(_optima(f.compute, f.n_opt, f.d_opt, f.loss, [p.n_opt_interval for p in r.profiles]), r.profiles)
        ],
        "skipped_budgets": [{"C": c, "reason": reason} for c, reason in r.refused.items()],
        "method": args.method, "noise": r.noise, "bootstrap": r.n_bootstrap, "warnings": warnings,
    }  # fmt: skip


def _envelope(table, args: argparse.Namespace) -> dict[str, Any]:
    from scalinglab.laws.diagnostics import warning
    from scalinglab.laws.frontier import (
        bracket_envelope,
        brackets_optimum,
        envelope_bootstrap,
        envelope_frontier,
    )

    tokens = "D" if "D" in table.columns else "C"
    f, whole, ok, note = bracket_envelope(table, envelope_frontier(table, run_col=args.run_column, tokens_col=tokens))
    measured = brackets_optimum(whole, ok)  # else a is the whole envelope's, its winners the ladder's ends
    k = 1000 if args.bootstrap is None else args.bootstrap
    a_int = (envelope_bootstrap(table, k, args.level, args.seed, run_col=args.run_column, tokens_col=tokens, bracketed=measured)
             if k else None)  # fmt: skip
    picks = sorted(set(range(0, len(f.compute), max(len(f.compute) // 12, 1))) | {len(f.compute) - 1})
    return {
        "a": f.a, "a_interval": a_int, "b": f.b, "b_interval": None if a_int is None else (1 - a_int[1], 1 - a_int[0]),
        "level": args.level if a_int else None,
        "optima": _optima(f.compute[picks], f.n_opt[picks], f.d_opt[picks], f.loss[picks]),
        "bracketed_fraction": float(ok.mean()), "skipped_budgets": [], "bootstrap": k,
        "warnings": [warning("unidentified", "a", note)] if note else [],
    }  # fmt: skip


def _parametric(table, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from scalinglab.laws.fit import fit_law
    from scalinglab.laws.frontier import chinchilla_allocation, group_budgets

    k = 100 if args.bootstrap is None else args.bootstrap
    fit = fit_law("chinchilla", table, bootstrap=k, level=args.level, seed=args.seed)
    p = fit.params
    a, q = p["beta"] / (p["alpha"] + p["beta"]), [(1 - args.level) / 2, (1 + args.level) / 2]
    a_int = None
    if fit.bootstrap is not None and len(fit.bootstrap) >= 2:
        samples = fit.bootstrap["beta"] / (fit.bootstrap["alpha"] + fit.bootstrap["beta"])
        a_int = tuple(float(v) for v in np.quantile(samples, q))
    budgets = np.unique(group_budgets(table["C"].to_numpy(float)))
    alloc = chinchilla_allocation(**p, compute=budgets)
    warnings = list(fit.warnings)  # an unconverged fit already says so there (diagnostics.convergence_warning)
    return {
        "a": a, "a_interval": a_int, "b": 1 - a, "b_interval": None if a_int is None else (1 - a_int[1], 1 - a_int[0]),
        "level": args.level if a_int else None, "params": dict(p),
        "optima": _optima(alloc.compute, alloc.n_opt, alloc.d_opt, alloc.loss),
        "skipped_budgets": [], "bootstrap": 0 if fit.bootstrap is None else len(fit.bootstrap), "warnings": warnings,
    }  # fmt: skip


def _interval(iv, level) -> str:
    return "" if iv is None else f"   [{iv[0]:.4f}, {iv[1]:.4f}] {level:.0%} bootstrap interval"


def format_frontier(out: dict[str, Any]) -> str:
    """The frontier as a human-readable block."""
    lines = [f"approach: {out['approach']}  ({out['source']})"]
    lines.append(f"  a (N_opt ∝ C^a): {out['a']:.4f}{_interval(out['a_interval'], out['level'])}")
    lines.append(f"  b (D_opt ∝ C^b): {out['b']:.4f}{_interval(out['b_interval'], out['level'])}")
    lines.append(f"  {'C':>10}  {'N_opt':>10}  {'D_opt':>10}  {'loss':>7}")
    for o in out["optima"]:
        lines.append(f"  {o['C']:>10.3g}  {o['N_opt']:>10.3g}  {o['D_opt']:>10.3g}  {o['loss']:>7.4f}")
    for s in out["skipped_budgets"]:
        lines.append(f"skipped C={s['C']:.3g}: {s['reason']}")
    return "\n".join(lines)
