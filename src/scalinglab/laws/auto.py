"""Choosing a law by how well it extrapolates: forward-chaining ("rollout") cross-validation inside the data.

A law is worth its error on the next, larger run. :func:`rollout` fits a law on the runs below each step
of the extrapolation axis (N, C, or log N + log D) and predicts the runs of the next step; the mean
absolute log error over those steps is the law's CV error. A step never splits runs of (nearly) one axis
value: the sizes of an IsoFLOP budget all sit at one C, and predicting some from the others would score
no extrapolation at all. :func:`fit_auto` scores candidate forms (chinchilla, chinchilla_tied, kaplan_nd,
variants with the floor E kept off 0, and floorless ones) that way and keeps the simplest whose CV error
is within one standard error of the best (the one-standard-error rule, Hastie et al. ESL §7.10): the
rollout steps are far shorter than the extrapolation asked of a law, so a parameter the CV cannot show
to help (a floor the runs do not reach) is not trusted to help further out. Every candidate is
recorded; the candidates close to the best widen the prediction intervals by their spread around it. Nothing outside the rows given is ever used, so a backtest that calls it on its
training split selects inside that split only (spec §6 item 13: hold out the largest run).
:func:`largest_from_rest` is the check a report shows: the largest model predicted from the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, FitError, ScalinglabError
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import Form, constrain, get_form

MAX_LEVELS = 10
"""An axis with more distinct values than this is cut at quantiles into this many steps."""
MERGE_GAP = 0.02
"""Axis values (logs) closer than this to a neighbour are one step: an IsoFLOP budget's runs differ in C by
a rounding of their step counts (0.1% in the demo), not by an extrapolation."""
MERGE_WIDTH = 0.1
"""A chain of close values wider than this (in log units) is a continuum, not one budget: its values stay apart."""
MAX_FOLDS = 4
"""Rollout folds per candidate: the last steps, nearest the extrapolation that matters."""
KEEP_WITHIN = 2.0
"""Candidates whose CV error is within this factor of the best share the prediction intervals' spread."""
FLOOR_SHARE = 0.5
"""The E-constrained variants keep E above this share of the smallest loss fitted (a floor must exist)."""
NO_FLOOR = 1e-4
"""E of the floorless variants, in the loss's units: no floor within reach of any loss (the form's E must be > 0)."""


@dataclass(frozen=True)
class Candidate:
    """A law with the constraints it is fitted under; ``constraints`` may depend on the rows fitted."""

    name: str
    """Label in reports, e.g. ``"chinchilla[E>=Lmin/2]"``."""
    law: str
    constraints: Callable[[pd.DataFrame], dict[str, Any]] = field(default=lambda rows: {})
    """``{"tie": ..., "fix": ..., "bounds": ...}`` for ``fit_law`` from the training rows."""

    def free(self, rows: pd.DataFrame) -> int:
        """Number of parameters fitted (ties and fixes left out): the candidate's complexity."""
        spec = self.constraints(rows)
        return len(constrain(get_form(self.law), spec.get("tie"), spec.get("fix"), spec.get("bounds")).form.params)

    def floor(self, rows: pd.DataFrame) -> bool:
        """Whether the candidate fits a floor E: a claim about losses the runs have not reached."""
        return "E" in get_form(self.law).params and "E" not in (self.constraints(rows).get("fix") or {})


def _floor_kept(rows: pd.DataFrame) -> dict[str, Any]:
    low = float(pd.to_numeric(rows["loss"]).min())
    return {"bounds": {"E": (FLOOR_SHARE * low, low)}}


def _no_floor(rows: pd.DataFrame) -> dict[str, Any]:
    return {"fix": {"E": NO_FLOOR}}


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("chinchilla", "chinchilla"),
    Candidate("chinchilla_tied", "chinchilla_tied"),
    Candidate("kaplan_nd", "kaplan_nd"),
    Candidate("chinchilla[E>=Lmin/2]", "chinchilla", _floor_kept),
    Candidate("chinchilla_tied[E>=Lmin/2]", "chinchilla_tied", _floor_kept),
    Candidate("chinchilla[E=0]", "chinchilla", _no_floor),
)
"""The candidates of ``--law auto`` (laws of N and D with a loss target)."""


def axis_steps(values: np.ndarray) -> np.ndarray:
    """Step number ``(n,)`` of each row along the (log) axis: its distinct values, values within :data:`MERGE_GAP`
    of each other counted as one, or quantile bins when there are many (a group of close values never split)."""
    levels = np.unique(values)
    if levels.size == 0:
        return np.zeros(0, dtype=int)
    starts = np.concatenate([[True], np.diff(levels) > MERGE_GAP])
    chain = np.cumsum(starts) - 1
    for g in range(int(chain[-1]) + 1):  # a chain of close values that spans a range is a continuum: keep its values apart
        if np.ptp(levels[chain == g]) > MERGE_WIDTH:
            starts[chain == g] = True
    group = (np.cumsum(starts) - 1)[np.searchsorted(levels, values)]  # (n,) group of each row, in axis order
    n_groups = int(group.max()) + 1
    if n_groups <= MAX_LEVELS:
        return group
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, MAX_LEVELS + 1)[1:-1]))
    middle = np.array([np.median(values[group == g]) for g in range(n_groups)])
    return np.unique(np.searchsorted(cuts, middle, side="right"), return_inverse=True)[1][group]


