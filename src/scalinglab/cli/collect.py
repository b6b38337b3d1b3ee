"""``scalinglab collect``: a study directory's runs as tidy runs and steps tables (Parquet and CSV)."""

from __future__ import annotations

import argparse

from scalinglab.cli._common import add_json_flag, command, print_json

DESCRIPTION = """\
Read every run directory of a study (config.json, summary.json, metrics.jsonl, labels.json) and
write two tables, as Parquet and CSV:

  runs.parquet / runs.csv    one row per run: N (Kaplan non-embedding), N_total, N_with_head, D
                             (tokens processed), C = 6ND and C_6N_total / C_kaplan / C_structural,
                             loss (final validation, nats/token), best_loss (early-stopped), loss_<set>,
                             bpb_<set>, shape, batch, LR, design, group, status
  steps.parquet / steps.csv  one row per evaluation step: tokens, C_*, lr, train_loss, loss, loss_<set>

Column definitions: docs/contracts.md ("Runs tables"). `scalinglab fit` reads runs.* directly and
keeps the runs whose status is done.

Examples:
  scalinglab collect runs/ladder
  scalinglab collect runs/ladder --out tables/ --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "collect", "tidy runs and steps tables from a study directory", DESCRIPTION, run)
    p.add_argument("study_dir", metavar="STUDY_DIR", help="the study directory (runs/<study name>)")
    p.add_argument("--out", metavar="DIR", help="where to write the tables (default: STUDY_DIR)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.study.collect import collect, write_tables

    paths = write_tables(args.study_dir, args.out)
    runs, steps = collect(args.study_dir)
    counts = runs["status"].value_counts().to_dict()
    if args.json:
        print_json({"files": [str(p) for p in paths], "runs": len(runs), "steps": len(steps), "status": counts})
    else:
        print(f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), {len(steps)} evaluation rows")
        for p in paths:
            print(f"wrote {p}")
    return 0
