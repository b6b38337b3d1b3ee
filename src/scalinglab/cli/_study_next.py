"""``scalinglab study suggest|watch``: choose a study's next runs for its answer, and follow it as it trains."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from scalinglab.cli._common import add_json_flag, command, print_json, print_warnings

SUGGEST_HELP = """\
Propose the k runs (shape, D) that most shrink the interval of the answer at a target budget per
FLOP: the compute-optimal loss (--target loss) or size N_opt (--target n_opt) at --target-budget C.
Each bootstrap draw of the study's fit (its finished runs, the runs `scalinglab fit` uses for the law,
the seeds' noise as the floor) is a law the data allow; a candidate run's outcome is drawn from each and
the law refitted, linearised, and the runs chosen greedily within --spend FLOPs (default: what the
fitted runs cost). Shapes follow the study's own shape rule (aspect ratio, head dim). stdout is TOML:
the table as comments and one [[design]] per run, ready to append to the study file, then
`scalinglab study plan` shows them and `scalinglab study run` trains them. The expected shrink is checked
by simulation in benchmarks/suggest_sim.py.

STUDY is the study file (its directory is read) or a study directory.

Examples:
  scalinglab study suggest studies/ladder.toml --target-budget 1e15 >> studies/ladder.toml
  scalinglab study suggest runs/ladder --target-budget 1e15 --spend 1e13 --k 3 --target n_opt --out next.toml
  scalinglab study suggest studies/ladder.toml --target-budget 1e15 --fit fit.json --json
"""

WATCH_HELP = """\
Follow a study as it trains: one line per run (state, step of steps, last training and validation
loss, a sparkline of its training loss read from metrics.jsonl as it grows), done / running / pending
with the time left, and the law refitted on the finished runs each time one finishes. Frames refresh
every --interval seconds, in place on a terminal, one after another in a log; the command ends when
every run has finished (or on Ctrl-C). --html also writes a page that reloads itself. Given a study
directory instead of the file, it shows the runs started so far (pending ones are in the file only).

Examples:
  scalinglab study watch studies/ladder.toml
  scalinglab study watch studies/ladder.toml --once                # one frame, then exit
  scalinglab study watch runs/ladder --once                         # the runs of a study directory
  scalinglab study watch studies/ladder.toml --html watch.html --target-budget 1e15
  scalinglab study watch studies/ladder.toml --json > watch.jsonl  # one JSON line per frame, for a dashboard