def _axis_values(form: Form, frame: pd.DataFrame, axis: str | None) -> np.ndarray:
    if axis is not None:
        if axis not in frame.columns:
            raise ConfigError(f"axis column '{axis}' not in the table; columns found: {', '.join(map(str, frame.columns))}.")
        return np.log(pd.to_numeric(frame[axis], errors="coerce").to_numpy(dtype=float))
    return form.axis_values(form.log_inputs(frame))


def rollout(
    form: Form | str,
    data: pd.DataFrame,
    *,
    axis: str | None = None,
    folds: int = MAX_FOLDS,
    constraints: Mapping[str, Any] | None = None,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Forward-chaining CV: for each of the last ``folds`` steps along ``axis``, fit the runs below it and predict it.

    ``axis`` is a column (``"N"``, ``"C"``; its log) or None for the law's own axis (log N + log D for a law of
    N and D). Returns one row per predicted run: ``fold``, the row label, ``actual``, ``predicted``,
    ``log_error`` (log predicted - log actual) and ``distance`` (how far beyond the fitted runs it lies along the
    axis, natural-log units); a fold whose fit fails is left out.
    """
    form = get_form(form)
    values = _axis_values(form, data, axis)
    steps = axis_steps(values)
    out = []
    n_steps = int(steps.max()) + 1
    for k in range(max(1, n_steps - folds), n_steps):
        train, test = data[steps < k], data[steps == k]
        if len(train) < len(form.params) + 2 or len(np.unique(steps[steps < k])) < 2 or test.empty:
            continue
        try:
            fit = fit_law(form, train, axis=axis, calibrate=False, **(constraints or {}), **fit_kwargs)
        except ScalinglabError:
            continue
        if not fit.converged:
            continue
        actual = pd.to_numeric(test[form.target]).to_numpy(dtype=float)
        predicted = fit.predict(test)
        out.append(pd.DataFrame(
            {"fold": k, "row": test.index.astype(str), "actual": actual, "predicted": predicted,
             "log_error": np.log(predicted) - np.log(actual), "distance": values[steps == k] - values[steps < k].max()}
        ))  # fmt: skip
    if not out:
        return pd.DataFrame(columns=["fold", "row", "actual", "predicted", "log_error", "distance"])
    return pd.concat(out, ignore_index=True)


def cv_error(table: pd.DataFrame) -> float:
    """Mean over folds of each fold's mean |log error| (each step counts once, however many runs it holds)."""
    if table.empty:
        return float("inf")
    return float(table.assign(a=table["log_error"].abs()).groupby("fold")["a"].mean().mean())


def cv_standard_error(table: pd.DataFrame) -> float:
    """Standard error of :func:`cv_error`: that of a weighted mean of the runs' |log errors| (weights 1/(folds·runs in
    the fold)), so a CV error from a few predicted runs is known to be rough."""
    if len(table) < 2:
        return float("inf")
    a = table["log_error"].abs().to_numpy(dtype=float)
    w = 1.0 / table.groupby("fold")["fold"].transform("size").to_numpy(dtype=float)
    w = w / w.sum()
    return float(np.sqrt(np.sum(w**2 * (a - np.sum(w * a)) ** 2) * len(a) / (len(a) - 1)))


