"""Time the law fitter on Chinchilla's published runs (Epoch's digitisation, 240 points).

Prints the wall and CPU time of the fit from Hoffmann's full 4,500-start grid (target: <= 5 s on 2
cores) and of 1,000 bootstrap refits (target: <= 60 s), best of ``--repeat``, and, with
``--scipy-starts K``, a one-start-at-a-time scipy L-BFGS-B fit from K grid starts for comparison.

    python benchmarks/fit_speed.py
    python benchmarks/fit_speed.py --runs path/to/runs.csv --repeat 5 --scipy-starts 250
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form
from scalinglab.laws.objective import Problem, polish
from scalinglab.laws.tables import drop_highest, read_runs_table

DEFAULT_RUNS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "runs" / "chinchilla_fig4_epoch.csv"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="runs table (default: the shared Epoch CSV)")
    parser.add_argument("--repeat", type=int, default=3, help="take the best of this many timings")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap refits to time")
    parser.add_argument("--scipy-starts", type=int, default=0, metavar="K", help="also time scipy from K starts")
    args = parser.parse_args()
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
