"""Time the law fitter on Chinchilla's published runs (Epoch's digitisation, 240 points) and on checkpoint tables.

Prints the wall and CPU time of the fit from Hoffmann's full 4,500-start grid (target: <= 5 s on 2
cores) and of 1,000 bootstrap refits (target: <= 60 s), best of ``--repeat``, and, with
``--scipy-starts K``, a one-start-at-a-time scipy L-BFGS-B fit from K grid starts for comparison.

``--cli`` times whole commands, each a fresh process as a user runs it (imports, reading the CSV,
the fit, printing), alternating, median and best of ``--repeat`` after one untimed round that
writes the bytecode caches an installed package has (``PYTHONDONTWRITEBYTECODE`` is dropped for
the children: without the caches each start recompiles the package, about 0.3 s), with the load
average before and after: ``scalinglab --help`` (target <= 0.3 s),
``scalinglab fit`` on Epoch's runs from 4,500 starts with no bootstrap (<= 0.8 s) and with the
default 200 refits (<= 1.2 s), against a careful scipy fit from ``--scipy-starts`` starts (243 by
default: the law's 3^5 grid) written as a user would: numpy, pandas and scipy.optimize, one L-BFGS-B run per start at
tight tolerance with an analytic gradient (goal: scalinglab >= 3x faster). CPU seconds (user + sys)
are printed beside wall seconds: on a shared machine they move less with the load.

``--rows`` fits synthetic checkpoint tables (240 runs on Hoffmann's law, each logged at several
points of its training, 1% noise) from the same 4,500 starts, printing time, peak memory (the
process's peak RSS grows only when a fit needs more than any before, so sizes run smallest first) and
the optimum against a fit that screens every start on every row (``--reference``, slow past 24,000
rows); ``--bootstrap-rows`` times a bootstrap by run on one of them.

    python benchmarks/fit_speed.py
    python benchmarks/fit_speed.py --cli --repeat 5
    python benchmarks/fit_speed.py --runs path/to/runs.csv --repeat 5 --scipy-starts 250
    python benchmarks/fit_speed.py --rows 2400 24000 240000 --reference 24000 --bootstrap-rows 24000
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.constants import HOFFMANN_APPROACH3
from scalinglab.laws import objective
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form
from scalinglab.laws.objective import Problem, polish
from scalinglab.laws.tables import drop_highest, read_runs_table

DEFAULT_RUNS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "runs" / "chinchilla_fig4_epoch.csv"
SCIPY_FIT = Path(__file__).with_name("scipy_fit.py")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU seconds over ``repeat`` calls, and the last result."""
    best_wall, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, out


def scipy_one_by_one(runs, n_starts: int) -> float:
    """The usual approach: L-BFGS-B from each start in turn; returns the best objective."""
    form = get_form("chinchilla")
    problem = Problem(form, form.log_inputs(runs), np.log(runs["loss"].to_numpy()), np.ones(len(runs)))
    grid = form.start_grid("full")
    starts = grid[np.random.default_rng(0).choice(len(grid), n_starts, replace=False)]
    return min(polish(problem, theta).fun for theta in starts)


def run_timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one child process, run as an installed package runs (bytecode cached)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    wall = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"{' '.join(argv)} failed (status {status})")
    return time.perf_counter() - wall, usage.ru_utime + usage.ru_stime


def cli_timings(path: Path, repeat: int, n_starts: int | None) -> None:
    """Whole commands in fresh processes, alternating, median and best of ``repeat``; scipy's end to end once (a minute)."""
    cli = [str(Path(sys.executable).with_name("scalinglab"))]
    fit = [*cli, "fit", str(path), "--drop-highest-loss", "5", "--starts", "hoffmann"]
    commands = {
        "scalinglab --help": ([*cli, "--help"], 0.3),
        "scalinglab fit, 4,500 starts, --bootstrap 0": ([*fit, "--bootstrap", "0"], 0.8),
        "scalinglab fit, 4,500 starts, 200 refits": (fit, 1.2),
    }
    for argv, _target in commands.values():  # untimed: the bytecode caches a user's install already has
        run_timed(argv)
    load = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, _target) in commands.items():
            times[name].append(run_timed(argv))
    scipy_name = f"scipy L-BFGS-B, {n_starts or 243} starts (once)"
    extra = [] if n_starts is None else [str(n_starts)]
    times[scipy_name] = [run_timed([sys.executable, str(SCIPY_FIT), str(path), *extra])]
    scipy_wall, scipy_cpu = times[scipy_name][0]
    print(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} cores")
    print(f"{'command (fresh process, ' + str(repeat) + ' runs)':<48} {'wall s: median':>14} {'best':>6} {'CPU s: median':>14} "
          f"{'best':>6}  target    scipy / it (median wall, CPU)")  # fmt: skip
    for name, runs in times.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        target = commands[name][1] if name in commands else None
        bar = f"<= {target:g} s" if target else ""
        print(f"{name:<48} {wall:>14.3f} {min(w for w, _ in runs):>6.3f} {cpu:>14.3f} {min(c for _, c in runs):>6.3f}  "
              f"{bar:<9} {scipy_wall / wall:.1f}x, {scipy_cpu / cpu:.1f}x")  # fmt: skip