def fit_auto(
    data: pd.DataFrame,
    *,
    axis: str | None = None,
    candidates: Sequence[Candidate] = CANDIDATES,
    bootstrap: int = 0,
    folds: int = MAX_FOLDS,
    **fit_kwargs: Any,
) -> FitResult:
    """The simplest candidate whose rollout CV error is within one standard error of the lowest, fitted on all of
    ``data``, with every candidate recorded.

    Simplest: fewest parameters fitted, then the lower CV error. ``FitResult.candidates`` lists each candidate's
    ``cv_error``, ``cv_se``, ``folds``, ``free`` (parameters fitted), ``floor``, ``reach`` (the farthest a rollout
    step predicted beyond its fitted runs, natural-log units of the axis), ``weight`` (1/cv² among those within
    :data:`KEEP_WITHIN` of the best, 0 otherwise, and 0 for a variant whose full-data fit is another candidate's,
    named in ``same_as``) and full-data ``params``; its prediction intervals add the weighted spread of those
    candidates' predictions around the chosen one.
    """
    for key in ("tie", "fix", "bounds"):
        if fit_kwargs.get(key):
            raise ConfigError(f"--{key.rstrip('s')} constrains one law; with --law auto the candidates carry their own. Give --law NAME.")
        fit_kwargs.pop(key, None)
    fit_kwargs.pop("progress", None)
    scored = []
    inner = {k: v for k, v in fit_kwargs.items() if k not in ("level",)}
    for cand in candidates:
        table = rollout(cand.law, data, axis=axis, folds=folds, constraints=cand.constraints(data), **inner)
        scored.append((cand, cv_error(table), int(table["fold"].nunique()) if not table.empty else 0,
                       cv_standard_error(table), (cand.free(data), cand.floor(data)),
                       float(table["distance"].max()) if not table.empty else 0.0))  # fmt: skip
    finite = [s for s in scored if np.isfinite(s[1])]
    if not finite:
        raise FitError(
            "no candidate law could be scored by rollout cross-validation (too few runs below the largest steps of "
            "the axis); give --law NAME, or add runs at more sizes."
        )
    lowest = min(finite, key=lambda s: s[1])
    # One-standard-error rule: the rollout's steps are shorter than the extrapolation asked, so a parameter whose
    # gain the CV cannot tell from its noise is not trusted further out; of as many parameters, a floor E is the
    # larger claim (it bends every prediction beyond the runs), so a floorless law goes first.
    within = lowest[1] + (lowest[3] if np.isfinite(lowest[3]) else 0.0)
    best = min((s for s in finite if s[1] <= within), key=lambda s: (*s[4], s[1]))
    records, fits = [], {}
    for cand, err, n_folds, se, n_free, reach in scored:
        keep = np.isfinite(err) and err <= KEEP_WITHIN * lowest[1]
        fit = None
        if keep:
            try:
                chosen = cand is best[0]  # the others give only their predictions' spread
                fit = fit_law(cand.law, data, axis=axis, bootstrap=bootstrap if chosen else 0, calibrate=chosen,
                              **cand.constraints(data), **fit_kwargs)  # fmt: skip
            except ScalinglabError:
                keep = False
        if fit is not None:
            fits[cand.name] = fit
        records.append({
            "name": cand.name, "law": cand.law, "cv_error": err if np.isfinite(err) else None,
            "cv_se": se if np.isfinite(se) else None, "folds": n_folds, "free": n_free[0], "floor": n_free[1],
            "reach": reach,
            "weight": 1.0 / max(err, 1e-12) ** 2 if keep and fit is not None else 0.0, "chosen": cand is best[0],
            "params": None if fit is None else fit.params, "constraints": None if fit is None else fit.constraints,
        })  # fmt: skip
    for i, r in enumerate(records):  # a variant whose constraint does not bind is the same law: count it once
        twin = next((q for q in records[:i] if q["law"] == r["law"] and q["params"] and r["params"]
                     and all(np.isclose(q["params"][k], v, rtol=1e-4) for k, v in r["params"].items())), None)  # fmt: skip
        if twin is not None:
            if r["chosen"]:
                twin["weight"], r["same_as"] = 0.0, None
                twin["same_as"] = r["name"]
            else:
                r["weight"], r["same_as"] = 0.0, twin["name"]
    total = sum(r["weight"] for r in records)
    for r in records:
        r["weight"] = r["weight"] / total if total > 0 else float(r["chosen"])
    result = fits.get(best[0].name)
    if result is None:
        raise FitError(f"the best candidate '{best[0].name}' could not be fitted on all the runs; give --law NAME.")
    result.candidates = records
    result.notes.append(
        f"law chosen by rollout cross-validation along {axis or 'the law axis'}: {best[0].name} "
        f"(mean |log error| {best[1]:.4f} over {best[2]} step(s); the simplest within one standard error of the "
        f"lowest, {lowest[0].name} at {lowest[1]:.4f} ± {lowest[3]:.4f})"
    )
    return result


def largest_from_rest(
    form: Form | str, data: pd.DataFrame, *, column: str = "N", **fit_kwargs: Any
) -> tuple[pd.DataFrame, FitResult]:
    """Fit the law on every run below the largest ``column`` value and predict the runs at it.

    Returns one row per run of the largest value (``actual``, ``predicted``, ``lo``, ``hi``, ``rel_error``;
    for a checkpoint table, ``runs=``, each run's final checkpoint) and the fit; ``form="auto"`` selects the
    law on the smaller runs only.
    """
    values = pd.to_numeric(data[column], errors="coerce")
    top = values.max()
    rest, largest = data[values < top], data[values == top]
    if rest.empty:
        raise FitError(f"every run has the same {column}; the largest cannot be predicted from the rest.")
    if form == "auto":
        fit = fit_auto(rest, axis=column, **fit_kwargs)
    else:
        fit = fit_law(form, rest, axis=column, **fit_kwargs)
    if fit.run_column:  # a checkpoint table: each largest run is scored on its final checkpoint
        largest = largest.loc[largest.groupby(fit.run_column)["D"].idxmax()]
    actual = pd.to_numeric(largest[fit.form.target]).to_numpy(dtype=float)
    predicted = fit.predict(largest)
    lo, hi = fit.prediction_interval(largest, fit.level)
    table = largest[list(dict.fromkeys([*fit.form.inputs, column]))].assign(
        actual=actual, predicted=predicted, lo=lo, hi=hi, rel_error=predicted / actual - 1
    )
    return table, fit
