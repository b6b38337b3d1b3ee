"""Estimated wall time of the demo (full and quick) on this machine: data preparation plus the study plan.

Run it pinned to two cores to check the demo's budget, e.g.::

    taskset -c 0,1 python benchmarks/demo_plan.py

Step times are measured on the real models (scalinglab.study.plan), one thread per run, and the runs
are scheduled longest first on 2 workers.
"""

from __future__ import annotations

import time
import tomllib

from scalinglab.data import prepare
from scalinglab.demo import study_text
from scalinglab.study import expand_study, plan_study, plan_totals, study_from_dict


def main() -> None:
    for quick in (True, False):
        study = study_from_dict(tomllib.loads(study_text(quick)))
        t0 = time.perf_counter()
        prepare(expand_study(study)[0].config.data, progress=False)
        prep = time.perf_counter() - t0
        table = plan_study(study, measure=True, threads=1, progress=False)
        totals = plan_totals(table, workers=2)
        print(f"{'quick' if quick else 'full '} demo: {totals['runs']} runs, {totals['tokens'] / 1e6:.1f}M tokens, "
              f"data {prep:.0f} s, training {totals['est_wall_seconds']:.0f} s on 2 workers "
              f"({totals['est_run_seconds']:.0f} run-seconds)")
        for row in table.itertuples():
            print(f"  {row.name:32s} {row.tokens / 1e6:6.2f}M tokens  {row.est_seconds:6.1f} s")


if __name__ == "__main__":
    main()
