"""``scalinglab hparams``: optimal learning rate and batch as laws of N and D, from LR x batch grids."""

from __future__ import annotations

import argparse
import sys

from scalinglab.cli._common import add_json_flag, add_plot_flag, command, print_json, wrote_figure

DESCRIPTION = """\
Fit the optimal learning rate and batch size as power laws of model size N and data D,
eta_opt = c N^a D^b and B_opt = c N^x D^y, from learning-rate x batch grids at several (N, D) cells
(Step Law, Li et al. 2025). In each cell a smooth surface over (log LR, log batch) is fitted to the
runs near the best one; the optimum is its minimum (or, on a flat landscape, the centre of its
near-optimal basin), with a bootstrap interval. The laws are weighted least squares over the cells,
with t intervals; B_opt is compared with Kaplan's B_crit(L) (--bcrit) and with the online noise
scale B_simple where the runs measured it.

The table (CSV, Parquet, JSONL, or a collected study directory with hp_grid designs) needs the
columns N, D, lr, batch (tokens per step) and loss; --columns maps other names.

Examples:
  scalinglab hparams grid.csv --json
  scalinglab hparams steplaw.csv --columns N=params,D=tokens,lr=learning_rate,batch=batch_tokens,loss=smooth_loss
  scalinglab hparams runs/hp_grid --design hp_grid --bcrit kaplan2020 --out hparams.json
  scalinglab hparams grid.csv --plot hparams.png
  scalinglab plan --fit fit.json --hparams hparams.json --budget 1e16
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "hparams", "optimal learning rate and batch size as laws of N and D", DESCRIPTION, run)
    p.add_argument("table", metavar="RUNS", help="runs table (.csv, .parquet, .jsonl) or a collected study directory")
    p.add_argument("--columns", metavar="NAME=COL,...", help="map table columns, e.g. lr=learning_rate,batch=bs_tokens")
    p.add_argument("--design", metavar="LABEL", help="in a study directory: the one design to use (default: every hp_grid design)")
    p.add_argument("--near", type=float, default=0.01, help="near-optimal region: runs within this fraction of a cell's best loss (default 0.01)")
    p.add_argument(
        "--window", type=float, default=None,
        help="runs this fraction above a cell's best count half in its surface (default: adaptive, from 0.005 up)",
    )  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=200, metavar="K", help="bootstrap refits per cell (default 200)")
    p.add_argument("--bcrit", metavar="FIT_JSON|kaplan2020", help="a B_crit(L) law to compare B_opt with")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out", metavar="HPARAMS_JSON", help="write the laws and cells here (for plan --hparams, recipe 'fitted:')")
    add_plot_flag(p, "hparams.png (each cell's optimal LR against N and D, the law through them)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scalinglab.laws.hparams import fit_hparams, study_grid
    from scalinglab.laws.tables import read_runs_table

    path = Path(args.table)
    if path.is_dir() and not args.columns:
        table = study_grid(path, args.design)
    else:
        table = read_runs_table(path, args.columns)
    bcrit = None
    if args.bcrit:
        from scalinglab.laws.plan import load_bcrit

        bcrit = load_bcrit(args.bcrit)
    fit = fit_hparams(
        table, near=args.near, window=args.window, bootstrap=args.bootstrap, level=args.level, seed=args.seed,
        bcrit=bcrit, source=str(path),
    )  # fmt: skip
    if args.out:
        fit.to_json(args.out)
    for w in fit.warnings:
        print(f"scalinglab hparams: warning: {w['message']}", file=sys.stderr)
    if args.plot:
        from scalinglab.report.plots import plot_hparams

        wrote_figure("hparams", str(plot_hparams(fit, table, args.plot)))
    if args.json:
        print_json(fit.to_dict())
    else:
        print(format_fit(fit))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _law_line(name: str, law, unit: str) -> str:
    if law is None:
        return f"{name}: not fitted (see the warnings)"

    def part(value, interval, label):
        if value is None:
            return f"{label} unidentified"
        return f"{label} = {value:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}]"

    return (
        f"{name} = {law.coef:.4g}{unit} · N^a · D^b   coef [{law.coef_interval[0]:.4g}, {law.coef_interval[1]:.4g}]\n"
        f"  {part(law.N_exp, law.N_exp_interval, 'a (N)')}   {part(law.D_exp, law.D_exp_interval, 'b (D)')}\n"
        f"  {law.n_cells} cells, {law.dof} degrees of freedom, scatter between cells {law.scatter:.3f} (log), {law.level:.0%} intervals"
    )


def format_fit(fit) -> str:
    """The laws and the cell table, human-readable."""
    lines = [_law_line("eta_opt", fit.lr, ""), _law_line("B_opt", fit.batch, " tokens")]
    for key, value in fit.comparison.items():
        if not key.endswith("_cells"):
            lines.append(f"median {key.replace('_over_', ' / ')}: {value:.3g} over {fit.comparison[key + '_cells']} cells")
    lines.append("")
    lines.append(f"{'cell':<28}{'N':>10}{'D':>10}{'runs':>6}{'lr_opt':>11}{'lr interval':>24}{'B_opt':>10}{'best loss':>11}{'near':>6}")
    for c in fit.cells:
        b = "n/a" if c.batch is None else f"{c.batch:.4g}"
        lines.append(
            f"{c.cell:<28}{c.N:>10.3g}{c.D:>10.3g}{c.n_runs:>6}{c.lr:>11.4g}"
            f"{f'[{c.lr_interval[0]:.3g}, {c.lr_interval[1]:.3g}]':>24}{b:>10}{c.best_loss:>11.4f}{c.near['n_runs']:>6}"
        )
    return "\n".join(lines)
