"""Learning-curve extrapolation: fit the early part of a run and predict its loss later, with an interval.

Three laws:

- one run: a power law with an offset in the step, L(S) = L_inf + b·S^-c (Kaplan et al. 2020 §5.2,
  :func:`fit_curve`);
- one run whose learning rate is known (an ``lr`` column, or a run directory): the LR-annealing law
  L = L0 + A·S1^-α − C·S2 of Tissue et al. 2024, S1 the summed LR so far and S2 the annealing area
  (:func:`annealing_areas`), which sees a cosine or WSD decay coming from the schedule and predicts
  its gain, where L(S) over-predicts the end of every decayed run;
- several runs of different sizes: L(N, S) = (N_c/N)^α_N + (S_c/S)^α_S, eq 1.6 (:func:`fit_curves_ns`),
  which lets runs of other sizes inform the extrapolation of this one.

The x axis is the optimiser step or the tokens seen. The early transient is dropped (Kaplan §5.2
fits "after an initial transient"): by default every point up to twice the warmup, where a run
directory's warmup ends at the step its logged ``lr`` peaks (on our small runs the loss still plunges
for about as long again after the warmup); a curve that says nothing of its warmup drops its first
``TRANSIENT_FRACTION`` of the fitted span.

Several curves that know their LR are fitted jointly (:func:`fit_curves_joint`: α and r shared, L0 and
A per run), so the run in progress borrows the shape of finished ones. Every fit is least squares on
log loss; those of one run's curve, alone or joint, weigh each point by the span of training it stands
for (:func:`span_weights`), so log-spaced evaluations do not let the early transient outvote the recent
slope. The prediction interval is residual-based: the parameter covariance s²(JᵀJ)⁻¹ carried to the
new step by its gradient, plus the residual variance for the noise of one new evaluation, with
Student-t quantiles on the effective number of points. On synthetic curves
extrapolated 20x it covered 93% of held-out points at 95% nominal, where a residual bootstrap covered
87%. A curve fitted before its LR decays (a WSD run in its stable phase) cannot measure the decay's
gain: the LR-annealing law's decay coefficient then comes from a prior (``ANNEAL_GAIN_PRIOR``, a full
decay is worth about one e-fold of constant-LR training), fitted as one more residual, so the interval
carries the prior's spread; as the decay is seen the curve's own points take over.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize

from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.diagnostics import EXTRAPOLATION_WARN_DECADES, form_bound_warnings, warning
from scalinglab.laws.forms import Form, get_form
from scalinglab.laws.tables import Table, blank, column_renames, non_numbers, numeric, read_rows, row_list
from scalinglab.laws.uncertainty import t_quantile

if TYPE_CHECKING:
    import pandas as pd

    from scalinglab.train.config import ScheduleConfig


def power_law_with_offset(S, L_inf, b, c):
    """L(S) = L_inf + b S^-c: a learning curve approaching L_inf (Kaplan §5.2, one model size)."""
    return L_inf + b * S**-c


CURVE_FORM = Form.from_function(
    power_law_with_offset,
    name="curve",
    log_params=("L_inf", "b"),
    start={"L_inf": (1.0, 3.0), "b": (1.0, 10.0, 100.0), "c": (0.2, 0.5, 1.0)},
    bounds={"L_inf": (1e-3, 1e3), "b": (1e-6, 1e9), "c": (1e-3, 5.0)},
)
NS_FORM = get_form("kaplan_ns")

TRANSIENT_WARMUPS = 2.0
"""Default early transient, in warmups: the points up to this many times the warmup are not fitted."""

TRANSIENT_FRACTION = 0.1
"""Default early transient of a curve with no warmup known: the points before this fraction of the
last fitted step (the loss falls from ln(vocab) faster than any power law there, Kaplan §5.2)."""

ANNEAL_MOMENTUM = 0.999
"""λ of the annealing area, per optimiser step: S2 sums a momentum of the LR's decreases, so a decay
pays off gradually (Tissue et al. 2024 use 0.999, on runs of tens of thousands of steps)."""

ANNEAL_WINDOW_FRACTION = 0.1
"""The momentum's memory, 1/(1 - λ) steps, is at most this fraction of the run: on a run of a thousand
steps λ = 0.999 would spread a decay's gain past the run's end (on our 1000-step cosine run, fitting
half the curve, λ = 0.999 missed the final loss by -11%, λ = 0.99 by -0.7%)."""

SHORT_SPAN = 3.0
"""Below this ratio of the last to the first point fitted, a prediction beyond them warns: a power law's
exponent is not measured over less than a factor of a few in x (on a 400-step run of ours, fitted on
steps 40-80, still in the fall after the warmup, the final loss was missed by +23% outside its interval)."""

DECAY_SEEN = 0.1
"""Below this fraction of the annealing area S2 at the point predicted, reached by the last point
fitted, the decay's gain is not measured by the curve (on the first 20% of a cosine run S2 is about 1%
of its end value and a free C came out anywhere): ``predict`` says its gain comes from the prior."""

NS_DECAY_SEEN = 0.9
"""L(N, S) cannot see an LR decay at all: a prediction across more than a tenth of the predicted run's annealing
area still to come (S2 at the point predicted) warns (on our demo's cosine ladder, from half of each of its two
largest runs, L(N, S) over-predicted by 3.7% and 4.4%, outside its intervals; the joint LR-annealing fit by
1.9% and 2.3%, inside)."""

ANNEAL_GAIN_PRIOR = (1.0, 0.3)
"""(mean, sd) of r = C/(α·A), S1 in units of the peak LR times the run's steps and S2 in units of a full
relaxed decay (peak LR/(1 − λ)): a decay to zero gains r times the loss an e-fold more constant-LR
training gains at the run's end. Measured on our trainer's runs fitted whole (1.06 and 0.89 cosine,
1.10 and 0.96 WSD, two sizes), not published; on three runs of other shapes held out from it, 0.81
(cosine to zero), 1.72 and 1.18 (WSD decaying over 40% and 10%); on two 10,000-step runs added to the
tuning set later, 0.90 (cosine) and 1.52 (WSD over 30%). The sd of 0.3 is about a 2% loss at the end of
a decay, so an interval from a curve that has not decayed says the gain is uncertain."""


def lr_annealing(S1, S2, L0, A, alpha, r):
    """L = L0 + A S1^-α − C S2 with C = r α A (Tissue et al. 2024); S1, S2 normalised, S2 entering as 1 + S2.

    The decay's coefficient is carried relative to the stable phase's log-slope α·A so that a prior on r
    (``ANNEAL_GAIN_PRIOR``) is one linear residual.
    """
    return L0 + A * S1**-alpha - r * alpha * A * (S2 - 1)


ANNEALING_FORM = Form.from_function(
    lr_annealing,
    name="lr_annealing",
    inputs=("S1", "S2"),
    log_params=("L0", "A"),
    start={"L0": (0.3, 2.0), "A": (0.5, 2.0), "alpha": (0.15, 0.5), "r": (1.0,)},  # 8 starts: as the 24 of a finer grid on our curves, 3.5x faster
    bounds={"L0": (1e-3, 1e3), "A": (1e-6, 1e6), "alpha": (1e-3, 5.0), "r": (0.0, 50.0)},
)


def annealing_coefficient(params: dict[str, float]) -> float:
    """C of L = L0 + A S1^-α − C S2 from the fitted (L0, A, alpha, r): the gain of a full relaxed decay."""
    return params["r"] * params["alpha"] * params["A"]


# --------------------------------------------------------------------------------------------------
# Reading curves


@dataclass(frozen=True)
class Curve:
    """One run's learning curve: evaluation loss against optimiser steps."""

    step: np.ndarray
    loss: np.ndarray
    n_params: float | None = None
    """Kaplan's non-embedding N, needed only by the L(N, S) fit."""
    warmup_end: float = 0.0
    """The last step of the LR warmup; the fits skip up to TRANSIENT_WARMUPS times this by default."""
    name: str = ""
    final_step: float | None = None
    """The run's planned last step (from a run directory's config), the default step to predict."""
    schedule: tuple[np.ndarray, np.ndarray] | None = None
    """(x, lr): the learning rate over the run, logged or planned, at least up to the point to predict;
    None when unknown (then the fit cannot see a decay)."""
    x_per_step: float = 1.0
    """x units per optimiser step (1 for steps; tokens per step when x is tokens), for the LR areas."""
    x_name: str = "step"
    """What ``step`` holds: ``step`` or ``tokens``."""


