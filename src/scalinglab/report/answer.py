"""The answer a study's runs give to the question the laws exist for: the compute-optimal exponent a
(N_opt ∝ C^a) by Chinchilla's three approaches, each with an interval, which paper's value the intervals
support, and the warnings that doubt it (approaches whose intervals disagree, laws that disagree on α_N or
α_D, an estimate outside its own interval, a critical batch above the tokens any run saw, a fit held by a
bound). ``scalinglab demo`` prints it and both it and ``scalinglab report`` put it on the report's page.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.constants import HOFFMANN_EXPONENTS, KAPLAN_TABLE6
from scalinglab.errors import ScalinglabError
from scalinglab.laws.diagnostics import allocation_warnings, warning
from scalinglab.laws.fit import FitResult
from scalinglab.laws.frontier import isoflop_frontier
from scalinglab.report.build import ReportResult, disagreements
from scalinglab.report.html import write
from scalinglab.study.selection import isoflop_runs

LEVEL = 0.95
"""Coverage of the intervals on a."""

BOOTSTRAP = 200
"""Resamples for the interval of a by approach 2 (seed-noise perturbations; approach 1's is the L(C) analysis')."""

KAPLAN_A = KAPLAN_TABLE6["p_N"]
"""Kaplan's N_opt ∝ C_min^0.73 (Table 6)."""

CHINCHILLA_A = (min(HOFFMANN_EXPONENTS.values()), max(HOFFMANN_EXPONENTS.values()))
"""Chinchilla's a over its three approaches, 0.46-0.50 (Hoffmann Table 2)."""


@dataclass(frozen=True)
class Exponent:
    """The compute-optimal exponent a of N_opt ∝ C^a by one method, with its interval (None: not measurable)."""

    key: str
    """Its name in the JSON numbers: a_envelope, a_isoflop, a_parametric."""
    method: str
    value: float = float("nan")
    interval: tuple[float, float] | None = None
    note: str = ""
    """Why the value or its interval is missing, or why the value is not a measured optimum."""
    bracketed: bool = True
    """False when the sizes do not bracket the optimum (the envelope's N_opt is the ladder's edge): the value
    and its interval describe the design, not N_opt, and say nothing about the papers."""

    def text(self) -> str:
        return f"{self.method}: {self.value_text()}"

    def to_dict(self) -> dict[str, Any]:
        """Its fields and its text, as the JSON of ``demo`` and ``report`` carry it."""
        return dataclasses.asdict(self) | {"text": self.text()}

    def value_text(self) -> str:
        """The value with its interval, or why it has none."""
        if not np.isfinite(self.value):
            return f"n/a ({self.note})"
        ci = f" [{self.interval[0]:.3f}, {self.interval[1]:.3f}]" if self.interval else f" (no interval: {self.note})"
        return f"{self.value:.3f}{ci}" + ("" if self.bracketed else f" (not bracketed: {self.note})")


def allocation_exponents(results: dict[str, Any], runs: pd.DataFrame) -> list[Exponent]:
    """a by Chinchilla's approaches 1 (envelope), 2 (IsoFLOP minima) and 3 (parametric fit), with intervals.

    Approach 1 resamples the ladder's runs (the L(C) analysis' interval, laws.frontier.envelope_bootstrap);
    approach 2 perturbs each IsoFLOP run by the measured seed noise and finds the minima again (Porian et
    al. 2024); approach 3 takes a = β/(α + β) over the bootstrap refits of E + A/N^α + B/D^β (Hoffmann eq 4).
    """
    fr, ap = results.get("L(C)"), results.get("approaches")
    return [_envelope(fr), _isoflop(runs, LEVEL), _parametric(ap, LEVEL)]


def _envelope(fr: Any) -> Exponent:
    e = Exponent("a_envelope", "approach 1, envelope")
    if fr is None:
        return Exponent(e.key, e.method, note="no compute frontier (the ladder was skipped)")
    note = "" if fr.measured else fr.note  # the report leaves such an a out of its headline (report.build)
    if fr.interval is None:  # the estimate's own interval (of the bracketed part when it is measured)
        return Exponent(e.key, e.method, fr.frontier.a, note=fr.interval_note, bracketed=fr.measured)
    return Exponent(e.key, e.method, fr.frontier.a, fr.interval, note, bracketed=fr.measured)


