"""Estimated wall time of the demo (full and quick) on this machine: data preparation plus the study plan.

Run it pinned to two cores to check the demo's budget, e.g.::

    taskset -c 0,1 python benchmarks/demo_plan.py
    python benchmarks/demo_plan.py --full --remeasure --compare old-demo.toml   # before -> after, one measurement

Step times are measured on the real models (scalinglab.study.plan), one thread per run, and the runs
are scheduled longest first on 2 workers, as ``study run`` submits them. The step times are cached per
shape; ``--remeasure`` times every shape again first, so that a loaded machine's old timings do not mix
with new ones, and ``--compare`` plans another study file (e.g. the demo's previous version, from
``git show REV:src/scalinglab/studies/demo.toml``) with the same timings, so the ratio holds even when
the absolute seconds move with the machine's load. ``--calibrate DIR`` replaces the step timings with
those of a finished study directory (e.g. the last full demo's ``runs/demo``: each run's median step and
mean evaluation time, from its metrics.jsonl, under the real 2-worker load), interpolated in the
structural FLOPs per step for shapes it did not train; it needs no measuring at all.
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data import prepare
from scalinglab.demo import study_text
from scalinglab.study import expand_study, plan_study, plan_totals, study_from_dict
from scalinglab.train.schedules import eval_steps


def measured_runs(study_dir: Path) -> pd.DataFrame:
    """Per finished run of ``study_dir``: its shape key, structural FLOPs per step, median step seconds,
    mean seconds per evaluation and seconds before the first step (model, data, first evaluation)."""
    rows = []
    for metrics in sorted(study_dir.glob("*/metrics.jsonl")):
        cfg = json.loads((metrics.parent / "config.json").read_text())
        recs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        if len(recs) < 3:
            continue
        wall = np.array([r["wall_time"] for r in recs])
        evals = np.array([any(k.startswith("val_loss") for k in r) for r in recs])[1:]
        dt = np.diff(wall)
        m, o = cfg["model"], cfg["optim"]
        rows.append({"name": cfg["name"], "wall_s": float(wall[-1]), "evals": int(evals.sum()) + 1, "key": _key(m, o),
                     "flops_step": recs[-1]["flops_structural"] / recs[-1]["step"],
                     "accumulation": o["batch_size"] // (o["micro_batch_size"] or o["batch_size"]),
                     "step_s": float(np.median(dt[~evals])), "eval_s": float(dt[evals].mean()) if evals.any() else 0.0,
                     "start_s": float(wall[0])})
    if not rows:
        raise SystemExit(f"no finished runs with metrics in {study_dir}")
    return pd.DataFrame(rows)


def _key(m: dict, o: dict) -> tuple:
    return (m["n_layer"], m["d_model"], m["n_head"], m["d_ff"], m["n_ctx"], m["vocab_size"], o["batch_size"],
            o["micro_batch_size"])


def calibrated(table: pd.DataFrame, study, measured: pd.DataFrame) -> pd.Series:
    """Each planned run's seconds from ``measured``: the same run's wall time, else its shape's mean step and
    evaluation times, else those interpolated in log FLOPs per step among runs with as many micro-batches."""
    same = {(r["name"], r["key"]): r for r in measured.to_dict("records")}
    by_key = measured.groupby("key")[["step_s", "eval_s", "start_s"]].mean().to_dict("index")
    out = []
    for run, row in zip(expand_study(study), table.itertuples()):
        m, o = run.config.model, run.config.optim
        key = _key(m.__dict__, o.__dict__)
        evals = len(eval_steps(row.steps, run.config.eval.points))
        if (run.name, key) in same:  # the very run, trained in the calibrating study (perhaps evaluated less often)
            r = same[run.name, key]
            out.append(r["wall_s"] - (r["evals"] - evals) * r["eval_s"])
            continue
        if key in by_key:
            r = by_key[key]
            step, ev, start = r["step_s"], r["eval_s"], r["start_s"]
        else:
            acc = o.batch_size // (o.micro_batch_size or o.batch_size)
            ref = measured[measured["accumulation"] == acc] if (measured["accumulation"] == acc).sum() >= 2 else measured
            ref = ref.sort_values("flops_step")
            x = np.log(row.C_structural / row.steps)
            step, ev, start = (float(np.interp(x, np.log(ref["flops_step"]), ref[c])) for c in ("step_s", "eval_s", "start_s"))
        out.append(start + row.steps * step + evals * ev)
    return pd.Series(out, index=table.index)


def lpt_wall(seconds: pd.Series, workers: int = 2) -> float:
    """Wall seconds of runs scheduled longest first onto the least loaded of ``workers`` (as study run submits)."""
    queues = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(queues, queues[0] + s)
    return max(queues)


def estimate(text: str, label: str, remeasure: bool, rows: bool, measured: pd.DataFrame | None = None) -> float:
    """Print the plan of one study file and return its estimated wall seconds on 2 workers."""
    study = study_from_dict(tomllib.loads(text))
    t0 = time.perf_counter()
    prepare(expand_study(study)[0].config.data, progress=False)
    prep = time.perf_counter() - t0
    table = plan_study(study, measure=measured is None, remeasure=remeasure, threads=1, progress=False)
    totals = plan_totals(table, workers=2)
    if measured is not None:  # timed by real runs under the 2-worker load: no slowdown factor to add
        table["est_seconds"] = calibrated(table, study, measured)
        totals |= {"est_run_seconds": float(table["est_seconds"].sum()), "est_wall_seconds": lpt_wall(table["est_seconds"])}
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
    p.add_argument("--calibrate", metavar="DIR", help="time the runs by this finished study's runs (no measuring)")
    p.add_argument("--no-rows", action="store_true", help="totals only")
    args = p.parse_args()
    measured = measured_runs(Path(args.calibrate)) if args.calibrate else None
    for quick in [q for q in (True, False) if not (args.full and q) and not (args.quick and not q)]:
        label = "quick demo" if quick else "full demo"
        before = None
        if args.compare:
            before = estimate(Path(args.compare).read_text(), f"{label}, {args.compare}", args.remeasure, not args.no_rows,
                              measured)
        after = estimate(study_text(quick), label, args.remeasure and before is None, not args.no_rows, measured)
        if before:
            print(f"{label}: estimated {before:.0f} s -> {after:.0f} s ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
