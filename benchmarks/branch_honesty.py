"""Benchmark: are cooldown branches honest? A wsd_ladder branch's final loss against dedicated runs to the same D.

On the built-in corpus, one model size trains a wsd_ladder (branches at three D, from one constant-LR
stable phase) under three seeds, a dedicated cosine run to each of the two longer D under the same
three seeds, and a dedicated WSD run to the longest D (seed 0). Prints, per D: the cosine and the
branch losses (mean and run-to-run sd over seeds), the branch minus cosine gap paired by seed with its
standard error, the branch minus the dedicated WSD run, and the compute of the ladder's points against
the same points as separate runs. A branch is the dedicated WSD run step for step (the same schedule,
data order and state), so that gap should be zero; the gap to the cosine is the schedule's own
(Hägele et al. 2024 find a 20% cooldown matches a cosine).

    .venv/bin/python benchmarks/branch_honesty.py                    # about 5 minutes on 2 loaded cores
    .venv/bin/python benchmarks/branch_honesty.py --tokens 2e5 4e5 6e5 --d-model 64
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.study import plan_study, plan_totals, run_study, study_from_dict
from scalinglab.study.collect import collect

SEEDS = (0, 1, 2)


def study(out_dir: Path, tokens: list[float], d_model: int, decay: float, warmup: int, lr: float = 0.0) -> Any:
    """The wsd_ladder (one per seed), the cosine runs per seed at the two longer D, the WSD run at the longest."""
    shape = [[2, d_model]]
    designs: list[dict[str, Any]] = [
        {"kind": "wsd_ladder", "name": f"wsd-s{s}", "shapes": shape, "tokens": tokens, "decay_fraction": decay,
         "overrides": [f"seed={s}"]}
        for s in SEEDS
    ]  # fmt: skip
    for d in tokens[1:]:
        designs.append({"kind": "seeds", "name": f"cos-D{d:.0f}", "shapes": shape, "seeds": list(SEEDS),
                        "budget": {"tokens": d}})  # fmt: skip
    designs.append({"kind": "nd_grid", "name": "wsd-dedicated", "shapes": shape, "tokens": [tokens[-1]],
                    "overrides": ["schedule.kind=wsd", f"schedule.decay_fraction={decay}"]})  # fmt: skip
    return study_from_dict(
        {
            "name": "branch_honesty",
            "out_dir": str(out_dir),
            "recipe": "tiny-v1",  # LR 0.4 / d_model, cosine to zero (study.recipes)
            "base": {
                "model": {"n_layer": 2, "n_ctx": 64, "d_model": d_model, "n_head": 2, "vocab_size": 512},
                "data": {"corpus": "stdlib", "vocab_size": 512},
                "optim": {"batch_size": 8, **({"lr": lr} if lr else {})},  # an LR set here, the recipe leaves alone
                "schedule": {"warmup_steps": warmup},  # one warmup for every run, so the schedules differ only after it
                "budget": {"steps": 100},
                "eval": {"points": 3, "tokens": 32768, "per_position": False},
            },
            "design": designs,
        }
    )


def _mean_sd(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=float, nargs="+", default=[1e5, 2e5, 3e5], help="the branches' D (tokens)")
    p.add_argument("--d-model", type=int, default=48)
    p.add_argument("--decay", type=float, default=0.2, help="each branch's decay fraction")
    p.add_argument("--warmup", type=int, default=8, help="warmup steps of every run")
    p.add_argument("--lr", type=float, default=0.0, help="peak LR of every run (default: tiny-v1's 0.4 / d_model)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="study directory (default: a temporary one)")
    args = p.parse_args()
    tokens = sorted(args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "branch_honesty"
        s = study(out, tokens, args.d_model, args.decay, args.warmup, args.lr)
        totals = plan_totals(plan_study(s, measure=False))
        start = time.perf_counter()
        run_study(s, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        runs, _ = collect(out)
    runs = runs[runs["status"] == "done"]
    # D is the tokens processed (whole steps); each run answers the nearest asked-for D
    runs = runs.assign(D=[min(tokens, key=lambda t, d=d: abs(math.log(d / t))) for d in runs["D"]])
    lr = f"LR {args.lr:.3g}" if args.lr else f"LR {0.4 / args.d_model:.3g} (tiny-v1)"
    print(f"branch honesty on stdlib, L2-d{args.d_model}, {lr}, decay {args.decay:.0%}, seeds {list(SEEDS)} "
          f"({len(runs)} runs, {seconds:.0f} s)")  # fmt: skip
    for b in totals["branches"]:
        if b["design"] == "wsd-s0":
            print(f"compute: {b['points']} branch points for {b['ratio']:.0%} of the same points as separate runs")
    branch = runs[runs["branch_step"] > 0]
    print(f"{'D':>8} {'cosine mean':>12} {'sd':>7} {'branch mean':>12} {'sd':>7} {'branch-cosine':>14} {'se':>7} "
          f"{'branch-WSD':>11}")  # fmt: skip
    for d in tokens:
        br = branch[branch["D"] == d].set_index("seed")["loss"]
        cos = runs[runs["design"].str.startswith("cos") & (runs["D"] == d)].set_index("seed")["loss"]
        wsd = runs[(runs["design"] == "wsd-dedicated") & (runs["D"] == d)]["loss"]
        b_mean, b_sd = _mean_sd(br.to_numpy())
        line = f"{d:8.3g} "
        if len(cos):
            c_mean, c_sd = _mean_sd(cos.to_numpy())
            paired = (br - cos).dropna().to_numpy()
            gap, gap_sd = _mean_sd(paired)
            line += f"{c_mean:12.4f} {c_sd:7.4f} {b_mean:12.4f} {b_sd:7.4f} {gap:+14.4f} {gap_sd / math.sqrt(len(paired)):7.4f}"
        else:
            line += f"{'-':>12} {'-':>7} {b_mean:12.4f} {b_sd:7.4f} {'-':>14} {'-':>7}"
        line += f" {br.get(0) - wsd.iloc[0]:+11.2e}" if len(wsd) and 0 in br.index else f" {'-':>11}"
        print(line)


if __name__ == "__main__":
    main()
