"""``scalinglab fit``: fit a scaling law to a runs table and write ``fit.json``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalinglab.cli._common import (
    add_json_flag,
    add_plot_flag,
    command,
    keep_temporaries_on_heap,
    print_json,
    print_warnings,
    runs_table,
    wrote_figure,
)

if TYPE_CHECKING:
    import pandas as pd

LAWS = (
    "chinchilla, chinchilla_tied, chinchilla_c, data_constrained, kaplan_n, kaplan_d, kaplan_c, kaplan_cmin, kaplan_nd, kaplan_ns, "
    "bcrit, position, auto"
)

DESCRIPTION = f"""\
Fit a scaling law to runs: the Huber loss (delta 1e-3) of log residuals, summed over runs, from a
grid of starts optimised together, then polished to a checked convergence (Hoffmann et al. App D.2,
with the fixes of Besiroglu et al. 2024). Bootstrap refits over runs give the intervals.

Laws: {LAWS}, or your own function as path/to/file.py:function (named parameters).
The table (CSV, Parquet, JSONL, a W&B CSV export, or a study directory with runs.parquet) needs the
law's columns: N, D (or C, then D = C/(6N)), loss by default; --columns maps other names.
From a study directory the law fits the runs the report uses for it (scans and 1-layer models left
out; L(D) on the data-limited runs, early-stopped; L(N, S) on the learning curves of steps.parquet,
S = S_min from the batch scan's B_crit(L)), or one design's with --design; stderr says which.
A study's runs.parquet older than its run directories (a run added or trained since) is collected again.

Examples:
  scalinglab fit runs.csv --law chinchilla --out fit.json
  scalinglab fit repeats.csv --law data_constrained --columns U=unique_tokens --two-stage --out fit.json
  scalinglab fit runs.csv --law chinchilla --starts hoffmann --bootstrap 1000 --drop-highest-loss 5
  scalinglab fit wandb.csv --law kaplan_n --columns loss=val/loss,N=params --json
  scalinglab fit porian.csv --columns N=n_params,D=tokens --where "config_id=rw|tuned|short|const|standard|val"
  scalinglab fit studies/ladder --law my_laws.py:power_with_offset
"""


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by commands that read a runs table and fit a law to it."""
    p.add_argument("table", metavar="RUNS", help="runs table (.csv, .parquet, .jsonl) or a study directory")
    p.add_argument("--law", default="chinchilla", help=f"law to fit (default chinchilla): {LAWS}, or file.py:function")
    p.add_argument("--columns", metavar="NAME=COL,...", help="map table columns, e.g. loss=val/loss,N=params")
    p.add_argument("--where", metavar="COL=VALUE,...", help="keep only the rows whose columns equal these values (one configuration of several)")
    p.add_argument("--design", metavar="NAME", help="from a study directory, fit only the runs of this design, or of every design of this kind (scans included)")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K", help="drop the K highest-loss runs first")
    p.add_argument(
        "--starts", default="default", metavar="default|full|hoffmann|K",
        help="start grid: the law's default, its full grid (hoffmann = Hoffmann's 4,500 for chinchilla), or K random",
    )  # fmt: skip
    p.add_argument("--delta", type=float, default=1e-3, help="Huber threshold on log residuals (default 1e-3)")
    p.add_argument("--weights", metavar="COLUMN", help="column of per-run weights (default: all 1)")
    p.add_argument("--overpredict-penalty", type=float, default=0.0, metavar="F", help="extra weight on over-predictions")
    p.add_argument("--tie", action="append", metavar="P=Q", help="fit P and Q as one parameter, e.g. alpha=beta (repeatable)")
    p.add_argument("--fix", action="append", metavar="P=VALUE", help="hold P at VALUE, e.g. E=1.69 (repeatable)")
    p.add_argument("--bound", action="append", metavar="P=LOW:HIGH", help="keep P in [LOW, HIGH], e.g. E=1.5:2.5 (repeatable)")
    p.add_argument(
        "--outliers", choices=("keep", "flag", "drop", "downweight"), default="flag",
        help="runs whose residual stands out: keep, flag (default), drop and refit, or downweight and refit",
    )  # fmt: skip
    p.add_argument("--run-column", metavar="COLUMN", help="checkpoint table: the column naming each row's run")
    p.add_argument(
        "--skip-fraction", type=float, default=0.0, metavar="F",
        help="with --run-column: drop each run's checkpoints below F of its final tokens (e.g. 0.1)",
    )  # fmt: skip
    p.add_argument(
        "--no-lr-correction", action="store_true",
        help="with --run-column and an lr column: keep intermediate checkpoints of decaying-LR runs as logged "
        "(default: move each to the loss of a run whose schedule ends there, by the LR-annealing law)",
    )  # fmt: skip
    p.add_argument("--inputs", metavar="COL,...", help="a user law's input columns, e.g. N,D (when it does not declare them)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed for random starts and the bootstrap")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def read_table(args: argparse.Namespace, frame: bool = True):
    """The runs table; from a study directory, only the runs the law answers (study.selection), said on stderr.

    ``frame=False`` keeps a table file as plain columns (laws.tables.Table), which fit_law takes as it is:
    fitting a CSV then never imports pandas. A study directory's runs are always a DataFrame (the selection's).
    """
    from scalinglab.laws import tables

    study = Path(args.table).is_dir()
    table = runs_table(args, [] if args.run_column else _law_inputs(args.law))  # checkpoints share N: not a mix
    if frame or study:
        table = table.to_frame()
    if study:
        from scalinglab.errors import DataError
        from scalinglab.study.noise import seed_noise
        from scalinglab.study.selection import select_for_law

        attrs = table.attrs
        try:  # the seeds' spread, before the law's selection leaves them out: the intervals' noise floor
            noise = seed_noise(table)
            attrs = {**attrs, "noise_floor": noise.sd_log}
            print(f"scalinglab {args.command}: {noise.line()}: the floor of the prediction intervals", file=sys.stderr)
        except DataError:
            pass
        selected, used = select_for_law(table, args.law, args.design)
        notes = [*attrs.get("notes", []), used]
        print(f"scalinglab {args.command}: {used}", file=sys.stderr)
        if args.law == "kaplan_ns":  # fitted on the runs' evaluations, each run weighing 1 (as the report does)
            selected = learning_curve_rows(Path(args.table), table, selected)
            attrs = {**attrs, "runs": "run_id", "warnings": selected.attrs.get("warnings", [])}
            notes.append(selected.attrs["rows"])
            print(f"scalinglab {args.command}: {selected.attrs['rows']}", file=sys.stderr)
        table = selected.reset_index(drop=True)
        table.attrs = {**attrs, "notes": notes}
    elif args.design:
        from scalinglab.errors import DataError

        raise DataError(f"--design needs a study directory; '{args.table}' is a table file.")
    return tables.drop_highest(table, args.drop_highest_loss)


def _law_inputs(law: str) -> list[str]:
    """The input columns of a built-in law (N, D for auto's candidates); none for a user law, unknown here."""
    from scalinglab.laws.forms import FORMS

    return list(FORMS[law].inputs) if law in FORMS else ["N", "D"] if law == "auto" else []


def learning_curve_rows(study_dir: Path, runs: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """L(N, S)'s rows from a study directory, as the report fits them (report.analyses.learning_curve_points):
    the ``selected`` runs' evaluations from its steps table, S = S_min (Kaplan eq 5.4) when the study's
    batch scan measures B_crit(L), else the raw steps; ``attrs["rows"]`` says which."""
    import pandas as pd

    from scalinglab.errors import DataError, ScalinglabError
    from scalinglab.report.analyses import critical_batch, learning_curve_points
    from scalinglab.study.collect import collect_records
    from scalinglab.study.selection import in_design

    path = next((study_dir / name for name in ("steps.parquet", "steps.csv") if (study_dir / name).is_file()), None)
    if path is None:
        raise DataError(f"L(N, S) is fitted on learning curves, and '{study_dir}' has no steps.parquet; "
                        f"run `scalinglab collect {study_dir}` first.")
    curves = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    records = collect_records(study_dir, runs.loc[in_design(runs, "batch_scan"), "run_id"])  # B_crit reads only these
    try:
        if records.empty:
            raise DataError("no run directories of a batch scan here, whose metrics.jsonl B_crit is read from")
        bcrit = critical_batch(runs, records).law
        steps = f"S = S_min = S/(1 + B_crit(L)/B), B_crit(L) = {bcrit.B_star:.4g}/L^(1/{bcrit.alpha_B:.4g}) from the batch scan"
    except ScalinglabError as e:
        bcrit, steps = None, f"S = steps as trained (B_crit(L) not measured: {e})"
    points = learning_curve_points(selected, curves, bcrit)
    points.attrs["rows"] = (f"{len(points)} evaluations of {points['run_id'].nunique()} runs past their first 10% "
                            f"of steps; {steps}")
    return points


def fit_options(args: argparse.Namespace, table=None) -> dict[str, Any]:
    """Keyword arguments for ``fit_law`` from the shared arguments (and a study's noise floor, read with the table)."""
    starts: Any = int(args.starts) if args.starts.isdigit() else args.starts
    return {
        "starts": starts,
        "delta": args.delta,
        "weights": args.weights,
        "overpredict_penalty": args.overpredict_penalty,
        "level": args.level,
        "seed": args.seed,
        "progress": not args.no_progress and sys.stderr.isatty(),
        "noise_floor": 0.0 if table is None else table.attrs.get("noise_floor", 0.0),
        "tie": args.tie,
        "fix": args.fix,
        "bounds": args.bound,
        "outliers": args.outliers,
        "runs": args.run_column or (None if table is None else table.attrs.get("runs")),
        "skip_fraction": args.skip_fraction,
        "anneal": not args.no_lr_correction,
        "inputs": None if not args.inputs else [c.strip() for c in args.inputs.split(",") if c.strip()],
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "fit", "fit a scaling law to a runs table", DESCRIPTION, run)
    add_table_arguments(p)
    p.add_argument("--bootstrap", type=int, default=200, metavar="K", help="bootstrap refits for intervals (default 200)")
    p.add_argument("--out", metavar="FIT_JSON", help="write the fit (params, data, intervals) here, e.g. fit.json")
    p.add_argument(
        "--axis", metavar="COLUMN", help="column predictions will extrapolate along, e.g. N (default: the law's, e.g. C)"
    )
    p.add_argument(
        "--two-stage", action="store_true",
        help="data_constrained only: E, A, B, alpha, beta on the single-epoch runs first, then R_D_star, R_N_star "
        "with those held (Muennighoff et al. 2023)",
    )  # fmt: skip
    add_plot_flag(p, "fit.png (observed against predicted, residuals along --axis)")
    add_json_flag(p)


def summary(result) -> dict[str, Any]:
    """``fit.json`` without the bulky parts (data rows, bootstrap samples), for printing."""
    out = result.to_dict()
    out.pop("data")
    if out["bootstrap"] is not None:
        out["bootstrap"].pop("samples")
    return out


def run(args: argparse.Namespace) -> int:
    from scalinglab.laws.fit import fit_law

    keep_temporaries_on_heap()
    table = read_table(args, frame=args.two_stage or args.law == "auto")  # those two work on DataFrames
    if args.two_stage:
        from scalinglab.errors import ConfigError
        from scalinglab.laws.repeat import fit_two_stage

        if args.law != "data_constrained":
            raise ConfigError(f"--two-stage fits the data_constrained law; drop it or give --law data_constrained (got {args.law}).")
        result = fit_two_stage(table, bootstrap=args.bootstrap, axis=args.axis, **fit_options(args, table))
    elif args.law == "auto":
        from scalinglab.laws.auto import fit_auto

        result = fit_auto(table, bootstrap=args.bootstrap, axis=args.axis, **fit_options(args, table))
    else:
        result = fit_law(args.law, table, bootstrap=args.bootstrap, axis=args.axis, **fit_options(args, table))
    print_warnings("fit", [w for w in result.warnings if w["kind"] != "not_converged"])
    if args.out:
        result.to_json(args.out)
    if args.plot:
        from scalinglab.report.plots import plot_fit

        wrote_figure("fit", str(plot_fit(result, args.plot, args.axis)))
    if args.json:
        print_json(summary(result))
    else:
        print_fit(result)
        if args.out:
            print(f"wrote {args.out}")
    if not result.converged:
        print(f"scalinglab fit: warning: the fit did not converge ({result.status}); try --starts full.", file=sys.stderr)
        return 1
    return 0


def _constraint(value: Any) -> str:
    """A tie's partner, a fixed value or a bound's [low, high], numbers to 6 digits (fit.json keeps them whole)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_constraint(v) for v in value) + "]"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def print_fit(result) -> None:
    print(f"law: {result.label}   {result.form.doc}")
    rows = "checkpoint rows" if result.run_column else "runs"  # how many runs: the fit's note
    print(f"data: {result.n_points} {rows}; {result.convention}")
    for note in result.notes:
        print(f"  note: {note}")
    for c in result.candidates:
        cv = "not scored" if c["cv_error"] is None else f"rollout CV mean |log error| {c['cv_error']:.4f} ({c['folds']} steps)"
        same = f" (same fit as {c['same_as']})" if c.get("same_as") else ""
        print(f"  candidate {c['name']:<28} {cv}, weight {c['weight']:.2f}{same}{'  <- chosen' if c['chosen'] else ''}")
    for kind, held in result.constraints.items():
        if held:
            print(f"  {kind}: {', '.join(f'{k}={_constraint(v)}' for k, v in held.items())}")
    state = "converged" if result.converged else "NOT CONVERGED"
    print(
        f"fit: {state}, objective {result.objective:.6e} (summed Huber, delta {result.delta:g}), gradient "
        f"{result.grad_norm:.1e}, {result.starts_at_optimum} of {result.n_starts} starts reached the optimum"
    )
    level = f"{result.level:.0%} interval"
    print(f"\n{'parameter':<16}{'value':>16}   {level if result.intervals else ''}")
    for name, value in {**result.params, **result.derived}.items():
        lo_hi = result.intervals.get(name)
        interval = f"[{lo_hi[0]:.6g}, {lo_hi[1]:.6g}]" if lo_hi else ""
        print(f"{name:<16}{value:>16.8g}   {interval}")
    if result.samples is not None:
        print(f"({len(result.samples)} bootstrap refits over runs; {result.bootstrap_dropped} dropped as unconverged)")
    noise = result.noise
    along = noise.axis or result.form.axis_label
    print(f"\nnew-run noise (log space): {noise.s0:.4f}, growing by {noise.slope:.4f} per e-fold of {along} beyond the data")
    for flag in result.outliers:
        action = f"; {flag['action']}" if "action" in flag else ""
        print(f"outlier: row {flag['row']}: {flag['reason']} {flag['value']:.4g} ({flag['sigmas']:.1f} robust sd){action}")
