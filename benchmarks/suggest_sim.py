"""Does `study suggest` choose better runs than a ladder or a grid of the same cost? A simulation on known laws.

For each synthetic Chinchilla law (L = E + A/N^alpha + B/D^beta, CPU-scale constants) and seed: draw a
small study (3 sizes x 3 tokens-per-parameter, 1% log-normal noise), fit it with a bootstrap, ask
:func:`scalinglab.study.suggest.suggest` for k runs, and build a ladder (20 tokens per parameter) and a
grid (sizes x ratios) of exactly the cost of the suggested runs. Each design's true interval is the sd of
the refitted answer over fresh noise on the whole study (the existing runs plus the new ones, the same
noise draws for every design). Prints per trial and the mean ratio baseline sd / suggested sd (> 1: the
suggested runs pin the answer down more), and the linearised shrink against the simulated one.

    python benchmarks/suggest_sim.py
    python benchmarks/suggest_sim.py --targets loss n_opt --seeds 3 --reps 40 --budget 1e15 --k 4 --json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from scalinglab.laws.forms import get_form
from scalinglab.study.suggest import simulate_trial, simulated_spread

LAWS = [
    {"E": 2.0, "A": 60.0, "B": 100.0, "alpha": 0.34, "beta": 0.28},
    {"E": 1.5, "A": 200.0, "B": 400.0, "alpha": 0.40, "beta": 0.35},
    {"E": 2.5, "A": 30.0, "B": 60.0, "alpha": 0.30, "beta": 0.30},
]
"""Synthetic laws at CPU scale (losses 3-5 nats over N = 1e4-1e5); not any paper's constants."""


def existing_study() -> pd.DataFrame:
    """3 sizes x 3 tokens-per-parameter ratios (5, 20, 80): a small first round of a study."""
    n = np.repeat([1e4, 3e4, 1e5], 3)
    return pd.DataFrame({"N": n, "D": n * np.tile([5.0, 20.0, 80.0], 3)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="+", default=["loss", "n_opt"], choices=["loss", "n_opt"])
    p.add_argument("--seeds", type=int, default=2, help="seeds per law")
    p.add_argument("--reps", type=int, default=32, help="noise draws per design for its true spread")
    p.add_argument("--budget", type=float, default=1e15, help="target compute, FLOPs (the study's largest run: 4.8e12)")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--sigma", type=float, default=0.01, help="log-normal run-to-run noise")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    form, existing = get_form("chinchilla"), existing_study()
    rows = []
    for target in args.targets:
        for i, truth in enumerate(LAWS):
            for seed in range(args.seeds):
                start = time.monotonic()
                t = simulate_trial(form, truth, existing, args.sigma, args.budget, k=args.k, target=target,
                                   bootstrap=args.bootstrap, reps=args.reps, seed=100 * i + seed)  # fmt: skip
                before = simulated_spread(form, truth, existing, [], args.sigma, args.budget, target, args.reps, 100 * i + seed + 1)
                s = t.suggestion
                row = {"target": target, "law": i, "seed": seed, "sd_suggested": t.suggested, "sd_ladder": t.ladder,
                       "sd_grid": t.grid, "sd_before": before, **{f"ratio_{k}": v for k, v in t.ratios.items()},
                       "shrink_expected": s.shrink, "shrink_simulated": t.suggested / before, "rule": s.rule,
                       "cost": s.cost, "spend": s.spend, "seconds": time.monotonic() - start,
                       "runs": [(round(c.N), round(c.D / c.N, 2)) for c in s.runs]}  # fmt: skip
                rows.append(row)
                if not args.json:
                    print(f"{target:5s} law {i} seed {seed}: sd suggested {t.suggested:.4f}, ladder {t.ladder:.4f}, "
                          f"grid {t.grid:.4f} (x{row['ratio_ladder']:.2f}, x{row['ratio_grid']:.2f}); shrink expected "
                          f"x{s.shrink:.2f}, simulated x{row['shrink_simulated']:.2f}; rule {s.rule}; runs (N, D/N) "
                          f"{row['runs']} [{row['seconds']:.0f} s]", flush=True)  # fmt: skip
    df = pd.DataFrame(rows)
    summary = {
        t: {"trials": int(len(g)), "ratio_ladder": float(g["ratio_ladder"].mean()), "ratio_grid": float(g["ratio_grid"].mean()),
            "min_ratio": float(g[["ratio_ladder", "ratio_grid"]].min().min()),
            "shrink_expected": float(g["shrink_expected"].mean()), "shrink_simulated": float(g["shrink_simulated"].mean())}
        for t, g in df.groupby("target")
    }  # fmt: skip
    if args.json:
        print(json.dumps({"trials": rows, "summary": summary}, indent=2))
        return
    for t, m in summary.items():
        print(f"\n{t}: over {m['trials']} trials the suggested runs' interval is x{m['ratio_ladder']:.2f} narrower than a "
              f"ladder's and x{m['ratio_grid']:.2f} narrower than a grid's of equal cost (mean ratio; smallest {m['min_ratio']:.2f}); "
              f"expected shrink x{m['shrink_expected']:.2f}, simulated x{m['shrink_simulated']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