X_AXES = ("step", "tokens")
"""What a curve's x may be: the optimiser step or the tokens seen so far."""


def _check_x(x: str) -> None:
    if x not in X_AXES:
        raise ConfigError(f"the curve's x must be one of {', '.join(X_AXES)} (got '{x}'); pass --x step or --x tokens.")


def _warmup_from_lr(x: np.ndarray, lr: np.ndarray) -> float:
    """Where the LR first peaks (the end of the warmup); 0 when it peaks at the first point (no warmup seen)."""
    k = int(np.argmax(lr))
    return float(x[k]) if k > 0 else 0.0


@dataclass(frozen=True)
class KnownSchedule:
    """The LR schedule a curve was trained on, when its table has no ``lr`` column (a published curve
    whose paper states it): the trainer's own schedules (:mod:`scalinglab.train.schedules`) over ``steps``."""

    schedule: ScheduleConfig
    """Kind, warmup, floor and decay, as a run's ``[schedule]`` config."""
    steps: int
    """The run's optimiser steps: the schedule spans exactly these, and its last is the default point to predict."""
    tokens_per_step: float | None = None
    """With x in tokens: tokens per optimiser step (default: from a ``step`` column beside ``tokens``)."""

    OWN_KEYS = ("steps", "tokens_per_step")
    """The spec's keys beside the schedule config's own fields."""
    EXAMPLE = "cosine,steps=143000,warmup_steps=1430,min_lr_ratio=0.1"

    @classmethod
    def parse(cls, spec: str) -> KnownSchedule:
        """``KIND,steps=S[,key=value...]`` (``--schedule``): KIND and keys those of a run's ``[schedule]``, plus ``OWN_KEYS``."""
        # Imported here: the run configs cost every predict 60 ms to import.
        from scalinglab.config import from_dict
        from scalinglab.train.config import ScheduleConfig

        kinds = typing.get_args(typing.get_type_hints(ScheduleConfig)["kind"])
        keys = (*cls.OWN_KEYS, *(f.name for f in dataclasses.fields(ScheduleConfig) if f.name != "kind"))
        kind, *items = (part.strip() for part in spec.split(","))
        if kind not in kinds:
            raise ConfigError(f"--schedule '{spec}' must start with {', '.join(kinds[:-1])} or {kinds[-1]}; write e.g. {cls.EXAMPLE}.")
        values: dict[str, float] = {}
        for item in items:
            key, sep, value = (t.strip() for t in item.partition("="))
            if not sep or key not in keys:
                raise ConfigError(f"--schedule item '{item}' is not one of {', '.join(k + '=' for k in keys)}; write e.g. {cls.EXAMPLE}.")
            try:
                values[key] = float(value)
            except ValueError:
                raise ConfigError(f"--schedule {key}='{value}' is not a number; write e.g. {cls.EXAMPLE}.") from None
        steps = values.pop("steps", 0.0)
        if steps < 1 or steps != int(steps):
            raise ConfigError(f"--schedule needs steps=S, the run's whole number of optimiser steps; write e.g. {cls.EXAMPLE}.")
        per_step = values.pop("tokens_per_step", None)
        if per_step is not None and per_step <= 0:
            raise ConfigError(f"--schedule tokens_per_step must be positive (got {per_step:g}).")
        return cls(from_dict(ScheduleConfig, {"kind": kind, **values}, "schedule"), int(steps), per_step)

    def lr(self) -> tuple[np.ndarray, np.ndarray]:
        """(step, lr) at every optimiser step, the peak 1: the law's areas are relative to the peak."""
        from scalinglab.train.schedules import lr_at

        steps = np.arange(1, self.steps + 1)
        return steps.astype(float), np.array([lr_at(int(s) - 1, self.steps, 1.0, self.schedule) for s in steps])


def read_curve_csv(
    path: str | Path,
    x: str = "step",
    run_column: str | None = None,
    schedule: KnownSchedule | None = None,
    columns: str | Mapping[str, str] | None = None,
) -> list[Curve]:
    """Curves from a CSV with columns ``x`` (``step`` or ``tokens``), ``loss`` and optionally ``run_id``
    (or ``run_column``: the column naming each row's run), ``N``, ``warmup_end`` and ``lr``; ``columns``
    maps other names onto these (``"step=Step,loss=train/loss"``, as ``fit --columns``).

    With ``lr`` the curve knows its schedule: rows may go on past the last loss (loss empty) to give
    the LR still to come, the run's last row is the default point to predict, and the warmup ends
    where the LR peaks unless ``warmup_end`` says otherwise. Without it, ``schedule`` gives every run
    of the table the schedule it was trained on, to the same effect.
    """
    _check_x(x)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; give a run directory or a CSV with columns {x}, loss.")
    df = read_rows(path, "curve CSV")
    renames, dropped = column_renames(columns, df.columns, path.name)
    df = Table({renames.get(c, c): df[c] for c in df.columns if c not in dropped})
    if schedule is not None and "lr" in df.columns:
        raise ConfigError(f"{path} has an lr column, the schedule as it ran; drop --schedule (or the column).")
    missing = [c for c in (x, "loss") if c not in df.columns]
    if missing:
        other = next((a for a in X_AXES if a != x and a in df.columns), None)
        hint = f" (it has '{other}': pass --x {other})" if other else ""
        raise DataError(f"{path}: a curve CSV needs columns {x}, loss (missing {', '.join(missing)}){hint}.")
    if run_column is not None and run_column not in df.columns:
        raise DataError(f"{path}: no column '{run_column}' to group runs by; pass --run-column one of {', '.join(map(str, df.columns))}.")
    for col in dict.fromkeys((x, "loss", "lr", "N", "warmup_end", "step", "tokens")):
        if col in df.columns:
            bad = non_numbers(df[col])
            if bad.any():
                raise DataError(f"{path}: column '{col}' has values that are not numbers in row(s) {row_list(bad, df.index)} "
                                f"(e.g. {df[col][bad][0]!r}); fix or remove those rows.")  # fmt: skip
            df[col] = numeric(df[col]).astype(float)
    loss = df["loss"]
    bad = np.isinf(loss) | (loss <= 0)  # an empty loss is allowed: a row that gives only the LR to come
    if bad.any():
        raise DataError(f"{path}: column 'loss' has non-positive or infinite values in row(s) {row_list(bad, df.index)}; "
                        "a curve's loss is a positive number (a log-likelihood column? map the loss with --columns).")  # fmt: skip
    if "lr" in df.columns and (df["lr"] < 0).any():
        raise DataError(f"{path}: column 'lr' has negative values in row(s) {row_list(df['lr'] < 0, df.index)}; a "
                        "learning rate is at least 0 (map the LR column with --columns, or fix those rows).")  # fmt: skip
    run_column = run_column or "run_id"
    groups = _groups(df, run_column) if run_column in df.columns else [(path.stem, df)]
    curves = []
    for name, g in groups:
        g = g.take(np.isfinite(g[x]))
        g = g.take(np.argsort(g[x], kind="stable"))
        pts = g.take(np.isfinite(g["loss"]))
        if not len(pts):
            raise DataError(f"{path}: run '{name}' has no loss at any {x}; give its losses (or drop the run).")
        n = float(g["N"][0]) if "N" in g.columns else None
        warmup = float(g["warmup_end"][0]) if "warmup_end" in g.columns else 0.0
        lr, final, per_step = None, None, 1.0
        found = _csv_schedule(g, x, schedule, f"{path}: run '{name}'")
        if found is not None:
            lr, per_step = found
            final = float(lr[0][-1])
            if "warmup_end" not in g.columns:
                warmup = _warmup_from_lr(*lr)
        if schedule is not None and pts[x].max() > final:
            raise DataError(f"{path}: run '{name}' has points up to {x} {pts[x].max():g}, past its schedule's end at "
                            f"{final:g}; set --schedule steps= to the run's steps.")  # fmt: skip
        curve = Curve(pts[x], pts["loss"], n, warmup, str(name), final, lr, per_step, x)
        curves.append(_checked(curve))
    return curves


