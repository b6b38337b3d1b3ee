"""``scalinglab demo``: a real small scaling study on the built-in corpus, analysed into an HTML report.

The study is a study file shipped with the package (``scalinglab/studies/demo.toml``, and
``demo-quick.toml``), copied to ``<out>/study.toml`` so that ``scalinglab study run`` can re-run or
extend it. It trains tiny GPT models on the Python standard library (the built-in 'stdlib' corpus,
no network) with a 2,048-token BPE:

- a ladder of 6 sizes, N = 14k..336k non-embedding parameters, over 2.3 decades of compute, with
  the online gradient-noise scale measured;
- IsoFLOP profiles: five sizes, N = 1.8k..40k, about 1.5x apart around the optimum at each of three
  budgets C = 6ND = 2e10, 4e10 and 8e10 (Chinchilla's approach 2), which also put L(N, D) off the
  ladder's diagonal for the joint fits and the backtest;
- a dataset-size sweep: one model on nested subsets of 100k..800k tokens, several epochs, early-stopped;
- a batch-size scan: one model at 4 batch sizes over the same 1M tokens, for B_crit(L);
- a shape scan at N = 5e4: depth 2..7, feed-forward ratio and head size at fixed N (Kaplan Fig 5).

Every run is also evaluated on the docstrings of the held-out standard-library files (the built-in
'stdlib-docstrings' corpus: English prose instead of code) for transfer (Kaplan Fig 8).

Every run uses the ``tiny-v1`` recipe, Kaplan's (one batch for all, cosine to zero) with the learning
rate and init of models a few dozen wide, LR = 0.4 / d_model and init std 1 / sqrt(d_model) (eq D.1's
1.8e-3 and GPT-2's 0.02 are several times too small here), at 512 tokens per step, close to the
critical batch these losses have (a larger batch wastes most of its tokens here). Sized for 2 CPU
cores (2 one-thread workers) in 6-15 minutes by the CPU (measured 5.9 on a Xeon with AMX, about 12 on
an AMD EPYC; ``benchmarks/demo_plan.py`` estimates it on the machine at hand); ``quick`` is the same
study shrunk to a few minutes for tests and CI.

Results are honest, not tuned to look like the paper. The closing note gives the compute-optimal
exponent a (N_opt ∝ C^a) from Chinchilla's three approaches, each with an interval, says which
paper's value the intervals support, and lists warnings: approaches whose intervals disagree, a
constant the data cannot support (a critical batch above the tokens any run saw), a fit on a bound.
The report's page carries the same answer and warnings beside its headline numbers.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from scalinglab.report.answer import (
    CHINCHILLA_A,
    KAPLAN_A,
    LEVEL,
    Exponent,
    allocation_exponents,
    answer_warnings,
    conclusion,
    write_answer,
)
from scalinglab.report.build import ReportResult, build_report
from scalinglab.report.headline import headline_lines
from scalinglab.study import load_study, run_study

STUDY_FILES = {False: "demo.toml", True: "demo-quick.toml"}
"""The demo's study files in the package's ``studies`` folder: full and quick."""


def study_text(quick: bool = False) -> str:
    """The demo's study file (TOML), as shipped with the package."""
    return resources.files("scalinglab").joinpath("studies", STUDY_FILES[quick]).read_text(encoding="utf-8")


@dataclass
class DemoResult:
    """The report, the exponents of the three approaches with intervals, and the warnings of a finished demo."""

    report: ReportResult
    study_file: Path
    seconds: float
    exponents: list[Exponent] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def numbers(self) -> dict[str, Any]:
        """The report's headline numbers plus each approach's a and ``<key>_interval``."""
        out: dict[str, Any] = dict(self.report.numbers)
        for e in self.exponents:
            out[e.key] = e.value
            out[f"{e.key}_interval"] = list(e.interval) if e.interval else None
        return out

    def to_dict(self) -> dict:
        return {"study_file": str(self.study_file), "seconds": self.seconds, **self.report.to_dict(),
                "numbers": self.numbers, "exponents": [e.to_dict() for e in self.exponents],
                "warnings": self.warnings, "conclusion": conclusion(self.exponents)}


def run_demo(out_dir: str | Path, quick: bool = False, workers: int = 2, progress: bool = True) -> DemoResult:
    """Write the study file to ``out_dir``, train it (resuming a partial run), build the report, weigh the answer."""
    start = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study_file = out / "study.toml"
    text = study_text(quick).replace('name = "demo"', f'name = "demo"\nout_dir = "{out.resolve().as_posix()}"', 1)
    study_file.write_text(text)
    study = load_study(study_file)
    _say(progress, f"[1/2] training the {'quick ' if quick else ''}demo study in {out} with {workers} workers")
    run_study(study, "local", workers, progress=progress)
    _say(progress, "[2/2] fitting the laws and drawing the figures")
    report = build_report(out, progress=progress, workers=workers, keep_tables=True)  # `fit DEMO` reads them as they are
    runs = report.runs
    exponents = allocation_exponents(report.results, runs)
    warnings = answer_warnings(report.results, runs, exponents)
    write_answer(report, exponents, warnings)
    return DemoResult(report, study_file, time.monotonic() - start, exponents, warnings)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# The compute-optimal exponent three ways, each with an interval


def summary_lines(result: DemoResult) -> list[str]:
    """The closing note: the report's headline table, a three ways, the warnings, the conclusion, the report's path."""
    lines = [
        f"demo finished in {result.seconds / 60:.1f} min",
        *headline_lines(result.report.numbers, result.report.flags),  # the report's headline table, as text
        f"  N_opt ∝ C^a, {LEVEL:.0%} intervals (Kaplan {KAPLAN_A:g}; Chinchilla {CHINCHILLA_A[0]:g}-{CHINCHILLA_A[1]:g}):",
        *(f"    {e.text()}" for e in result.exponents),
        *(f"  warning: {w['message']}" for w in result.warnings),
        f"  {conclusion(result.exponents)}",
        f"  report: {result.report.path}",
    ]
    if result.report.skipped:
        lines.insert(-1, f"  skipped: {', '.join(result.report.skipped)}")
    return lines

