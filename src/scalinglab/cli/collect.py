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
keeps the runs whose status is done. stderr then says which runs L(N), L(D) and L(N, D) would fit
(the report's selection, study.selection) and, with a seeds design, the run-to-run noise (the sd of
log loss between seeds, the floor of fits' prediction intervals); --design NAME writes and counts only
that design's runs.

Examples:
  scalinglab collect runs/ladder
  scalinglab collect runs/ladder --out tables/ --json
  scalinglab collect runs/demo --design ladder --out tables/ladder
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "collect", "tidy runs and steps tables from a study directory", DESCRIPTION, run)
    p.add_argument("study_dir", metavar="STUDY_DIR", help="the study directory (runs/<study name>)")
    p.add_argument("--out", metavar="DIR", help="where to write the tables (default: STUDY_DIR)")
    p.add_argument("--design", metavar="NAME", help="only the runs of this design, or of every design of this kind (needs --out: the study's own tables stay whole)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from scalinglab.errors import ConfigError, ScalinglabError
    from scalinglab.study.collect import collect, only_design, save_tables
    from scalinglab.study.noise import seed_noise
    from scalinglab.study.selection import LAW_QUESTIONS, designs_phrase, match_design, select_for_law

    if args.design and not args.out:
        raise ConfigError("--design writes a part of the study; give --out DIR so the study's own tables stay whole.")
    runs, steps = collect(args.study_dir)
    if args.design:
        runs, steps = only_design(runs, steps, args.design)
        phrase = designs_phrase(args.design, match_design(runs, args.design)[1])
        print(f"scalinglab collect: --design {args.design}: {len(runs)} runs of {phrase}", file=sys.stderr)
    paths = save_tables(runs, steps, args.out or args.study_dir)
    counts = runs["status"].value_counts().to_dict()
    selection = {}
    for law in ("kaplan_n", "kaplan_d", "kaplan_nd"):
        try:
            selection[LAW_QUESTIONS[law]] = select_for_law(runs, law, args.design)[1]
        except ScalinglabError as e:
            selection[LAW_QUESTIONS[law]] = str(e)
    try:
        noise = seed_noise(runs)
        selection["run-to-run noise"] = noise.line()
    except ScalinglabError:
        noise = None
    for line in selection.values():
        print(f"scalinglab collect: {line}", file=sys.stderr)
    if args.json:
        print_json({"files": [str(p) for p in paths], "runs": len(runs), "steps": len(steps), "status": counts,
                    "selection": selection, "noise_sd_log": None if noise is None else noise.sd_log})
    else:
        print(f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), {len(steps)} evaluation rows")
        for p in paths:
            print(f"wrote {p}")
    return 0
