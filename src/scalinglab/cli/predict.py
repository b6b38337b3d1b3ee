"""``scalinglab predict``: extrapolate a learning curve to a later step, with a prediction interval."""

from __future__ import annotations

import argparse
from pathlib import Path

from scalinglab.cli._common import add_json_flag, add_plot_flag, command, print_json, wrote_figure

DESCRIPTION = """\
Fit the early part of a learning curve and predict the loss at a later step, with an interval.

One curve whose learning rate is known (a run directory, or an lr column) is fitted with the
LR-annealing law L = L0 + A S1^-alpha - C S2 (Tissue et al. 2024; S1 the summed LR, S2 the annealing
area), which sees a cosine or WSD decay coming in the schedule and predicts its gain. C is carried as
r = C/(alpha A) with a prior r = 1 +- 0.3 (a full decay is worth about an e-fold more constant-LR
training): a curve fitted before its decay (a WSD run's stable phase) takes the gain from the prior,
with a warning and an interval that carries the prior's spread; once it has decayed, its own points
measure C; with too few points past the transient for its four parameters, L(S) is fitted instead,
with a warning that it does not see the decay still to come. Several curves that know their LR (run directories, or a CSV with a run column,
--run-column) are fitted jointly: alpha and r shared, L0 and A per run, so the run in progress (the
first; --fit-until cuts it alone) borrows the shape and the decay's gain of the finished ones. One
curve without an LR is fitted with L(S) = L_inf + b S^-c, with a warning that a decay still to come
would make its prediction too high; several without (runs of different sizes,
same batch) with Kaplan's L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (eq 1.6), predicting the first
one; L(N, S) does not see the LR, and warns when a tenth or more of the first run's decay is still to
come after its points fitted (it then over-predicts). Every point weighs the stretch of training it
stands for (half the gaps to its neighbours), so log-spaced evaluations do not let the early
transient outvote the recent slope. The early transient is left out (Kaplan §5.2): by default twice
the LR warmup, which ends where the lr peaks, or the first 10% of the points fitted when no warmup
is known; --skip-until sets it. The interval combines the fit's parameter uncertainty with the noise
of one new evaluation, widened when the law, fitted on the points up to half the predicted run's
last one's x (the other runs cut as the fit cuts them), missed that run's later ones by more than
its own error (by the rms of those misses in standard errors; a warning above 2x). A prediction more
than a decade past the last point fitted warns, and so does one from points that span less than a
factor 3 of x after the transient (too short a stretch to measure the curve's exponent), or one
before the first point fitted (inside the transient, where the law does not hold).

Input: a run directory (metrics.jsonl, the val_loss_valid column by default; its config gives the
LR still to come) or a CSV with columns step (or tokens, with --x tokens) and loss, and optionally
lr (rows past the last loss, loss empty, give the LR to come), run_id and N for several runs,
warmup_end; --columns maps other names (a W&B export: step=Step,loss=train/loss). A published
curve without an lr column gets its schedule from --schedule, as its paper states it (kind, steps,
warmup, floor): the LR-annealing law then sees its decay too. A study directory stands for its
single-pass runs on the recipe (or one design's, --design) at its most common batch, the largest
model first, which is predicted as several runs are (the joint LR-annealing fit, or L(N, S) when it
has too few points of its own); stderr says which runs.

Examples:
  scalinglab predict runs/gpt-3f2a9c                      # its final loss, from the points so far
  scalinglab predict runs/gpt-3f2a9c --at-step 20000
  scalinglab predict curve.csv --at-step 5000 --fit-until 1000 --json   # backtest a known tail
  scalinglab predict curve.csv --x tokens --fit-until 2e8                # x in tokens; lr column if any
  scalinglab predict published.csv --fit-until 28600 --schedule cosine,steps=143000,warmup_steps=1430
  scalinglab predict runs/big runs/small runs/medium --at-step 20000       # L(N, S) over three runs
  scalinglab predict runs/demo --design ladder --fit-until 200             # a study's ladder
  scalinglab predict curve.csv --fit-until 1000 --plot curve.png            # and draw it
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "predict", "extrapolate a learning curve to a later step", DESCRIPTION, run)
    p.add_argument("curves", nargs="+", metavar="RUN_DIR|curve.csv", help="the run to predict first, then others")
    p.add_argument(
        "--at-step", type=float, metavar="S", help="step to predict the loss at (default: a run directory's last step)"
    )
    p.add_argument("--fit-until", type=float, metavar="STEP", help="fit only points up to this step")
    p.add_argument(
        "--skip-until", type=float, metavar="STEP", help="drop points up to this step (default: twice the LR warmup)"
    )
    p.add_argument("--metric", help="a run directory's metrics.jsonl column (default val_loss_valid)")
    p.add_argument(
        "--x", choices=["step", "tokens"], default="step", help="the curve's x: optimiser steps or tokens (default step)"
    )
    p.add_argument("--level", type=float, default=0.95, help="prediction-interval level (default 0.95)")
    p.add_argument("--design", metavar="NAME", help="from a study directory, only the runs of this design, or of every design of this kind")
    p.add_argument(
        "--run-column", metavar="RUN", help="the CSV column naming each row's run (default run_id); the first run is predicted"
    )
    p.add_argument(
        "--columns", metavar="NAME=COL,...", help="map a CSV's columns, e.g. step=Step,loss=train/loss,lr=train/lr"
    )
    p.add_argument(
        "--schedule",
        metavar="SPEC",
        help="the LR schedule a CSV without an lr column was trained on, KIND,steps=S[,key=value...]: KIND cosine, wsd "
        "or constant; keys warmup_steps, warmup_fraction, min_lr_ratio (default 0.1), decay_fraction (wsd), "
        "tokens_per_step (with --x tokens), as in a run's [schedule] config",
    )
    add_plot_flag(p, "predict.png (the curve, the law on to the step predicted, its interval)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from scalinglab.laws.curves import KnownSchedule, load_curves, predict_curve

    known = None if args.schedule is None else KnownSchedule.parse(args.schedule)
    _check_inputs(args)
    expanded = [_study_runs(path, args.design) for path in args.curves]
    metric = args.metric or "val_loss_valid"
    curves = [
        c for runs in expanded for path in runs for c in load_curves(path, metric, args.x, args.run_column, known, args.columns)
    ]
    pred = predict_curve(curves, args.at_step, args.fit_until, args.level, args.skip_until)
    for w in pred.warnings:
        print(f"scalinglab predict: warning: {w['message']}", file=sys.stderr)
    if args.plot:
        from scalinglab.report.plots import plot_prediction

        wrote_figure("predict", str(plot_prediction(pred, curves[0], args.plot, curves[1:])))
    if args.json:
        print_json(dataclasses.asdict(pred))
        return 0
    lo, hi = pred.interval
    print(f"run: {pred.run}")
    print(f"law: {pred.law}")
    print("  " + ", ".join(f"{k} = {v:.6g}" for k, v in pred.params.items()))
    print(f"  fitted on {pred.n_points} points, {pred.x} {pred.fit_steps[0]:g}-{pred.fit_steps[1]:g}, "
          f"residual sd {pred.residual_sd:.2%}")  # fmt: skip
    print(f"loss at {pred.x} {pred.at_step:g}: {pred.loss:.4f}   [{lo:.4f}, {hi:.4f}] {pred.level:.0%} interval"
          f"   ({pred.decades_beyond:.2g} decades beyond the points fitted)")  # fmt: skip
    if pred.interval_scale is None:
        print("  interval not checked on the run's own later points: the law cannot be fitted on the first half of "
              "those fitted (too few points)")
    elif pred.interval_scale > 1:
        print(f"  interval widened {pred.interval_scale:.2f}x: fitted on the points up to half the last one's "
              f"{pred.x}, the law missed the later ones by that many of its standard errors (rms)")  # fmt: skip
    if pred.observed is not None:
        print(f"observed at that step: {pred.observed:.4f} ({'inside' if lo <= pred.observed <= hi else 'OUTSIDE'} the interval)")
    return 0


def _is_study(root: Path) -> bool:
    """A study directory: run directories inside it, none of its own metrics."""
    return root.is_dir() and not (root / "metrics.jsonl").is_file() and any(root.glob("*/config.json"))


def _check_inputs(args: argparse.Namespace) -> None:
    """Options that only some inputs take, refused where none of the inputs would use them (not ignored)."""
    from scalinglab.errors import ConfigError

    paths = [Path(p) for p in args.curves]
    if args.design and not any(_is_study(p) for p in paths):
        raise ConfigError("--design picks the runs of one design of a study directory; none of the inputs is one "
                          "(drop --design, or pass the study's directory).")  # fmt: skip
    if args.metric and not any(p.is_dir() for p in paths):
        raise ConfigError(f"--metric picks a metrics.jsonl column of a run directory; a CSV's loss is its loss column: "
                          f"map another with --columns loss={args.metric}.")  # fmt: skip


def _study_runs(path: str, design: str | None) -> list[str]:
    """A study directory's run directories, the largest first (study.selection's runs for L(N, S)), said on
    stderr; other paths as given."""
    import sys

    root = Path(path)
    if not _is_study(root):
        return [path]
    # imported only for a study: 0.1 s of every other predict's start-up
    from scalinglab.study.collect import collect
    from scalinglab.study.selection import LAW_QUESTIONS, select_for_law
    runs, _ = collect(root)
    runs, used = select_for_law(runs, "kaplan_ns", design)
    batch = runs["batch_tokens"].mode()
    runs = runs[runs["batch_tokens"] == batch.iloc[0]] if len(batch) else runs  # L(N, S) holds at one batch
    runs = runs.sort_values("N", ascending=False)
    used = used.removeprefix(f"{LAW_QUESTIONS['kaplan_ns']}: ")  # the selection's label, not the law fitted
    print(f"scalinglab predict: {used}; {len(runs)} at {int(batch.iloc[0]) if len(batch) else 0} tokens per step, "
          f"predicting the largest ({runs['name'].iloc[0] if len(runs) else 'none'})", file=sys.stderr)
    return [str(root / d) for d in runs["run_dir"]]
