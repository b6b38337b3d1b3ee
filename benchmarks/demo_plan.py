"""Estimated wall time of the demo (full and quick) on this machine: data preparation plus the study plan.

Run it pinned to two cores to check the demo's budget, e.g.::

    taskset -c 0,1 python benchmarks/demo_plan.py
    python benchmarks/demo_plan.py --full --remeasure --compare old-demo.toml   # before -> after, one measurement

Step times are measured on the real models (scalinglab.study.plan), one thread per run, and the runs
are scheduled longest first on 2 workers, as ``study run`` submits them. The step times are cached per
shape; ``--remeasure`` times every shape again first, so that a loaded machine's old timings do not mix
with new ones, and ``--compare`` plans another study file (e.g. the demo's previous version, from
``git show REV:src/scalinglab/studies/demo.toml``) with the same timings, so the ratio holds even when
the absolute seconds move with the machine's load.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from scalinglab.data import prepare
from scalinglab.demo import study_text
from scalinglab.study import expand_study, plan_study, plan_totals, study_from_dict


def estimate(text: str, label: str, remeasure: bool, rows: bool) -> float:
    """Print the plan of one study file and return its estimated wall seconds on 2 workers."""
    study = study_from_dict(tomllib.loads(text))
    t0 = time.perf_counter()
    prepare(expand_study(study)[0].config.data, progress=False)
    prep = time.perf_counter() - t0
    table = plan_study(study, measure=True, remeasure=remeasure, threads=1, progress=False)
    totals = plan_totals(table, workers=2)
    print(f"{label}: {totals['runs']} runs, {totals['tokens'] / 1e6:.1f}M tokens, {totals['steps']} steps, "
          f"C = {totals['C']:.3g} FLOPs, data {prep:.0f} s, training {totals['est_wall_seconds']:.0f} s on 2 workers "
          f"({totals['est_run_seconds']:.0f} run-seconds)")
    if rows:
        for row in table.sort_values("est_seconds", ascending=False).itertuples():
            print(f"  {row.name:32s} {row.tokens / 1e6:6.2f}M tokens {row.steps:6d} steps {row.est_seconds:7.1f} s")
    return float(totals["est_wall_seconds"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="only the full demo")
    p.add_argument("--quick", action="store_true", help="only the quick demo")
    p.add_argument("--remeasure", action="store_true", help="time every shape again before planning")
    p.add_argument("--compare", metavar="TOML", help="also plan this study file with the same timings (before -> after)")
    p.add_argument("--no-rows", action="store_true", help="totals only")
    args = p.parse_args()
    for quick in [q for q in (True, False) if not (args.full and q) and not (args.quick and not q)]:
        label = "quick demo" if quick else "full demo"
        before = None
        if args.compare:
            before = estimate(Path(args.compare).read_text(), f"{label}, {args.compare}", args.remeasure, not args.no_rows)
        after = estimate(study_text(quick), label, args.remeasure and before is None, not args.no_rows)
        if before:
            print(f"{label}: estimated {before:.0f} s -> {after:.0f} s ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
