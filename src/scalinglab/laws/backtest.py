"""Backtesting a law: fit on the small runs, predict the large ones, and score the predictions.

An ordered split such as ``"C<1e21"`` or ``"N<=1e8"`` selects the training runs; the rest are
predicted with prediction intervals. The score is what a user planning a larger run needs: mean
absolute error, bias (mean signed error, prediction minus actual), the worst absolute and relative
errors, and how often the intervals covered the actual loss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.auto import fit_auto
from scalinglab.laws.diagnostics import warning
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import Form
from scalinglab.laws.tables import fit_frame

_SPLIT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


@dataclass(frozen=True)
class Split:
    """``column op value``: the rows it holds are the training runs."""

    column: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"

    def train_mask(self, data: pd.DataFrame) -> np.ndarray:
        if self.column not in data.columns:
            raise DataError(f"split column '{self.column}' not in the table; columns found: {', '.join(map(str, data.columns))}.")
        return _OPS[self.op](pd.to_numeric(data[self.column], errors="coerce").to_numpy(), self.value)


def parse_split(text: str) -> Split:
    """Parse ``"C<1e21"``-style splits (a column, one of < <= > >=, a number); no eval."""
    m = _SPLIT.match(text)
    if not m:
        raise ConfigError(f"split '{text}' is not COLUMN<VALUE; write e.g. --train 'C<1e21' or --train 'N<=1e8'.")
    return Split(m.group(1), m.group(2), float(m.group(3)))


@dataclass
class BacktestResult:
    """Scores of a law fitted on the training runs and evaluated on the held-out ones."""

    split: str
    mae: float
    bias: float
    """Mean of prediction - actual: positive means the law over-predicts the held-out loss."""
    max_abs_error: float
    max_rel_error: float
    coverage: float
    """Fraction of held-out runs inside their ``level`` prediction interval."""
    level: float
    n_train: int
    n_test: int
    table: pd.DataFrame
    """One row per held-out run: inputs, actual, predicted, lo, hi, error, rel_error, covered."""
    fit: FitResult
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """The fit's warnings and the backtest's own (intervals that covered too few held-out runs)."""

    def to_dict(self, points: bool = False) -> dict[str, Any]:
        out = {
            "law": self.fit.law,
            "split": self.split,
            "mae": self.mae,
            "bias": self.bias,
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "coverage": self.coverage,
            "level": self.level,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "params": self.fit.params,
            "converged": self.fit.converged,
            "constraints": self.fit.constraints,
            "warnings": self.warnings,
            "candidates": self.fit.candidates,
        }
        if points:
            out["points"] = self.table.reset_index(names="row").to_dict(orient="records")
        return out


def backtest(
    form: Form | str,
    data: pd.DataFrame | Mapping[str, Any],
    train: str | Split,
    *,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
    **fit_kwargs: Any,
) -> BacktestResult:
    """Fit ``form`` on the rows ``train`` selects, predict the others; ``fit_kwargs`` go to :func:`fit_law`.

    ``bootstrap`` refits give the parameter part of the prediction intervals (0: noise only). ``form="auto"``
    selects the law inside the training runs (:func:`scalinglab.laws.auto.fit_auto`).
    """
    split = parse_split(train) if isinstance(train, str) else train
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    mask = split.train_mask(df)
    # Intervals widen with the distance along the split's column when it can be logged (N, C...).
    axis = split.column if (pd.to_numeric(df[split.column], errors="coerce") > 0).all() else None
    n_train, n_test = int(mask.sum()), int((~mask).sum())
    if n_test == 0:
        raise FitError(f"split '{split}' keeps every run for training; choose a threshold that holds some out.")
    if n_train == 0:
        raise FitError(f"split '{split}' leaves no training runs; choose a threshold that keeps some.")
    weights = fit_kwargs.pop("weights", None)
    if weights is not None and not isinstance(weights, str):
        weights = np.asarray(weights, dtype=float)[mask]
    if form == "auto":  # the whole selection runs on the training runs only, never on the held-out ones
        fit = fit_auto(df[mask], axis=axis, weights=weights, bootstrap=bootstrap, level=level, seed=seed, **fit_kwargs)
    else:
        fit = fit_law(form, df[mask], weights=weights, bootstrap=bootstrap, level=level, seed=seed, axis=axis, **fit_kwargs)
    form = fit.form
    test = fit_frame(df[~mask], form, None, extra=[axis] if axis else [], to_fit=False)  # predicted, not fitted: any count
    if fit.run_column:  # a checkpoint table is scored on each held-out run's final checkpoint
        progress = next((c for c in ("D", "step", "tokens", "S") if c in df.columns), None)  # how far along its run (S_min is not monotone)
        held = df[~mask].groupby(fit.run_column)
        last = held[progress].idxmax() if progress else held.tail(1).index
        test = test.loc[np.sort(np.asarray(last))]
        n_test = len(test)
    actual = test[form.target].to_numpy()
    predicted = fit.predict(test)
    lo, hi = fit.prediction_interval(test, level)
    error = predicted - actual
    table = test[list(dict.fromkeys([*form.inputs, *([axis] if axis else [])]))].assign(
        actual=actual, predicted=predicted, lo=lo, hi=hi, error=error, rel_error=error / actual,
        covered=(lo <= actual) & (actual <= hi),
    )
    coverage = float(table["covered"].mean())
    return BacktestResult(
        split=str(split),
        mae=float(np.mean(np.abs(error))),
        bias=float(np.mean(error)),
        max_abs_error=float(np.max(np.abs(error))),
        max_rel_error=float(np.max(np.abs(error / actual))),
        coverage=coverage,
        level=level,
        n_train=n_train,
        n_test=n_test,
        table=table,
        fit=fit,
        warnings=[*fit.warnings, *coverage_warning(coverage, level, n_test)],
    )


COVERAGE_MIN_RUNS = 5
"""Held-out runs below which a backtest's coverage is not judged (one miss in four is 75%)."""

COVERAGE_INDEPENDENT_RUNS = 10
"""Held-out runs share one fitted law, so their misses come together: they count as at most this many
independent draws when judging coverage (on a true law, 14 held-out runs were covered 75% in 1 of 16 draws
and 93-100% in the rest)."""


def coverage_warning(coverage: float, level: float, n: int) -> list[dict[str, Any]]:
    """A warning when the intervals covered fewer held-out runs than ``level`` allows by chance: below the
    one-sided 1% point of the normal approximation to Binomial(m, level), m = min(n, 10) independent draws.
    Intervals that cover too many are conservative, not wrong: no warning."""
    if n < COVERAGE_MIN_RUNS:
        return []
    floor = level - 2.326 * np.sqrt(level * (1 - level) / min(n, COVERAGE_INDEPENDENT_RUNS))  # z at 1%
    if coverage >= floor:
        return []
    return [warning(
        "coverage", None,
        f"the {level:.0%} prediction intervals covered {coverage:.0%} of the {n} held-out runs (intervals that hold "
        f"cover about {level:.0%}, and below {floor:.0%} rarely by chance): they may be too narrow this far beyond the "
        "training runs; read the errors, not the intervals, or try --law auto (its intervals carry the spread between laws).",
    )]  # fmt: skip
