"""Benchmark: a 12-run ladder on the local executor at 1 and at 2 workers, against the plan's estimate.

Prints the measured wall time of each, their ratio (the parallel speed-up), and how far
`scalinglab study plan`'s wall-time estimate was from each measurement. Every measurement trains a
fresh copy of the study (a finished study would be a no-op). Timings on a shared machine are noisy:
compare numbers from one invocation.

    .venv/bin/python benchmarks/study_ladder.py            # about 3 minutes on 2 quiet cores
    .venv/bin/python benchmarks/study_ladder.py --steps 200 --workers 1 2 4
    .venv/bin/python benchmarks/study_ladder.py --study studies/ladder.toml --workers 2   # any study file
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from scalinglab.study import StudyConfig, load_study, plan_study, plan_totals, run_study, study_from_dict

SHAPES = [[2, 16], [2, 32], [2, 48], [2, 64], [3, 48], [3, 64], [4, 64], [3, 80], [4, 80], [2, 96], [3, 96], [4, 96]]
"""Twelve (n_layer, d_model) shapes, N from 7e3 to 4.5e5 non-embedding parameters."""


def ladder(out_dir: Path, steps: int) -> StudyConfig:
    return study_from_dict(
        {
            "name": "bench_ladder",
            "out_dir": str(out_dir),
            "recipe": "kaplan2020",
            "base": {
                "model": {"n_ctx": 64, "d_model": 64, "n_head": 4, "vocab_size": 1024},
                "data": {"corpus": "stdlib", "vocab_size": 1024},
                "optim": {"batch_size": 16},
                "budget": {"steps": steps},
                "eval": {"points": 4, "tokens": 8192, "per_position": False},
            },
            "design": [{"kind": "ladder", "shapes": SHAPES}],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per run (default 100)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time (default 1 2)")
    parser.add_argument("--study", type=Path, help="time this study file instead of the built-in ladder")
    args = parser.parse_args()

    def study_in(out_dir: Path) -> StudyConfig:
        if args.study:
            return dataclasses.replace(load_study(args.study), out_dir=str(out_dir))
        return ladder(out_dir, args.steps)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table = plan_study(study_in(Path(tmp) / "plan"), remeasure=True)  # timed now, on this machine
        print(f"plan: {len(table)} runs, {table['steps'].sum()} steps, measured in {time.perf_counter() - t0:.1f} s")
        rows = []
        for k in args.workers:
            estimate = plan_totals(table, k, remeasure=True)["est_wall_seconds"]
            study = study_in(Path(tmp) / f"w{k}")
            t0 = time.perf_counter()
            status = run_study(study, "local", workers=k, progress=False)
            wall = time.perf_counter() - t0
            assert (status["state"] == "done").all(), status
            rows.append((k, wall, estimate))

    print(f"\n{'workers':>7}  {'measured s':>10}  {'plan est. s':>11}  {'est. error':>10}")
    for k, wall, estimate in rows:
        print(f"{k:>7}  {wall:>10.1f}  {estimate:>11.1f}  {(estimate - wall) / wall:>+10.0%}")
    if len(rows) >= 2:
        (k1, w1, _), (k2, w2, _) = rows[0], rows[1]
        print(f"\nspeed-up {k1} -> {k2} workers: {w1 / w2:.2f}x (wall {w1:.1f} s / {w2:.1f} s)")


if __name__ == "__main__":
    main()