"""


def register(actions: argparse._SubParsersAction) -> None:
    suggest = command(actions, "suggest", "the next runs that most shrink the answer's interval per FLOP", SUGGEST_HELP,
                      run_suggest)  # fmt: skip
    suggest.add_argument("study", metavar="STUDY", help="study file (.toml or .py) or study directory")
    suggest.add_argument("--target-budget", type=float, required=True, metavar="C", help="compute of the answer, FLOPs (6ND)")
    suggest.add_argument("--spend", type=float, metavar="C", help="FLOPs the next runs may use (default: what the fitted runs cost)")
    suggest.add_argument("--k", type=int, default=4, help="runs to suggest (default 4)")
    suggest.add_argument("--target", choices=("loss", "n_opt"), default="loss", help="the answer: loss (default) or n_opt")
    suggest.add_argument("--law", default="chinchilla", help="law of N and D to fit (default chinchilla)")
    suggest.add_argument("--fit", metavar="FIT_JSON", help="use this fit (with its bootstrap) instead of fitting the study")
    suggest.add_argument("--bootstrap", type=int, default=200, metavar="K", help="bootstrap refits of the fit (default 200)")
    suggest.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    suggest.add_argument("--name", default="suggest", help="prefix of the designs' names (default suggest: suggest-1, ...)")
    suggest.add_argument("--out", metavar="FILE", help="write the TOML here instead of stdout")
    add_json_flag(suggest)

    watch = command(actions, "watch", "follow a study as it trains: states, ETA, curves, the fit", WATCH_HELP, run_watch)
    watch.add_argument("study", metavar="STUDY", help="study file (.toml or .py), or a study directory (the runs started so far)")
    watch.add_argument("--interval", type=float, default=5.0, metavar="S", help="seconds between frames (default 5)")
    watch.add_argument("--once", action="store_true", help="draw one frame and exit")
    watch.add_argument("--law", default="chinchilla", help="law refitted as runs finish (default chinchilla)")
    watch.add_argument("--target-budget", type=float, metavar="C", help="also show the fit's compute-optimal loss at C FLOPs")
    watch.add_argument("--width", type=int, default=32, help="characters of each sparkline (default 32)")
    watch.add_argument("--html", metavar="PATH", help="also write a self-refreshing HTML page here")
    watch.add_argument("--json", action="store_true",
                       help="each frame as one line of JSON (JSON Lines): counts, ETA, every run's state, step and losses, the fit")


def _study_and_runs(path: str, need_runs: bool) -> tuple[Any, Path, Any]:
    """(study or None, study directory, collected runs table or None) for a study file or a study directory;
    the runs are read when ``need_runs`` or when only a directory gives the shapes."""
    from scalinglab.study import collect, load_study

    study = None if Path(path).is_dir() else load_study(path)
    directory = Path(path) if study is None else study.directory
    runs = collect(directory)[0] if need_runs or study is None else None
    return study, directory, runs


def _fit(args: argparse.Namespace, runs: Any) -> Any:
    """The study's fit: the law on the runs the report uses for it, the seeds' spread as the noise floor."""
    from scalinglab.errors import DataError
    from scalinglab.laws.fit import FitResult, fit_law
    from scalinglab.study.noise import seed_noise
    from scalinglab.study.selection import select_for_law

    if args.fit:
        return FitResult.load(args.fit)
    try:
        floor = seed_noise(runs).sd_log
    except DataError:
        floor = 0.0
    table, used = select_for_law(runs, args.law)
    print(f"scalinglab study suggest: {used}", file=sys.stderr)
    return fit_law(args.law, table.reset_index(drop=True), bootstrap=args.bootstrap, seed=args.seed, noise_floor=floor)


def _next_number(study: Any, name: str) -> int:
    """1 + the highest n of the study's designs called ``<name>-<n>``, so a second round's names are new."""
    taken = [int(m.group(1)) for d in (study.designs if study else ()) if (m := re.fullmatch(rf"{re.escape(name)}-(\d+)", d.label))]
    return max(taken, default=0) + 1


def run_suggest(args: argparse.Namespace) -> int:
    from scalinglab import atomic
    from scalinglab.study.suggest import ShapeRule, design_block, suggest

    study, directory, runs = _study_and_runs(args.study, need_runs=not args.fit)
    fit = _fit(args, runs)
    print_warnings("study suggest", [w for w in fit.warnings if w["kind"] != "not_converged"])
    rule = ShapeRule.of_study(study) if study is not None else ShapeRule.of_runs(runs, directory)
    s = suggest(fit, args.target_budget, spend=args.spend, k=args.k, target=args.target, rule=rule)
    block = design_block(s, rule, args.name, _next_number(study, args.name))
    if args.out:
        atomic.write_text(args.out, block)
    if args.json:
        print_json({**s.to_dict(), "law": fit.law, "n_points": fit.n_points, "design_block": block, "warnings": fit.warnings})
        return 0
    what, unit = ("loss", "nats") if s.target == "loss" else ("N_opt", "parameters")
    lines = [
        f"{what} at C = {s.budget:.3g} FLOPs: {s.value:.4g} {unit} now, {s.level:.0%} interval "
        f"[{s.interval[0]:.4g}, {s.interval[1]:.4g}] ({fit.law} on {fit.n_points} runs, {s.draws} bootstrap draws, "
        f"new-run noise {s.noise:.4f} in log)",
        f"the {len(s.runs)} run(s) that most shrink it per FLOP within --spend {s.spend:.3g} (greedy rule: {s.rule}):",
        *_rows(s),
        f"expected: the interval x{s.shrink:.2f} as wide, for {s.cost:.3g} FLOPs",
        *s.notes,
    ]
    text = "\n".join(f"# {line}" for line in lines) + "\n"
    if args.out:
        sys.stdout.write(text + f"# wrote {args.out}\n")
    else:
        sys.stdout.write(text + "\n" + block)
    return 0


def _rows(s: Any) -> list[str]:
    header = ["#", "n_layer", "d_model", "N", "D", "D/N", "C", "interval after"]
    rows = [
        [str(i), str(c.model.n_layer), str(c.model.d_model), f"{c.N:.3g}", f"{c.D:.3g}", f"{c.D / c.N:.3g}",
         f"{c.flops:.3g}", f"x{sd / s.sd_now:.2f}"]
        for i, (c, sd) in enumerate(zip(s.runs, s.sd_after), 1)
    ]  # fmt: skip
    widths = [max(len(h), *(len(r[j]) for r in rows)) if rows else len(h) for j, h in enumerate(header)]
    return ["  " + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in [header, *rows]]


def run_watch(args: argparse.Namespace) -> int:
    from scalinglab.study import load_study
    from scalinglab.study.watch import watch

    study = args.study if Path(args.study).is_dir() else load_study(args.study)
    try:
        return watch(study, interval=args.interval, once=args.once, law=args.law,
                     budget=args.target_budget, html=args.html, width=args.width, as_json=args.json)  # fmt: skip
    except KeyboardInterrupt:  # the way to leave a watch: not an error
        return 0