def _groups(df: Table, column: str) -> list[tuple[str, Table]]:
    """The rows of each run, runs in the order they first appear; rows with no run name are left out."""
    labels = df[column]
    named = ~blank(labels)
    keys = np.array([str(v) for v in labels], dtype=object)
    return [(k, df.take(named & (keys == k))) for k in dict.fromkeys(keys[named])]


def _csv_schedule(
    g: Table, x: str, known: KnownSchedule | None, where: str
) -> tuple[tuple[np.ndarray, np.ndarray], float] | None:
    """One run's ((x, lr) over the run, x per step): from its ``lr`` column, else from ``known``; None if neither."""
    if "lr" in g.columns and np.isfinite(g["lr"]).sum() >= 2:
        rows = g.take(np.isfinite(g["lr"]))
        per_step = _tokens_per_step(rows) if x == "tokens" else 1.0
        return (rows[x], rows["lr"]), per_step
    if known is None:
        return None
    per_step = 1.0
    if x == "tokens":
        per_step = known.tokens_per_step or 0.0
        if not per_step:
            if "step" not in g.columns:
                raise ConfigError(f"{where} has tokens but no step column; give tokens_per_step= in --schedule.")
            per_step = _tokens_per_step(g)
    steps, lr = known.lr()
    return (steps * per_step, lr), per_step


def _tokens_per_step(rows: Table) -> float:
    """Tokens per optimiser step: from a ``step`` column when there is one, else one row per step."""
    if "step" in rows.columns and np.isfinite(rows["step"]).sum() >= 2:
        r = rows.take(np.isfinite(rows["step"]))
        return float(np.median(np.diff(r["tokens"]) / np.maximum(np.diff(r["step"]), 1)))
    diffs = np.diff(rows["tokens"])
    return float(diffs[diffs > 0].min()) if (diffs > 0).any() else 1.0


def read_run_curve(run_dir: str | Path, metric: str = "val_loss_valid", x: str = "step") -> Curve:
    """A run directory's curve of ``metric`` from ``metrics.jsonl``; warmup ends where ``lr`` peaks.

    N, the planned last step and the LR still to come come from ``config.json`` (a run still going
    has no summary yet), so the LR-annealing law sees the rest of the schedule.
    """
    from scalinglab.study.collect import run_records  # the one reader of run directories

    _check_x(x)
    run_dir = Path(run_dir)
    rows = run_records(run_dir)
    if rows.empty:
        raise DataError(f"{run_dir}: no metrics.jsonl records; is this a run directory that has started?")
    if metric not in rows.columns or rows[metric].isna().all():
        keys = sorted(c for c in rows.columns if str(c).startswith(("val_loss", "train_loss")))
        raise DataError(f"{run_dir}: no '{metric}' in metrics.jsonl; pass --metric one of {', '.join(keys)}.")
    evals = rows[rows[metric].notna()]
    if x == "tokens" and ("tokens" not in evals.columns or evals["tokens"].isna().any()):
        raise DataError(f"{run_dir}: metrics.jsonl has no 'tokens' on every evaluation; use --x step.")
    logged = rows[rows["lr"].notna()] if "lr" in rows.columns else rows.iloc[:0]
    lr = logged[["step", "lr"]].to_numpy(dtype=float).reshape(-1, 2)
    step, loss = evals["step"].to_numpy(dtype=float), evals[metric].to_numpy(dtype=float)
    tokens = evals["tokens"].to_numpy(dtype=float) if x == "tokens" else None
    warmup = _warmup_from_lr(lr[:, 0], lr[:, 1]) if len(lr) else 0.0  # first step at the peak LR
    n_params, final_step, planned = _run_plan(run_dir, lr)
    per_step = float(tokens[-1] / step[-1]) if x == "tokens" else 1.0
    schedule = None
    if len(lr) >= 2:
        points = np.vstack([lr, planned]) if planned is not None else lr
        schedule = (points[:, 0] * per_step, points[:, 1])
    xs = tokens if x == "tokens" else step
    final = None if final_step is None else final_step * per_step
    return _checked(Curve(xs, loss, n_params, warmup * per_step, run_dir.name, final, schedule, per_step, x))


def _run_plan(run_dir: Path, logged_lr: np.ndarray) -> tuple[float | None, float | None, np.ndarray | None]:
    """(Kaplan's non-embedding N, planned last step, (step, lr) rows still to come) from ``config.json``.

    The LR to come follows the config's schedule, scaled to the logged LR (whatever rule set the peak).
    """
    from scalinglab.study.collect import run_config

    raw = run_config(run_dir)
    if raw is None:
        return None, None, None
    from scalinglab.config import from_dict
    from scalinglab.model.counting import count_params
    from scalinglab.train.budget import resolve_steps
    from scalinglab.train.config import RunConfig
    from scalinglab.train.schedules import lr_at

    cfg = from_dict(RunConfig, raw)
    total = int(resolve_steps(cfg))
    planned = None
    if len(logged_lr) and logged_lr[-1, 0] < total:
        last = int(logged_lr[-1, 0])
        unit = lr_at(last - 1, total, 1.0, cfg.schedule)  # metrics' step s is update s - 1 (0-based)
        peak = logged_lr[-1, 1] / unit if unit > 0 else cfg.optim.lr
        steps = np.arange(last + 1, total + 1)
        planned = np.column_stack([steps, [lr_at(int(s) - 1, total, peak, cfg.schedule) for s in steps]])
    return float(count_params(cfg.model)["N"]), float(total), planned


