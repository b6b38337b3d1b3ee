"""The data-constrained law's two-stage fit (Muennighoff et al. 2023 §3.1 and App. A).

With few repeated runs the seven parameters of ``data_constrained`` trade off against each other: a
steeper data exponent beta can mimic a smaller R_D_star. The paper fits in two stages: first E, A, B,
alpha and beta on the single-epoch runs (the Chinchilla law, where nothing is repeated), then R_D_star
and R_N_star on every run with those five held fixed. :func:`fit_two_stage` does this with the same
fitter, so constraints, diagnostics and bootstrap intervals work in both stages; the R* intervals of the
second stage are conditional on the first stage's estimate, and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.laws.diagnostics import warning
from scalinglab.laws.fit import FitResult, fit_law
from scalinglab.laws.forms import FORMS, _pairs, params_for_tokens

STAGE_ONE = ("E", "A", "B", "alpha", "beta")
"""The parameters of the first stage: Chinchilla's, fitted where nothing is repeated."""
MAX_ROUNDS = 4
"""Refits of the first stage, each on the runs no larger than its own estimate's optimal N for their U."""
REPETITION = ("R_D_star", "R_N_star")
"""The parameters of the second stage: how fast repeated data and excess parameters lose their value."""


def single_epoch(data: pd.DataFrame) -> pd.Series:
    """True for the runs that saw each token at most once (D <= U: R_D = 0)."""
    return pd.to_numeric(data["D"], errors="coerce") <= pd.to_numeric(data["U"], errors="coerce") * (1 + 1e-9)


def _split(items: Mapping[str, Any] | Sequence[str] | str | None, names: Sequence[str], what: str) -> dict[str, str]:
    """The ``--fix``/``--bound``/``--tie`` entries that name a parameter among ``names``."""
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items() if k in names}
    return {k: v for k, v in _pairs(items, what, "--fix E=1.69") if k in names}


def fit_two_stage(
    data: pd.DataFrame,
    *,
    tie: Mapping[str, str] | Sequence[str] | str | None = None,
    fix: Mapping[str, float] | Sequence[str] | str | None = None,
    bounds: Mapping[str, tuple[float, float]] | Sequence[str] | str | None = None,
    **options: Any,
) -> FitResult:
    """``data_constrained`` fitted in the paper's two stages; ``options`` go to :func:`fit_law` in both.

    Constraints apply to the stage whose parameters they name. The result is the second stage's fit,
    carrying the first stage's intervals for E, A, B, alpha and beta and its warnings (marked as such).
    """
    if "U" not in data.columns or "D" not in data.columns:
        raise DataError("the two-stage fit needs columns D and U (unique tokens); map them with --columns U=<your column>.")
    once = single_epoch(data)
    if int(once.sum()) <= len(STAGE_ONE):
        raise DataError(
            f"the two-stage fit's first stage needs more than {len(STAGE_ONE)} single-epoch runs (D <= U); the table has "
            f"{int(once.sum())}: add 1-epoch runs at several N and U, or fit all parameters at once (no --two-stage)."
        )
    keep, first, excess = once, None, []
    for _ in range(MAX_ROUNDS):  # stage one is where R_D = R_N = 0: single-epoch runs no larger than optimal for U
        first = fit_law(
            "chinchilla", data[keep], tie=_split(tie, STAGE_ONE, "--tie") or None, fix=_split(fix, STAGE_ONE, "--fix") or None,
            bounds=_split(bounds, STAGE_ONE, "--bound") or None, **options,
        )  # fmt: skip
        u_n = params_for_tokens(first.params, np.minimum(data["U"].to_numpy(float), data["D"].to_numpy(float)))
        small = once & (data["N"].to_numpy(float) <= u_n * (1 + 1e-9))
        if small.equals(keep):
            break
        if int(small.sum()) <= len(STAGE_ONE):  # too few runs at R_N = 0: keep every single-epoch run, and say so
            keep = once
            excess = [warning(
                "unidentified", None,
                f"first stage: only {int(small.sum())} single-epoch runs are no larger than compute-optimal for their U, "
                "so it fits all of them, larger models included (the law counts part of those as excess parameters): "
                "add 1-epoch runs of smaller N.",
            )]  # fmt: skip
            first = fit_law(
                "chinchilla", data[keep], tie=_split(tie, STAGE_ONE, "--tie") or None,
                fix=_split(fix, STAGE_ONE, "--fix") or None, bounds=_split(bounds, STAGE_ONE, "--bound") or None, **options,
            )  # fmt: skip
            break
        keep = small
    held = {p: first.params[p] for p in STAGE_ONE}
    second = fit_law(
        "data_constrained", data, tie=_split(tie, REPETITION, "--tie") or None,
        fix={**held, **{k: float(v) for k, v in _split(fix, REPETITION, "--fix").items()}},
        bounds=_split(bounds, REPETITION, "--bound") or None, **options,
    )  # fmt: skip
    second.intervals = {**second.intervals, **{k: v for k, v in first.intervals.items() if k in (*STAGE_ONE, "a")}}
    if first.bootstrap is not None and second.bootstrap is not None:
        k = min(len(first.bootstrap), len(second.bootstrap))  # pair the stages' refits for the plan's intervals
        samples = second.bootstrap.iloc[:k].reset_index(drop=True)
        for p in STAGE_ONE:
            samples[p] = first.bootstrap[p].to_numpy()[:k]
        for name, value in FORMS["data_constrained"].derived_values({p: samples[p].to_numpy() for p in samples}).items():
            samples[name] = value
        second.bootstrap = samples
    second.converged = bool(first.converged and second.converged)
    second.notes.append(
        f"two-stage fit (Muennighoff et al. 2023): E, A, B, alpha, beta from {first.n_points} single-epoch runs"
        f"{'' if excess else ' no larger than optimal for their U'} (the chinchilla law), then R_D_star and R_N_star from all {second.n_points} runs with those held; the R* "
        "intervals are conditional on the first stage."
    )
    second.warnings = [
        *excess,
        *(warning(w["kind"], w["param"], f"first stage: {w['message']}") for w in first.warnings),
        *(w for w in second.warnings if not (w["kind"] == "unidentified" and w["param"] in STAGE_ONE)),
    ]
    return second


def repetition_identified(fit: FitResult, param: str = "R_D_star", factor: float = 10.0) -> bool:
    """Whether the fit pins ``param`` down: its interval spans less than ``factor`` and is off the law's bounds."""
    lo, hi = fit.intervals.get(param, (np.nan, np.nan))
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0):
        return False
    flagged = any(w["param"] == param and w["kind"] in ("at_bound", "unidentified", "near_bound") for w in fit.warnings)
    return hi / lo < factor and not flagged