def checkpoint_table(rows: int, runs: int = 240, seed: int = 0) -> pd.DataFrame:
    """``runs`` runs on Hoffmann's law (Approach 3), each with rows / runs checkpoints, 1% log noise."""
    rng = np.random.default_rng(seed)
    per_run = rows // runs
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), runs))
    d_final = n * np.exp(rng.uniform(np.log(2), np.log(200), runs))  # 2-200 tokens per parameter
    frac = np.geomspace(0.05, 1.0, per_run)  # checkpoints log-spaced over each run
    N, D = np.repeat(n, per_run), (d_final[:, None] * frac[None, :]).ravel()
    h = HOFFMANN_APPROACH3
    loss = (h["E"] + h["A"] / N ** h["alpha"] + h["B"] / D ** h["beta"]) * np.exp(rng.normal(0, 0.01, len(N)))
    return pd.DataFrame({"run": np.repeat(np.arange(runs), per_run), "N": N, "D": D, "loss": loss})


def peak_mb() -> float:
    """This process's peak resident memory so far, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def checkpoint_fits(sizes: list[int], reference: int, bootstrap_rows: int, bootstrap: int) -> None:
    """Fit each table size from the full grid; compare the optimum with full screening up to ``reference`` rows."""
    print(f"{'rows':>8} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  objective          vs full screening")
    for rows in sorted(sizes):
        table = checkpoint_table(rows)
        wall, cpu, fit = timed(lambda t=table: fit_law("chinchilla", t, starts="hoffmann", runs="run"), 1)
        line = f"{rows:>8,} {wall:>7.2f} {cpu:>7.2f} {peak_mb():>8.0f}  {fit.objective:.12e}"
        if rows <= reference:
            saved, objective.SCREEN_ROWS = objective.SCREEN_ROWS, rows  # every start on every row
            try:
                full = fit_law("chinchilla", table, starts="hoffmann", runs="run")
            finally:
                objective.SCREEN_ROWS = saved
            same = max(abs(fit.params[k] / full.params[k] - 1) for k in fit.params)
            line += f"  objective {full.objective:.12e}, params within {same:.1e}"
        print(line)
    if bootstrap_rows:
        table = checkpoint_table(bootstrap_rows)
        wall, cpu, fit = timed(lambda: fit_law("chinchilla", table, runs="run", bootstrap=bootstrap), 1)
        print(f"{bootstrap} bootstrap refits by run on {bootstrap_rows:,} rows: {wall:.2f} s wall, {cpu:.2f} s CPU, "
              f"peak {peak_mb():.0f} MB (target <= 60 s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="runs table (default: the shared Epoch CSV)")
    parser.add_argument("--repeat", type=int, default=3, help="take the best of this many timings")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap refits to time")
    parser.add_argument("--scipy-starts", type=int, default=0, metavar="K", help="also time scipy from K starts")
    parser.add_argument("--rows", type=int, nargs="*", default=[], metavar="R", help="also fit checkpoint tables of R rows")
    parser.add_argument("--reference", type=int, default=2400, metavar="R", help="compare with full screening up to R rows")
    parser.add_argument("--bootstrap-rows", type=int, default=0, metavar="R", help="time --bootstrap refits by run on R rows")
    parser.add_argument("--skip-epoch", action="store_true", help="only the checkpoint tables")
    parser.add_argument("--cli", action="store_true", help="time whole commands as fresh processes, against scipy's")
    args = parser.parse_args()
    if args.cli:
        cli_timings(args.runs, args.repeat, args.scipy_starts or None)
        return
    if args.rows or args.bootstrap_rows:
        checkpoint_fits(args.rows, args.reference, args.bootstrap_rows, args.bootstrap)
    if args.skip_epoch:
        return
    if not args.runs.is_file():
        raise SystemExit(f"runs table not found: {args.runs} (pass --runs)")
    runs = drop_highest(read_runs_table(args.runs), 5)  # Epoch drop the 5 highest-loss runs

    wall, cpu, fit = timed(lambda: fit_law("chinchilla", runs, starts="hoffmann"), args.repeat)
    print(f"full grid fit: {fit.n_starts} starts, {fit.n_points} runs: {wall:.2f} s wall, {cpu:.2f} s CPU (target <= 5 s)")
    print(f"  objective {fit.objective:.8e}, converged {fit.converged}, "
          + ", ".join(f"{k} {v:.6g}" for k, v in fit.params.items()))  # fmt: skip

    wall, cpu, boot = timed(lambda: fit_law("chinchilla", runs, bootstrap=args.bootstrap), 1)
    print(f"default fit + {args.bootstrap} bootstrap refits: {wall:.2f} s wall, {cpu:.2f} s CPU (target <= 60 s); "
          f"{boot.bootstrap_dropped} dropped")  # fmt: skip
    print("  95% intervals: " + ", ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in boot.intervals.items()))

    if args.scipy_starts:
        wall, cpu, best = timed(lambda: scipy_one_by_one(runs, args.scipy_starts), 1)
        print(f"scipy L-BFGS-B one start at a time, {args.scipy_starts} starts: {wall:.2f} s wall, {cpu:.2f} s CPU, "
              f"best objective {best:.8e}")  # fmt: skip


if __name__ == "__main__":
    main()