def annealing_areas(
    schedule: tuple[np.ndarray, np.ndarray], at: np.ndarray, x_per_step: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """S1 (the summed LR) and S2 (the annealing area) of Tissue et al. 2024 at the points ``at``.

    On every optimiser step (the schedule interpolated linearly between its rows): S1 = Σ η_i and
    S2 = Σ m_i with m_i = λ m_{i-1} + (η_{i-1} − η_i), as in the paper, λ = ``ANNEAL_MOMENTUM`` or less on
    a short run (:func:`anneal_momentum`); the warmup, up to the LR's first peak, is left out of S2 (the
    paper's schedules start at the peak), a later re-warmup counts against it.
    """
    sx, slr = (np.asarray(v, dtype=float) for v in schedule)
    last = int(np.ceil(sx.max() / x_per_step))
    steps = np.arange(1, last + 1, dtype=float)
    lr = np.interp(steps * x_per_step, sx, slr)
    drop = np.concatenate([[0.0], lr[:-1] - lr[1:]])
    drop[: int(np.argmax(lr)) + 1] = 0.0  # the warmup's rises are not an annealing
    momentum = decayed_sums(drop, anneal_momentum(last))
    pos = np.asarray(at, dtype=float) / x_per_step
    return np.interp(pos, steps, np.cumsum(lr)), np.interp(pos, steps, np.cumsum(momentum))


def decayed_sums(x: np.ndarray, lam: float) -> np.ndarray:
    """m_i = λ m_(i−1) + x_i from m_0 = 0 (a first-order recursive filter) in blocks of cumulative sums.

    Within a block of k steps m_(s+j) = λ^j (λ m_(s−1) + Σ_(t≤j) λ^−t x_(s+t)); blocks are short enough that
    λ^−k stays below 1e6, so no more than six of float64's sixteen digits are lost (scipy.signal.lfilter
    does the same, and costs `predict` 0.4 s to import).
    """
    out = np.empty_like(x, dtype=float)
    if lam <= 0:
        block = 1
    elif lam >= 1:
        block = max(1, len(x))
    else:
        block = max(1, int(np.log(1e6) / -np.log(lam)))
    powers = lam ** np.arange(min(block, len(x)), dtype=float)  # λ^j, j < block
    carry = 0.0
    for start in range(0, len(x), block):
        chunk = x[start : start + block]
        p = powers[: len(chunk)]
        out[start : start + len(chunk)] = p * (lam * carry + np.cumsum(chunk / p))
        carry = out[start + len(chunk) - 1]
    return out


def anneal_momentum(steps: int) -> float:
    """λ for a run of ``steps`` optimiser steps: ``ANNEAL_MOMENTUM``, with a memory of at most
    ``ANNEAL_WINDOW_FRACTION`` of the run."""
    return min(ANNEAL_MOMENTUM, 1 - 1 / max(ANNEAL_WINDOW_FRACTION * steps, 1.0))


def area_units(schedule: tuple[np.ndarray, np.ndarray], x_per_step: float = 1.0) -> tuple[float, float]:
    """The units of S1 and S2 in the law: the peak LR times the run's steps (a constant-LR run's S1 at its
    end) and the peak LR / (1 − λ) (S2 long after a decay from the peak to zero), so C is the gain of a
    full decay whatever the schedule's shape and the LR's units, and the prior on r applies to any run."""
    sx, slr = (np.asarray(v, dtype=float) for v in schedule)
    last = int(np.ceil(sx.max() / x_per_step))
    peak = float(slr.max()) if slr.max() > 0 else 1.0
    return peak * max(last, 1), peak / (1 - anneal_momentum(last))


def load_curves(
    path: str | Path,
    metric: str = "val_loss_valid",
    x: str = "step",
    run_column: str | None = None,
    schedule: KnownSchedule | None = None,
    columns: str | Mapping[str, str] | None = None,
) -> list[Curve]:
    """Curves from a run directory or a curve CSV (see :func:`read_run_curve`, :func:`read_curve_csv`)."""
    path = Path(path)
    if path.is_dir():
        for given, flag, fix in ((schedule, "--schedule", "its config gives the schedule"), (columns, "--columns", "use --metric")):
            if given:
                raise ConfigError(f"{path} is a run directory: {fix}; drop {flag}.")
        return [read_run_curve(path, metric, x)]
    if path.is_file():
        return read_curve_csv(path, x, run_column, schedule, columns)
    raise DataError(f"{path} does not exist; give a run directory or a CSV with columns {x}, loss.")


def _checked(curve: Curve) -> Curve:
    ok = np.isfinite(curve.loss) & (curve.loss > 0) & (curve.step > 0)
    return dataclasses.replace(curve, step=curve.step[ok], loss=curve.loss[ok])


# --------------------------------------------------------------------------------------------------
# Fitting, with a residual-based prediction interval


@dataclass(frozen=True)
class CurveFit:
    """A fitted learning-curve law with the covariance of its parameters."""

    form: Form = field(repr=False)
    params: dict[str, float]
    n_points: int
    fit_steps: tuple[float, float]
    """The first and last step used in the fit."""
    residual_sd: float
    """Standard deviation of the log residuals, with n - p degrees of freedom (relative eval noise)."""
    theta_cov: np.ndarray = field(repr=False)
    """(P, P) covariance of the form's internal parameters, s²(JᵀJ)⁻¹."""
    areas: Callable[[np.ndarray], dict[str, np.ndarray]] | None = field(default=None, repr=False, compare=False)
    """For the LR-annealing law: x -> its inputs {S1, S2} (from the curve's schedule)."""
    dof: float = 0.0
    """Degrees of freedom of the residuals: the effective number of points (weighted) less every parameter
    fitted (a joint fit's per-run ones too), for the Student-t quantiles of the interval."""

    def predict(self, step: np.ndarray | float, n_params: float | None = None) -> np.ndarray:
        """Predicted loss at ``step`` (for the L(N, S) law, of a model with ``n_params``)."""
        return self.form.predict(self.params, self._inputs(step, n_params))

    def prediction_interval(
        self, step: np.ndarray | float, level: float = 0.95, n_params: float | None = None, scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interval for the loss a new evaluation at ``step`` will show (parameter spread plus eval noise), its
        half-width in log space times ``scale`` (a rollout's calibration, :func:`rollout_scale`)."""
        log_pred, se = self.log_prediction(step, n_params)
        half = scale * t_quantile((1 + level) / 2, self.dof) * se
        return np.exp(log_pred - half), np.exp(log_pred + half)

    def log_prediction(self, step: np.ndarray | float, n_params: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(log of the predicted loss, its standard error for a new evaluation) at ``step``."""
        theta = self.form.to_theta(self.params)[None]
        log_pred, jac = self.form.evaluate(theta, _log(self._inputs(step, n_params)), True)
        g = jac[0].T  # (m, P): forms give (K, P, m)
        return log_pred[0], np.sqrt(self.residual_sd**2 + np.einsum("mp,pq,mq->m", g, self.theta_cov, g))

    def _inputs(self, step: np.ndarray | float, n_params: float | None) -> dict[str, np.ndarray]:
        steps = np.atleast_1d(np.asarray(step, dtype=float))
        if self.areas is not None:
            return self.areas(steps)
        if "N" not in self.form.inputs:
            return {"S": steps}
        if n_params is None:
            raise DataError("the L(N, S) law needs the model size N of the run to predict.")
        return {"N": np.full_like(steps, n_params), "S": steps}


def _log(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore"):  # S1 = 0 before the first step is -inf, and the law handles it
        return {k: np.log(v) for k, v in inputs.items()}


Prior = tuple[int, float, float, float]
"""(index of a linear parameter, its prior mean, its prior sd, the eval noise sd the prior is weighed
against): one pseudo-observation added to the least squares, so the fit is the posterior mode."""


def _prior_row(prior: Prior | None, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """The prior's residual weight and its Jacobian row (empty when there is no prior)."""
    if prior is None:
        return np.zeros(0), np.zeros((0, n_params))
    i, _, sd, noise = prior
    row = np.zeros((1, n_params))
    row[0, i] = noise / sd
    return np.array([noise / sd]), row


Model = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
"""theta (P,), jac -> (log-prediction (n,), its Jacobian (n, P) or None): one law over the points fitted."""


def _form_model(form: Form, logx: dict[str, np.ndarray]) -> Model:
    """A form's log-prediction over fixed inputs, as a :data:`Model`."""

    def model(theta: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        log_pred, J = form.evaluate(theta[None], logx, jac)
        return log_pred[0], None if J is None else J[0].T  # forms give (K, P, n)

    return model


def _least_squares(
    model: Model, bounds: np.ndarray, logy: np.ndarray, sw: np.ndarray, starts: np.ndarray, prior: Prior | None = None
) -> np.ndarray:
    """The best of least-squares fits of log loss from each start, each residual scaled by ``sw`` (the
    square root of its weight), with ``prior`` as one more residual."""
    lower, upper = bounds.T
    weight, row = _prior_row(prior, len(lower))

    def residual(theta):
        data = sw * (model(theta, False)[0] - logy)
        return data if prior is None else np.append(data, weight * (theta[prior[0]] - prior[1]))

    def jacobian(theta):
        return np.vstack([sw[:, None] * model(theta, True)[1], row])

    def solve(x0: np.ndarray, budget: int | None) -> optimize.OptimizeResult:
        tol = 1e-8 if budget else 1e-12  # the polish runs a parameter the data push out all the way to its bound
        with np.errstate(all="ignore"):
            return optimize.least_squares(
                residual, np.clip(x0, lower, upper), jac=jacobian, bounds=(lower, upper), max_nfev=budget, xtol=tol, ftol=tol, gtol=tol
            )

    # every start a few steps, then the best to convergence: the starts of our curves all reach one optimum,
    # each in about 100 evaluations (a floor crawling to its bound), so polishing one is 3-4x faster
    screened = [solve(x0, SCREEN_EVALUATIONS if len(starts) > 1 else None) for x0 in starts]
    finite = [res for res in screened if np.isfinite(res.cost)]
    if not finite:
        raise FitError("the learning-curve fit failed from every start; check that the loss falls with the step.")
    best = min(finite, key=lambda res: res.cost)
    return best.x if len(starts) == 1 else solve(best.x, None).x


SCREEN_EVALUATIONS = 20
"""Evaluations each start of a multi-start curve fit gets before the best is polished to convergence."""


def span_weights(x: np.ndarray) -> np.ndarray:
    """Each point's weight: the share of the x span it stands for (half the gaps to its neighbours),
    scaled to a mean of 1, so a fit weighs every stretch of training alike whatever the evaluations'
    spacing: log-spaced evaluations would otherwise let the early transient outvote the recent slope
    the extrapolation rests on (uniform evaluations get equal weights, as before)."""
    if len(x) < 2:
        return np.ones_like(x)
    gaps = np.diff(x)
    w = np.concatenate([[gaps[0]], gaps[:-1] + gaps[1:], [gaps[-1]]]) / 2
    return w / w.mean() if w.mean() > 0 else np.ones_like(x)


def _solve(
    model: Model, bounds: np.ndarray, logy: np.ndarray, w: np.ndarray, starts: np.ndarray, p: int, prior_on: tuple[int, float, float] | None
) -> tuple[np.ndarray, float, np.ndarray, float]:
    """(theta, residual variance s², posterior covariance, degrees of freedom) of a weighted fit of log loss.

    ``prior_on`` = (index, mean, sd) of a Gaussian prior on one linear parameter, weighed against the
    eval noise of a first fit without it, then refitted from there. The degrees of freedom are Kish's
    effective number of points, (Σw)²/Σw², less the parameters: unequal weights carry less information.
    """
    n_eff = float(w.sum() ** 2 / (w @ w))
    dof = n_eff - p
    if dof < 1:
        raise FitError(
            f"{len(logy)} curve points after the transient ({n_eff:.1f} effective, at their spacing) are too few "
            f"to fit {p} parameters and their noise; evaluate more often or fit further (--fit-until)."
        )
    sw = np.sqrt(w)
    rows: Prior | None = None
    theta = _least_squares(model, bounds, logy, sw, starts)
    if prior_on is not None:
        resid = sw * (logy - model(theta, False)[0])
        rows = (*prior_on, max(float(np.sqrt(resid @ resid / dof)), 1e-6))
        theta = _least_squares(model, bounds, logy, sw, theta[None], rows)
    log_pred, jac = model(theta, True)
    resid = sw * (logy - log_pred)
    s2 = float(resid @ resid) / dof
    J = np.vstack([sw[:, None] * jac, _prior_row(rows, p)[1]])  # (n [+ 1], P)
    return theta, s2, s2 * np.linalg.pinv(J.T @ J), dof


def _fit(
    form: Form,
    inputs: dict[str, np.ndarray],
    loss: np.ndarray,
    x: np.ndarray,
    areas: Callable | None = None,
    prior: tuple[str, float, float] | None = None,
    weights: np.ndarray | None = None,
) -> CurveFit:
    """Least squares on log loss, each point weighed by ``weights`` (default equal); ``prior`` = (parameter,
    mean, sd) adds a Gaussian prior on one linear parameter and the covariance is the posterior's."""
    p = len(form.params)
    if len(loss) <= p + 1:
        raise FitError(
            f"{len(loss)} curve points after the transient are too few to fit {p} parameters and their "
            "noise; evaluate more often or fit further (--fit-until)."
        )
    w = np.ones_like(loss) if weights is None else weights
    on = None if prior is None else (form.params.index(prior[0]), prior[1], prior[2])
    theta, s2, cov, dof = _solve(_form_model(form, _log(inputs)), np.array(form.bounds), np.log(loss), w, form.start_grid("default"), p, on)
    return CurveFit(form, form.param_dict(theta), len(loss), (float(x.min()), float(x.max())), float(np.sqrt(s2)), cov, areas, dof)


def default_skip(curve: Curve, fit_until: float | None = None) -> float:
    """The early transient left out by default: ``TRANSIENT_WARMUPS`` warmups, or with no warmup known
    ``TRANSIENT_FRACTION`` of the last point fitted."""
    if curve.warmup_end > 0:
        return TRANSIENT_WARMUPS * curve.warmup_end
    end = float(curve.step.max()) if fit_until is None else min(float(fit_until), float(curve.step.max()))
    return TRANSIENT_FRACTION * end


def _transient_end(curve: Curve, fit_until: float | None, skip_until: float | None) -> float:
    """Where the fitted points start: ``skip_until``, else the default transient (:func:`default_skip`)."""
    return default_skip(curve, fit_until) if skip_until is None else skip_until


def _window(curve: Curve, fit_until: float | None, skip_until: float | None) -> np.ndarray:
    start = _transient_end(curve, fit_until, skip_until)
    return (curve.step > start) & (curve.step <= (np.inf if fit_until is None else fit_until))


def _area_inputs(curve: Curve) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """x -> {S1, S2} of the LR-annealing law in the units of :func:`area_units` (parameters O(1) whatever
    the LR's units); S2 enters as 1 + S2 to stay positive for the log inputs."""
    assert curve.schedule is not None
    u1, u2 = area_units(curve.schedule, curve.x_per_step)

    def areas(x: np.ndarray) -> dict[str, np.ndarray]:
        s1, s2 = annealing_areas(curve.schedule, x, curve.x_per_step)
        return {"S1": s1 / u1, "S2": 1 + s2 / u2}

    return areas


def fit_curve(
    curve: Curve, fit_until: float | None = None, skip_until: float | None = None, schedule_aware: bool = True
) -> CurveFit:
    """Fit one curve's points in (``skip_until``, ``fit_until``]: the LR-annealing law, with the prior
    ``ANNEAL_GAIN_PRIOR`` on r, where the curve knows its schedule (and ``schedule_aware``), else
    L(S) = L_inf + b S^-c.

    ``skip_until`` defaults to the transient (:func:`default_skip`).
    """
    keep = _window(curve, fit_until, skip_until)
    x = curve.step[keep]
    if curve.schedule is None or not schedule_aware:
        return _fit(CURVE_FORM, {"S": x}, curve.loss[keep], x, weights=span_weights(x))
    areas = _area_inputs(curve)
    return _fit(ANNEALING_FORM, areas(x), curve.loss[keep], x, areas, ("r", *ANNEAL_GAIN_PRIOR), span_weights(x))


SHARED = ("alpha", "r")
"""The LR-annealing law's parameters a joint fit shares across runs: the shape of the curve and the
relative gain of a decay; each run keeps its own L0 and A (its size, data and LR set those)."""


def fit_curves_joint(
    curves: Sequence[Curve], fit_until: float | None = None, skip_until: float | None = None
) -> CurveFit:
    """The LR-annealing law fitted jointly to several runs' curves, alpha and r shared, L0 and A per run,
    so a short curve borrows the shape of the longer ones; returns the first curve's law.

    ``fit_until`` cuts the first curve only (the run in progress; the others are the finished runs it
    borrows from); ``skip_until`` (default: each run's transient) applies to all. The prior on r is
    kept (one pseudo-observation for the table); the interval is the first run's marginal of the joint
    posterior, with the degrees of freedom of the whole fit.
    """
    if any(c.schedule is None for c in curves):
        raise DataError("the joint LR-annealing fit needs every run's lr; give an lr column or run directories.")
    keeps = [_window(c, fit_until if i == 0 else None, skip_until) for i, c in enumerate(curves)]
    own_params = len(ANNEALING_FORM.params) - len(SHARED)
    if keeps[0].sum() <= own_params:
        raise FitError(
            f"'{curves[0].name}' has {int(keeps[0].sum())} points after its transient; the joint fit needs "
            f"{own_params + 1} to fit its own L0 and A: evaluate it more often or fit further (--fit-until)."
        )
    singles: list[CurveFit | None] = []  # each run fitted alone, to start the joint fit from
    for i, c in enumerate(curves):
        try:
            singles.append(fit_curve(c, fit_until if i == 0 else None, skip_until))
        except FitError:  # too few points to be fitted alone (that is what the joint fit is for): the others' median
            singles.append(None)
    areas = [_area_inputs(c) for c in curves]
    logx = [_log(a(c.step[k])) for a, c, k in zip(areas, curves, keeps)]
    logy = np.concatenate([np.log(c.loss[k]) for c, k in zip(curves, keeps)])
    w = np.concatenate([span_weights(c.step[k]) for c, k in zip(curves, keeps)])  # each run's span weighs alike
    k, shared = len(curves), [ANNEALING_FORM.params.index(s) for s in SHARED]
    own = [i for i in range(len(ANNEALING_FORM.params)) if i not in shared]
    # joint theta: the shared parameters, then each run's own (L0, A) in the form's internal space
    index = [np.array([len(shared) + len(own) * j + own.index(i) if i in own else shared.index(i) for i in range(4)]) for j in range(k)]
    P = len(shared) + len(own) * k

    def model(theta: np.ndarray, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        preds, J = [], np.zeros((len(logy), P)) if jac else None
        row = 0
        for j in range(k):
            log_pred, Jj = ANNEALING_FORM.evaluate(theta[index[j]][None], logx[j], jac)
            preds.append(log_pred[0])
            if jac:
                J[row : row + len(log_pred[0]), index[j]] = Jj[0].T  # forms give (K, P, n)
            row += len(log_pred[0])
        return np.concatenate(preds), J

    fitted = [ANNEALING_FORM.to_theta(f.params) for f in singles if f is not None]
    starts = []
    if fitted:
        thetas = [np.median(fitted, axis=0) if f is None else ANNEALING_FORM.to_theta(f.params) for f in singles]
        start = np.zeros(P)
        for j, t in enumerate(thetas):
            start[index[j]] = t
        for t in (thetas[0], np.median(thetas, axis=0), thetas[int(np.argmax([c.step.max() for c in curves]))]):
            s = start.copy()
            s[: len(shared)] = t[shared]
            starts.append(s)
    else:  # no run can be fitted alone: the form's own starts, the same for every run
        for t in ANNEALING_FORM.start_grid("default"):
            s = np.zeros(P)
            for j in range(k):
                s[index[j]] = t
            starts.append(s)
    bounds = np.array([ANNEALING_FORM.bounds[i] for i in shared] + [ANNEALING_FORM.bounds[i] for i in own] * k)
    prior = (SHARED.index("r"), *ANNEAL_GAIN_PRIOR)
    theta, s2, cov, dof = _solve(model, bounds, logy, w, np.array(starts), P, prior)
    x = curves[0].step[keeps[0]]
    params = ANNEALING_FORM.param_dict(theta[index[0]])
    return CurveFit(
        ANNEALING_FORM, params, len(logy), (float(x.min()), float(x.max())), float(np.sqrt(s2)),
        cov[np.ix_(index[0], index[0])], areas[0], dof,
    )  # fmt: skip


def _decay_seen(curve: Curve, fit_until: float | None, at: float) -> float | None:
    """The fraction of the annealing area at ``at`` already reached by the last point fitted (the last at or
    before ``fit_until``); None when the curve has no schedule or its LR never decays before ``at``."""
    if curve.schedule is None:
        return None
    fitted = curve.step[curve.step <= (np.inf if fit_until is None else float(fit_until))]
    end = float(fitted.max()) if len(fitted) else float(curve.step.min())  # the last point fitted
    _, s2 = annealing_areas(curve.schedule, np.array([end, at]), curve.x_per_step)
    return None if s2[1] <= 0 else float(s2[0] / s2[1])


def fit_curves_ns(
    curves: Sequence[Curve], fit_until: float | None = None, skip_until: float | None = None
) -> CurveFit:
    """Fit Kaplan eq 1.6 L(N, S) jointly to several runs' curves (each with its N), after each transient.

    ``fit_until`` and ``skip_until`` (default: each run's transient) limit every curve; S is the raw step,
    so runs should share a batch size (else convert to S_min with eq 5.4 first).
    """
    if any(c.n_params is None for c in curves):
        raise DataError("the L(N, S) fit needs N for every run: a run directory, or a column N in the CSV.")
    if len({c.n_params for c in curves}) < 2:
        raise FitError("the L(N, S) fit needs runs of at least 2 model sizes; give one curve for L(S).")
    keeps = [_window(c, fit_until, skip_until) for c in curves]
    n = np.concatenate([np.full(k.sum(), c.n_params) for c, k in zip(curves, keeps)])
    s = np.concatenate([c.step[k] for c, k in zip(curves, keeps)])
    loss = np.concatenate([c.loss[k] for c, k in zip(curves, keeps)])
    return _fit(NS_FORM, {"N": n, "S": s}, loss, s)


ROLLOUT_FRACTION = 0.5
"""The rollout that calibrates a curve's interval fits the points up to this fraction of the last one fitted
and predicts the rest of them (:func:`rollout_scale`)."""

ROLLOUT_WARN = 2.0
"""A rollout scale above this warns: the law missed the curve's own later points by more than twice its error."""

WIDE_INTERVAL = 2.0
"""A prediction interval whose upper end is this many times its lower warns that the curve does not determine
the loss there (on our held-out curves from 20%: [0.0008, 5334] for one that plateaus after its warmup)."""


def rollout_scale(
    curves: Sequence[Curve] | Curve, fit_until: float | None = None, skip_until: float | None = None,
    schedule_aware: bool = True, joint: bool = True,
) -> float | None:
    """How far off its own error bars the law is on the first curve's own later points: fitted (as
    :func:`predict_curve` fits it, with the same law and transient) on the points up to ``ROLLOUT_FRACTION`` of
    the first curve's last one fitted, it predicts the others; the scale is the rms of their errors in standard
    errors, at least 1. None when that shorter fit cannot be made (too few points).

    Several curves are cut as the main fit cuts them: the joint LR-annealing fit keeps the other runs whole (they
    are finished), L(N, S) cuts every run at the same step. The interval of a prediction from the whole window
    assumes the law holds beyond it; a curve that has already bent away from the law inside the window says it
    does not, and by how much (forward chaining, as the laws' own calibration, docs/fitting.md). On our
    held-out curves predicted from half their length, the 95% intervals so widened covered 8 of 10 final
    losses, 7 before; on the tuning curves the scale stayed within 1.1 (benchmarks/curve_extrapolation.py).
    """
    curves = [curves] if isinstance(curves, Curve) else list(curves)
    curve = curves[0]
    fitted = curve.step[_window(curve, fit_until, skip_until)]
    if not len(fitted):
        return None
    end, skip = float(fitted.max()), _transient_end(curve, fit_until, skip_until)  # the main fit's last point and transient
    inner = ROLLOUT_FRACTION * end
    later = (curve.step > max(inner, skip)) & (curve.step <= end)
    if not later.any():
        return None
    try:
        if len(curves) == 1:
            fit = fit_curve(curve, inner, skip, schedule_aware)
        elif joint and all(c.schedule is not None for c in curves):
            fit = fit_curves_joint(curves, inner, skip_until)
        else:
            fit = fit_curves_ns(curves, inner, skip_until)
    except FitError:
        return None
    log_pred, se = fit.log_prediction(curve.step[later], curve.n_params)
    z = (np.log(curve.loss[later]) - log_pred) / se
    return max(1.0, float(np.sqrt(np.mean(z**2))))


@dataclass(frozen=True)
class CurvePrediction:
    """The predicted loss of a run at a later step, with its interval, and the observed value if any."""

    run: str
    at_step: float
    loss: float
    interval: tuple[float, float]
    level: float
    law: str
    params: dict[str, float]
    n_points: int
    fit_steps: tuple[float, float]
    residual_sd: float
    observed: float | None = None
    """The curve's own loss at ``at_step`` when it has one (a backtest of the extrapolation)."""
    x: str = "step"
    """What ``at_step`` and ``fit_steps`` count: ``step`` or ``tokens``."""
    decades_beyond: float = 0.0
    """log10(at_step / the last point fitted): how far the prediction extrapolates."""
    warnings: list[dict] = field(default_factory=list)
    """``{"kind", "param", "message"}`` entries, as a fit's warnings (extrapolation past a decade)."""
    interval_scale: float | None = None
    """The factor the interval was widened by (:func:`rollout_scale`; 1 when the law held on the curve's own
    later points); None when it was not calibrated (too few points for the rollout)."""
    path: dict[str, list[float]] = field(default_factory=dict)
    """The law and its interval on the way to ``at_step``: ``{"x", "loss", "low", "high"}`` at ``PATH_POINTS``
    log-spaced x from the first point fitted (or ``at_step``, if before it) on, as ``predict --plot`` draws it."""


def predict_curve(
    curves: Sequence[Curve],
    at_step: float | None = None,
    fit_until: float | None = None,
    level: float = 0.95,
    skip_until: float | None = None,
    joint: bool = True,
) -> CurvePrediction:
    """Predict the loss of the first curve at ``at_step`` (default: its run's last step) from the
    curves' points up to ``fit_until``.

    One curve: the LR-annealing law when it knows its LR, else L(S). Several that know their LR: the
    LR-annealing law with alpha and r shared (:func:`fit_curves_joint`; ``fit_until`` cuts the first only);
    otherwise, not ``joint``, or when the first has too few points of its own for that, L(N, S) fitted
    jointly. Either predicts the first curve's run. Points up to ``skip_until`` (default: each curve's
    transient, :func:`default_skip`) are left out.
    """
    if not curves:
        raise DataError("no learning curve given.")
    target = curves[0]
    if at_step is None:
        if target.final_step is None:
            raise ConfigError(f"'{target.name}' does not say its last step; give --at-step.")
        at_step = target.final_step
    if not at_step > 0 or not 0 < level < 1:
        raise ConfigError(f"--at-step must be a positive step and --level in (0, 1) (got {at_step}, {level}).")
    if target.schedule is not None and at_step > target.schedule[0].max() * (1 + 1e-9):  # past it, the LR is a guess
        raise ConfigError(
            f"'{target.name}' gives its LR up to {target.x_name} {target.schedule[0].max():g}, before the "
            f"{target.x_name} {at_step:g} to predict; add rows with the planned lr up to it (loss left empty), or "
            "predict at most that far."
        )
    warnings: list[dict] = []
    if len(curves) == 1:
        seen = _decay_seen(target, fit_until, at_step)
        try:
            fit = fit_curve(target, fit_until, skip_until, schedule_aware=seen is not None)
        except FitError:  # too few points for the LR-annealing law's four parameters: L(S) has three
            if seen is None:
                raise
            fit = fit_curve(target, fit_until, skip_until, schedule_aware=False)
            warnings.append(warning(
                "schedule", "S",
                f"too few points after the transient for the LR-annealing law's four parameters, so L(S), which does "
                f"not see the LR, was fitted: {1 - seen:.0%} of the LR decay's annealing area is still to come after the "
                "points fitted and its gain is not in the prediction, which is then too high; fit further, or evaluate "
                "the run more often.",
            ))  # fmt: skip
            seen = None  # the prior on the decay's gain is not used
        law = "L = L0 + A S1^-alpha - C S2 (Tissue et al. 2024)" if fit.areas else "L(S) = L_inf + b S^-c"
        if seen is not None and seen < DECAY_SEEN:
            mean, sd = ANNEAL_GAIN_PRIOR
            warnings.append(warning(
                "prior", "C",
                f"the LR decays mostly after the points fitted ({seen:.0%} of its annealing area by then): "
                f"the decay's gain comes from the prior C = r alpha A, r = {mean:g} ± {sd:g}, not from this "
                "curve, and the interval carries the prior's spread; fit past the start of the decay to measure it.",
            ))
    else:
        fit = None
        if joint and all(c.schedule is not None for c in curves):
            try:
                fit = fit_curves_joint(curves, fit_until, skip_until)
                law = f"L = L0 + A S1^-alpha - C S2 (Tissue et al. 2024), alpha and r shared by {len(curves)} runs"
            except FitError:  # the run to predict has too few points of its own: its size places it among the others
                if any(c.n_params is None for c in curves) or len({c.n_params for c in curves}) < 2:
                    raise
    if fit is None:
        fit = fit_curves_ns(curves, fit_until, skip_until)
        law = "L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (Kaplan eq 1.6)"
        blind = _decay_seen(target, fit_until, at_step)
        if blind is not None and blind < NS_DECAY_SEEN:
            warnings.append(warning(
                "schedule", "S",
                f"'{target.name}' has {1 - blind:.0%} of its LR decay's annealing area still to come after the points "
                "fitted, and L(N, S) does not see the LR, so the decay's gain is not in its prediction; fit further, "
                "or evaluate the run more often (the joint LR-annealing fit needs 3 of its points after the transient).",
            ))  # fmt: skip
    aware = fit.areas is not None  # the rollout refits the law the prediction used (joint: the LR-annealing one)
    scale = rollout_scale(curves, fit_until, skip_until, schedule_aware=aware, joint=aware)
    loss = float(fit.predict(at_step, target.n_params)[0])
    lo, hi = fit.prediction_interval(at_step, level, target.n_params, scale or 1.0)
    if not (np.isfinite(loss) and loss > 0 and np.isfinite(lo[0]) and np.isfinite(hi[0])):
        raise FitError(
            f"the {law} fit of '{target.name}' predicts no finite loss at {target.x_name} {at_step:g}; "
            "fit more of the curve (--fit-until) or predict nearer."
        )
    match = np.isclose(target.step, at_step)
    observed = float(target.loss[match][-1]) if match.any() else None
    decades = float(max(np.log10(at_step / fit.fit_steps[1]), 0.0))
    warnings += [  # only "at": a curve law's boxes are wide, so "near" (1% of the box) is no finding there
        w for w in form_bound_warnings(
            fit.form, fit.form.to_theta(fit.params),
            fix="fit more of the curve (--fit-until) before trusting a long extrapolation",
        ) if w["kind"] == "at_bound"
    ]  # fmt: skip
    if scale is not None and scale > ROLLOUT_WARN:
        warnings.append(warning(
            "rollout", target.x_name,
            f"fitted on the points up to {target.x_name} {ROLLOUT_FRACTION * fit.fit_steps[1]:g}, the law missed the "
            f"later ones by {scale:.1f} times its own error: the curve does not follow it yet, and the interval is "
            f"widened {scale:.1f}x; fit further (--fit-until) before trusting the prediction.",
        ))  # fmt: skip
    if hi[0] > WIDE_INTERVAL * lo[0]:
        warnings.append(warning(
            "unidentified", "loss",
            f"the {level:.0%} interval [{lo[0]:.4g}, {hi[0]:.4g}] spans a factor {hi[0] / lo[0]:.3g}: the points fitted do "
            f"not determine the loss at {target.x_name} {at_step:g}; fit further (--fit-until) or predict nearer.",
        ))  # fmt: skip
    if decades > EXTRAPOLATION_WARN_DECADES:
        warnings.append(warning(
            "extrapolation", target.x_name,
            f"the prediction at {target.x_name} {at_step:g} is {decades:.1f} decades beyond the last point "
            f"fitted ({fit.fit_steps[1]:g}); past one decade it is a guess: fit on more of the curve.",
        ))  # fmt: skip
    first, last = fit.fit_steps
    if target.schedule is None and at_step > last:  # nothing says whether the LR decays before at_step
        warnings.append(warning(
            "schedule", "S",
            f"'{target.name}' gives no learning rate, so the law extrapolates it as if its LR went on as over the "
            "points fitted; a decay still to come (cosine, WSD) lowers the loss further, and the prediction is then "
            "too high (L(S) from the first fifth of our held-out cosine runs: +11% to +16% on four of five): give an "
            "lr column, --schedule KIND,steps=S as its paper states it, or the run directory.",
        ))  # fmt: skip
    if at_step < first:  # the law was fitted after the transient; before it the loss falls faster than any power law
        warnings.append(warning(
            "extrapolation", target.x_name,
            f"the prediction at {target.x_name} {at_step:g} lies before the first point fitted ({first:g}), in the "
            f"early transient the fit leaves out, where the law does not hold: predict past {first:g}, or set "
            "--skip-until lower if the transient ends earlier.",
        ))  # fmt: skip
    if at_step > last and last < SHORT_SPAN * first:
        warnings.append(warning(
            "extrapolation", target.x_name,
            f"the points fitted span only {target.x_name} {first:g}-{last:g} after the transient (a factor "
            f"{last / first:.1f}), too short to measure the curve's exponent, and the prediction reaches "
            f"{at_step / last:.1f}x beyond: its interval assumes the law holds; fit further (--fit-until).",
        ))  # fmt: skip
    params = {**fit.params, "C": annealing_coefficient(fit.params)} if fit.form is ANNEALING_FORM else fit.params
    x = np.geomspace(min(first, at_step), max(last, at_step), PATH_POINTS)
    low, high = fit.prediction_interval(x, level, target.n_params, scale or 1.0)
    path = {"x": x.tolist(), "loss": fit.predict(x, target.n_params).tolist(), "low": low.tolist(), "high": high.tolist()}
    return CurvePrediction(
        target.name, float(at_step), loss, (float(lo[0]), float(hi[0])), level, law, params,
        fit.n_points, fit.fit_steps, fit.residual_sd, observed, target.x_name, decades, warnings, scale, path,
    )  # fmt: skip


PATH_POINTS = 60
"""Points of a prediction's :attr:`CurvePrediction.path`: enough for a smooth line on a log axis."""


# --------------------------------------------------------------------------------------------------
# Checkpoint tables: each checkpoint's loss as if its run's schedule had ended there

ANNEAL_PSEUDO_STEPS = 1000
"""Optimiser steps assumed per run when a checkpoint table gives tokens but no step count: the LR
areas are sums over steps, and the correction depends on the count only through the momentum's memory."""


def _anneal_shift(xs: np.ndarray, lrs: np.ndarray, loss: np.ndarray) -> np.ndarray | None:
    """One run's shift of each checkpoint's loss (0 at its end); zeros when it never decays, None when the
    law cannot be fitted to it."""
    end, per_step = float(xs.max()), float(xs.max()) / ANNEAL_PSEUDO_STEPS
    schedule = (np.concatenate([[0.0], xs]), np.concatenate([[lrs[0]], lrs]))  # the LR before the first checkpoint is unknown: held
    if annealing_areas(schedule, np.array([end]), per_step)[1][0] <= 0:  # never decays: every checkpoint already is a run that ends there
        return np.zeros_like(xs)
    try:
        fit = fit_curve(Curve(step=xs, loss=loss, schedule=schedule, x_per_step=per_step))
    except FitError:
        return None
    u1, u2 = area_units(schedule, per_step)  # the units the law was fitted in, for the compressed schedules too

    def law(areas: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return fit.form.predict(fit.params, {"S1": areas[0] / u1, "S2": 1 + areas[1] / u2})

    as_run = law(annealing_areas(schedule, xs, per_step))
    compressed = np.array([law(annealing_areas((schedule[0] * t / end, schedule[1]), np.array([t]), per_step))[0] for t in xs])
    shift = np.where(xs < end, compressed - as_run, 0.0)
    return shift if np.all(np.isfinite(shift)) and np.all(loss + shift > 0) else None


def anneal_corrected(
    df: pd.DataFrame, run_column: str, x: str = "D", lr: str = "lr", target: str = "loss"
) -> tuple[pd.DataFrame, list[str]]:
    """A checkpoint table whose losses are moved to those of runs whose schedules end at each checkpoint.

    An intermediate checkpoint of a decaying schedule (cosine, WSD) has not had its decay: its loss
    is above that of a run of the same length (Hoffmann et al. 2022 §2 and App B; spec §6 item 5). Per
    run, the LR-annealing law (Tissue et al. 2024) is fitted to the run's own checkpoints and ``lr``;
    each checkpoint's loss then gains the law's difference between the run's schedule compressed to
    end there and the schedule as run: L' = L + L_law(compressed) − L_law(as run). A run's last
    checkpoint is unchanged; a run with no decay, or too few points to fit, is left as it is and named.
    Returns the table and notes for the fit.
    """
    out = df.copy()
    corrected, kept = 0, []
    for run, rows in df.groupby(run_column, sort=False):
        rows = rows.sort_values(x)
        xs, lrs, loss = (numeric(rows[c].to_numpy()).astype(float) for c in (x, lr, target))
        ok = np.isfinite(xs) & np.isfinite(lrs) & np.isfinite(loss) & (xs > 0) & (loss > 0) & (lrs >= 0)
        shift = None
        if ok.sum() >= len(ANNEALING_FORM.params) + 2 and lrs[ok].max() > 0:
            shift = _anneal_shift(xs[ok], lrs[ok], loss[ok])
        if shift is None:
            kept.append(str(run))
        elif shift.any():
            out.loc[rows.index[ok], target] = loss[ok] + shift
            corrected += 1
    notes = []
    if corrected:
        notes.append(
            f"checkpoint losses of {corrected} decaying-LR run(s) moved to runs whose schedules end at each "
            "checkpoint (LR-annealing law per run, Tissue et al. 2024)"
        )
    if kept:
        notes.append(f"no LR correction for {len(kept)} run(s) with too few points or LRs to fit: {', '.join(kept[:5])}")
    return out, notes