def _isoflop(runs: pd.DataFrame, level: float) -> Exponent:
    e = Exponent("a_isoflop", "approach 2, IsoFLOP")
    iso = isoflop_runs(runs)  # the runs the report's approaches use
    if iso.empty:
        return Exponent(e.key, e.method, note="no isoflop design")
    try:
        result = isoflop_frontier(iso, strict=False, bootstrap=BOOTSTRAP, level=level)
    except ScalinglabError as err:
        return Exponent(e.key, e.method, note=str(err))
    refused = f"; {len(result.refused)} budget(s) without an interior minimum left out" if result.refused else ""
    interval = tuple(result.a_interval) if result.a_interval else None
    return Exponent(e.key, e.method, result.frontier.a, interval, ("" if interval else "too few replicates") + refused)


def _parametric(ap: Any, level: float) -> Exponent:
    e = Exponent("a_parametric", "approach 3, parametric")
    fit: FitResult | None = getattr(ap, "parametric", None)
    if fit is None:
        return Exponent(e.key, e.method, note="the Chinchilla form could not be fitted")
    p = fit.params
    value = p["beta"] / (p["alpha"] + p["beta"])  # Hoffmann eq 4: N_opt ∝ C^(β/(α+β))
    if fit.bootstrap is None or len(fit.bootstrap) < 2:
        return Exponent(e.key, e.method, value, note="no bootstrap refits")
    a = (fit.bootstrap["beta"] / (fit.bootstrap["alpha"] + fit.bootstrap["beta"])).dropna().to_numpy()
    lo, hi = np.quantile(a, [(1 - level) / 2, (1 + level) / 2])
    return Exponent(e.key, e.method, value, (float(lo), float(hi)))


# --------------------------------------------------------------------------------------------------
# Warnings and the closing sentence


def answer_warnings(results: dict[str, Any], runs: pd.DataFrame, exponents: list[Exponent]) -> list[dict[str, Any]]:
    """What makes the answer doubtful: disagreeing intervals of a, laws that disagree on an exponent they share
    (report.build.disagreements), an absurd B_crit, fits on a bound."""
    out = [warning("unidentified", "a", f"N_opt ∝ C^a: {e.text()}") for e in exponents
           if not np.isfinite(e.value) or not e.bracketed]
    out += [warning("outside_interval", "a", f"N_opt ∝ C^a: {e.text()}: the estimate lies outside its own bootstrap "
                    "interval, so the resamples disagree with the full fit (more runs near the frontier would steady it).")
            for e in exponents if e.interval and np.isfinite(e.value) and not e.interval[0] <= e.value <= e.interval[1]]
    measured = [e for e in exponents if e.interval and e.bracketed]
    out += [w for e in measured for w in allocation_warnings(f"N_opt ∝ C^a by {e.method}", e.interval)]
    for x, y in itertools.combinations(measured, 2):
        if x.interval[0] > y.interval[1] or y.interval[0] > x.interval[1]:
            out.append(warning("candidates_disagree", "a", f"N_opt ∝ C^a: {x.text()} and {y.text()} do not overlap; "
                                "this study does not pin a down (more sizes per budget, or larger runs)."))
    out += _parametric_warnings(getattr(results.get("approaches"), "parametric", None))
    out += [d.warning() for d in disagreements(results)]
    bc = results.get("B_crit")
    done = runs[runs["status"] == "done"] if "status" in runs.columns else runs
    if bc is not None and len(done):
        best, seen = float(done["loss"].min()), float(done["D"].max())
        b = float(bc.law(best))
        if not np.isfinite(b) or b > seen:  # Kaplan's B_crit is a batch in tokens: one above every run's tokens is not measured
            out.append(warning("implausible", "B_star", f"B_crit(L) = {bc.fit.params['B_star']:.3g} tokens * "
                                f"L^-{1 / bc.fit.params['alpha_B']:.2f} gives {b:.3g} tokens at the study's best loss "
                                f"{best:.3f}, more than the {seen:.3g} tokens any run saw: the batch scan does not "
                                "constrain it; do not use its batch sizes."))
    seen: set[int] = set()
    for name, analysis in results.items():
        fits = _fits(analysis)
        for fit in fits:
            label = f"{name}, {fit.form.name} form" if len(fits) > 1 else name  # L(N, D) holds Kaplan's and Chinchilla's
            for w in getattr(fit, "warnings", []):
                if w.get("kind") in ("at_bound", "floorless") and id(fit) not in seen:  # held by a bound, not the data
                    out.append(warning(w["kind"], w.get("param"), f"{label}: {w['message']}"))
            seen.add(id(fit))  # a fit two analyses share (L(N, D)'s Chinchilla form is approach 3) warns once
    return out


