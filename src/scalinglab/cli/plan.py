"""``scalinglab plan``: model size, tokens, batch, steps and loss for a compute budget (or a target loss)."""

from __future__ import annotations

import argparse

from scalinglab.cli._common import add_json_flag, add_plot_flag, command, print_json, wrote_figure
from scalinglab.constants import PF_DAY

DESCRIPTION = """\
Plan a training run from a fitted law or published constants: the compute-optimal model size N and
tokens D for a budget, tokens per parameter, the batch and steps where a B_crit(L) law is known,
the predicted loss with a prediction interval (from a fit), and the extra compute a model 0.6x-2.2x
the optimal size costs (Kaplan App. B).

Rules: a chinchilla fit uses Hoffmann eq 4 in closed form; other laws of N and D are minimised
numerically at C = 6ND; an L(N, S) fit (kaplan_ns) with B_crit(L) and the kaplan2020 preset follow
Kaplan App. B / Table 6, training at B = B_crit so that C = 2 C_min.

Presets (published constants; losses are in the paper's tokenizer and data, not yours):
  kaplan2020      Kaplan et al. 2020 Table 6 and Table 5 (N non-embedding, C_min)
  chinchilla2022  Hoffmann et al. 2022 approach 3, unrounded constants (N total)
  epoch2024       Besiroglu et al. 2024 refit of Chinchilla's runs (N total)

Examples:
  scalinglab plan --fit fit.json --budget 1e21
  scalinglab plan --preset epoch2024 --budget 1.21e20          # about 1B params, 20B tokens
  scalinglab plan --preset kaplan2020 --budget 1e21 --json
  scalinglab plan --fit fit.json --target-loss 3.2             # compute needed for a loss
  scalinglab plan --fit fit.json --budget 1e21 --plot plan.png  # and the frontier around it
  scalinglab plan --fit ns_fit.json --bcrit bcrit_fit.json --budget 1e18
  scalinglab plan --fit fit.json --hparams hparams.json --budget 1e16   # + LR, batch, steps (scalinglab hparams)
  scalinglab plan --fit dc_fit.json --unique-tokens 1e5 --budget 1e11 --max-penalty 0.01   # data capped

With --unique-tokens U and a data_constrained fit (Muennighoff et al. 2023), the plan is the best N and
number of epochs over U at the budget, its loss against the plan with unlimited data, a table of epochs,
and how many epochs of repetition cost less than --max-penalty nats against fresh data.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "plan", "compute-optimal N, D, batch, steps and loss for a budget", DESCRIPTION, run)
    law = p.add_mutually_exclusive_group(required=True)
    law.add_argument("--fit", metavar="FIT_JSON", help="a fit.json written by `scalinglab fit`")
    law.add_argument("--preset", choices=["kaplan2020", "chinchilla2022", "epoch2024"], help="published constants")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--budget", type=float, metavar="FLOPS", help="training compute in FLOPs, e.g. 1e21")
    goal.add_argument("--target-loss", type=float, metavar="L", help="find the compute that reaches this loss")
    p.add_argument(
        "--bcrit", metavar="FIT_JSON|kaplan2020", help="B_crit(L) law for the batch and steps (a fit of --law bcrit)"
    )
    p.add_argument(
        "--hparams", metavar="HPARAMS_JSON", help="laws of the optimal LR and batch (from `scalinglab hparams --out`)"
    )
    p.add_argument(
        "--law", metavar="FILE.py:FUNCTION", help="the user law of a --fit made with one (a fit file never runs code itself)"
    )
    p.add_argument(
        "--trust-law-file", action="store_true", help="import the law file that --fit's fit.json names (only if you trust it)"
    )
    p.add_argument(
        "--unique-tokens", type=float, metavar="U", help="unique tokens available (a data_constrained fit): plan the epochs"
    )
    p.add_argument(
        "--max-penalty", type=float, metavar="NATS",
        help="with --unique-tokens: the loss repetition may cost against fresh data (default 0.01)",
    )  # fmt: skip
    p.add_argument("--level", type=float, default=0.95, help="prediction-interval level (default 0.95)")
    add_plot_flag(p, "plan.png (the law's frontier around the plan, the fitted runs' C shaded)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from scalinglab.errors import ConfigError
    from scalinglab.laws.plan import get_preset, load_bcrit, load_planning_law, plan_budget, plan_target_loss

    if args.preset and (args.law or args.trust_law_file):
        raise ConfigError("--law and --trust-law-file read the user law of a --fit; a --preset has its own: drop them.")
    if args.max_penalty is not None and args.unique_tokens is None:
        raise ConfigError("--max-penalty bounds what repeating data may cost; give the data you have with --unique-tokens U.")
    bcrit = load_bcrit(args.bcrit) if args.bcrit else None
    if args.fit:
        from scalinglab.laws.forms import get_form

        form = get_form(args.law) if args.law else None
        law = load_planning_law(args.fit, bcrit, form, args.trust_law_file)
    else:
        law = get_preset(args.preset)
        law = dataclasses.replace(law, bcrit=bcrit or law.bcrit)
    if args.unique_tokens is not None:
        if args.plot:
            raise ConfigError("--plot draws the compute-optimal frontier with fresh data; drop it with --unique-tokens "
                              "(the table of epochs is the data-capped plan's picture).")  # fmt: skip
        return _repeat(args, law)
    if args.budget is not None:
        plan = plan_budget(law, args.budget, args.level)
    else:
        plan = plan_target_loss(law, args.target_loss, args.level)
    for w in plan.warnings:
        print(f"scalinglab plan: warning: {w['message']}", file=sys.stderr)
    if args.plot:
        from scalinglab.report.plots import plot_plan

        wrote_figure("plan", str(plot_plan(plan, law, args.plot)))
    hp = _hparams(args, plan) if args.hparams else None
    if hp is not None:
        from scalinglab.laws.hparams_plan import with_plan

        plan = with_plan(plan, hp)
    if args.json:
        print_json({**plan.to_dict(), **({} if hp is None else hp.plan_fields())})
    else:
        print(format_plan(plan))
        if hp is not None:
            print(format_hparams(hp))
    return 0


def _repeat(args: argparse.Namespace, law) -> int:
    """The data-capped plan (laws.repeat_plan): warnings on stderr, then the plan or its JSON."""
    import sys

    from scalinglab.errors import ConfigError
    from scalinglab.laws.repeat_plan import plan_repeat

    if args.budget is None:
        raise ConfigError("--unique-tokens plans a budget; give --budget FLOPS (not --target-loss).")
    plan = plan_repeat(law, args.unique_tokens, args.budget, 0.01 if args.max_penalty is None else args.max_penalty, args.level)
    for w in plan.warnings:
        print(f"scalinglab plan: warning: {w['message']}", file=sys.stderr)
    if args.json:
        print_json(plan.to_dict())
    else:
        print(format_repeat(plan))
    return 0


def format_repeat(plan) -> str:
    """The data-capped plan beside the unlimited one, and the table of epochs."""
    capped, fresh = plan.capped, plan.unlimited

    def loss(p) -> str:
        tail = "" if p.loss_interval is None else f"   [{p.loss_interval[0]:.4f}, {p.loss_interval[1]:.4f}]"
        return f"{p.loss:.4f}{tail}"

    lines = [
        f"law: {capped.law}  ({capped.source})",
        f"compute C {plan.budget:.4g} FLOPs; unique tokens U {plan.unique_tokens:.4g}",
        f"  {'':<22}{'N':>11}{'D':>11}{'epochs':>9}   loss",
        f"  {'with U unique tokens':<22}{capped.n_params:>11.4g}{capped.tokens:>11.4g}{plan.epochs:>9.3g}   {loss(capped)}",
        f"  {'unlimited data':<22}{fresh.n_params:>11.4g}{fresh.tokens:>11.4g}{1:>9}   {loss(fresh)}",
        f"  loss penalty of the capped data: {plan.penalty:+.4f} nats",
        f"  epochs costing at most {plan.max_penalty:g} nats against fresh data: {plan.epochs_within_penalty:.3g}",
        "at this budget, by epochs over U:",
        "   epochs           N           D          D'     loss   vs unlimited   vs fresh data",
    ]
    for r in plan.table:
        lines.append(
            f"  {r.epochs:>7.3g}  {r.n_params:>10.4g}  {r.tokens:>10.4g}  {r.effective_tokens:>10.4g}  {r.loss:>7.4f}"
            f"   {r.penalty:>+12.4f}   {r.repetition_penalty:>+13.4f}"
        )
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _hparams(args: argparse.Namespace, plan):
    """The LR, batch and steps of the plan from fitted hyper-parameter laws (laws.hparams_plan); warnings on stderr."""
    import sys

    from scalinglab.errors import FitError
    from scalinglab.laws.hparams import HparamsFit
    from scalinglab.laws.hparams_plan import plan_hparams

    if plan.n_params is None or plan.tokens is None:
        raise FitError(f"law '{plan.law}' plans no N and D, so --hparams has nothing to apply to; fit a law of N and D.")
    hp = plan_hparams(
        HparamsFit.load(args.hparams), plan.n_params, plan.tokens, args.level, plan.n_params_interval, plan.budget, args.hparams
    )
    for w in hp.warnings:
        print(f"scalinglab plan: warning: {w['message']}", file=sys.stderr)
    return hp


def format_hparams(hp) -> str:
    """The fitted LR, batch and steps as lines under the plan."""
    def row(name: str, value, interval, unit: str = "") -> str:
        tail = "" if interval is None else f"   [{interval[0]:.4g}, {interval[1]:.4g}] prediction interval"
        return f"  {name:<20}  {_num(value, unit)}{tail}"

    return "\n".join([
        f"hyper-parameters from {hp.source}:",
        row("learning rate", hp.lr, hp.lr_interval),
        row("batch B_opt", hp.batch_tokens, hp.batch_interval, " tokens"),
        row("steps D/B_opt", hp.steps, hp.steps_interval),
    ])


def _num(x: float | None, unit: str = "") -> str:
    return "n/a" if x is None else f"{x:.4g}{unit}"


def format_plan(plan) -> str:
    """The plan as an aligned, human-readable block."""
    lines = [f"law: {plan.law}  ({plan.source})"]
    if plan.convention:
        lines.append(f"convention: {plan.convention}")
    loss = f"{plan.loss:.4f}"
    if plan.loss_interval:
        lo, hi = plan.loss_interval
        loss += f"   [{lo:.4f}, {hi:.4f}] {plan.interval_level:.0%} prediction interval"
    rows = [
        ("compute C", _num(plan.budget, " FLOPs") + f"  ({plan.budget / PF_DAY:.3g} PF-days)"),
        ("parameters N", _num(plan.n_params) + _range(plan.n_params_interval, plan.interval_level)),
        ("tokens D", _num(plan.tokens) + _range(plan.tokens_interval, plan.interval_level)),
        ("tokens per parameter", _num(plan.tokens_per_param)),
        ("batch B", _num(plan.batch_tokens, " tokens")),
        ("steps S", _num(plan.steps)),
        ("predicted loss", loss),
    ]
    if plan.c_min is not None:
        rows += [("C_min (eq 5.5)", _num(plan.c_min, " FLOPs")), ("S_min (eq 5.4)", _num(plan.s_min))]
    if plan.decades_beyond is not None:
        rows.append(("extrapolation", f"{plan.decades_beyond:.2g} decades beyond the runs the law was fitted on"))
    if plan.dataset_tokens_needed is not None:
        rows.append(("dataset for no overfit", _num(plan.dataset_tokens_needed, " tokens (eq 4.4)")))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    if plan.cost_curve:
        lines.append("cost of a model of another size, at the same loss:")
        lines.append("  N/N_opt   compute   " + ("steps" if plan.cost_curve[0].steps is not None else "tokens"))
        for p in plan.cost_curve:
            other = p.steps if p.steps is not None else p.tokens
            lines.append(f"  {p.ratio:>7.2f}   {_pct(p.compute):>7}   {'n/a' if other is None else f'{other:.3g}x'}")
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _range(interval: tuple[float, float] | None, level: float | None) -> str:
    return "" if interval is None else f"   [{interval[0]:.4g}, {interval[1]:.4g}] {level:.0%} bootstrap interval"


def _pct(ratio: float) -> str:
    return "n/a" if ratio != ratio else f"{round(ratio - 1, 2) + 0.0:+.0%}"