def _parametric_warnings(fit: FitResult | None) -> list[dict[str, Any]]:
    """What doubts approach 3's a = β/(α + β): α or β not identified, or its interval from too few refits."""
    if fit is None:
        return []
    doubts = [w for w in fit.warnings if (w.get("kind") == "unidentified" and w.get("param") in ("alpha", "beta"))
              or w.get("kind") == "bootstrap_failed"]
    return [warning(w["kind"], w.get("param"), f"N_opt ∝ C^a by approach 3, a = β/(α + β) of L(N, D)'s Chinchilla form: "
                    f"{w['message']}") for w in doubts]


def _fits(analysis: Any) -> list[FitResult]:
    """The fitted laws an analysis result holds (its ``fit`` and any other FitResult field)."""
    if analysis is None or not hasattr(analysis, "__dataclass_fields__"):
        return []
    return [v for v in (getattr(analysis, k) for k in analysis.__dataclass_fields__) if isinstance(v, FitResult)]


def conclusion(exponents: list[Exponent]) -> str:
    """The sentence about the papers, from the intervals: which exponent of a they include, or why none is said."""
    measured = [e for e in exponents if e.interval and e.bracketed]
    if not measured:
        return "No approach measured a with an interval here, so this study does not side with either paper's a."
    disagree = any(x.interval[0] > y.interval[1] or y.interval[0] > x.interval[1]
                   for x, y in itertools.combinations(measured, 2))
    kaplan = [e.method for e in measured if e.interval[0] <= KAPLAN_A <= e.interval[1]]
    chin = [e.method for e in measured if e.interval[0] <= CHINCHILLA_A[1] and CHINCHILLA_A[0] <= e.interval[1]]
    paper = f"Kaplan's {KAPLAN_A:g} lies in {_which(kaplan, measured)}; Chinchilla's {CHINCHILLA_A[0]:g}-{CHINCHILLA_A[1]:g} overlaps {_which(chin, measured)}"
    if disagree:
        return f"The approaches' intervals on a disagree, so the study cannot side with a paper ({paper})."
    if chin and not kaplan:
        side = "the study sides with Chinchilla"
    elif kaplan and not chin:
        side = "the study sides with Kaplan"
    elif kaplan and chin:
        side = "the intervals are too wide to tell the papers apart"
    else:
        side = "the study supports neither paper's a"
    return f"{side[0].upper()}{side[1:]}: {paper}. Scales (N_c, D_c, B*) depend on the tokenizer and corpus."


def _which(methods: list[str], measured: list[Exponent]) -> str:
    if not methods:
        return "none of the intervals"
    return "every interval" if len(methods) == len(measured) else " and ".join(methods) + "'s interval"


def write_answer(report: ReportResult, exponents: list[Exponent], warnings: list[dict[str, Any]]) -> None:
    """The answer on the report's page too, as the closing note prints it: a by each approach with its interval,
    the conclusion, and every warning, so that the page never shows the exponents without what doubts them."""
    if report.page is None:
        return
    rows = [(f"N_opt ∝ C^a, {e.method} ({LEVEL:.0%} interval)", html.escape(e.value_text())) for e in exponents]
    rows.append(("the answer", html.escape(conclusion(exponents))))
    flagged = [f'<span class="flag">warning: {html.escape(w["message"])}</span>' for w in warnings]
    page = dataclasses.replace(report.page, summary=[*report.page.summary, *rows], notes=[*flagged, *report.page.notes])
    write(page, report.path)
    report.page = page
