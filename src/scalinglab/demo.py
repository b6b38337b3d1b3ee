"""``scalinglab demo``: a real small scaling study on the built-in corpus, analysed into an HTML report.

The study is written as a study file (below, and copied to ``<out>/study.toml`` so that
``scalinglab study run`` can re-run or extend it). It trains tiny GPT models on the Python standard
library (the built-in 'stdlib' corpus, no network) with a 2,048-token BPE:

- a ladder of 6 sizes, N = 14k..336k non-embedding parameters, over 2.3 decades of compute, with
  the online gradient-noise scale measured;
- the four smaller sizes again on 1M tokens, and two of them on 2M: L(N, D) off the ladder's diagonal;
- a dataset-size sweep: one model on nested subsets of 100k..800k tokens, several epochs, early-stopped;
- a batch-size scan: one model at 4 batch sizes over the same 1M tokens, for B_crit(L);
- a shape scan at N = 5e4: depth 2..7, feed-forward ratio and head size at fixed N (Kaplan Fig 5).

Every run is also evaluated on the docstrings of the held-out standard-library files (the built-in
'stdlib-docstrings' corpus: English prose instead of code) for transfer (Kaplan Fig 8).

Every run uses the ``tiny-v1`` recipe, Kaplan's (one batch for all, cosine to zero) with the learning
rate and init of models a few dozen wide, LR = 0.4 / d_model and init std 1 / sqrt(d_model) (eq D.1's
1.8e-3 and GPT-2's 0.02 are several times too small here), at 512 tokens per step, close to the critical batch these losses have (a larger batch wastes most of
its tokens here).
Sized for 2 CPU cores (2 one-thread workers) in about 20 minutes (``benchmarks/demo_plan.py``
estimates it on the machine at hand); ``quick`` is the same study shrunk to about 3 minutes for
tests and CI. Results are honest, not tuned to look like the paper:
the closing note compares them with Kaplan et al.'s constants, which belong to another tokenizer
and corpus.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scalinglab.report.build import ReportResult, build_report
from scalinglab.report.headline import headline_lines
from scalinglab.study import load_study, run_study

DEMO_STUDY = """\
# The scalinglab demo: Kaplan et al. 2020's laws on the Python standard library, on 2 CPU cores.
name = "demo"
recipe = "tiny-v1"   # Kaplan's setup (one batch, cosine to zero); LR 0.4 / d_model, init std 1 / sqrt(d_model)

[base.model]
n_ctx = 64
vocab_size = 2048

[base.optim]
batch_size = 8          # 512 tokens per step: near the critical batch of these losses (see the batch scan)

[base.data]
corpus = "stdlib"
vocab_size = 2048
# transfer: English prose (the docstrings of the held-out files) under the code-trained tokenizer
eval_sets = [{{ name = "docstrings", corpus = "stdlib-docstrings", split = "valid" }}]

[base.budget]
tokens_per_param = {tokens_per_param}   # tokens per parameter, embeddings included

[base.eval]
points = 12
tokens = {eval_tokens}

# Model sizes over two decades of compute, largest first so the longest run starts first; the
# online gradient-noise scale compares one micro-batch's gradient with the whole batch's.
[[design]]
kind = "ladder"
shapes = {ladder}
head_dim = 8
overrides = ["eval.noise_scale=true", "optim.micro_batch_size=4"]

# The smaller sizes again on other token budgets, each with its own schedule: L(N, D) off the
# ladder's diagonal, for the joint fits and the backtest.
[[design]]
kind = "nd_grid"
shapes = {grid_shapes}
head_dim = 8
tokens = {grid_tokens}

[[design]]
kind = "nd_grid"
name = "nd_grid_long"
shapes = {long_shapes}
head_dim = 8
tokens = {long_tokens}

# One model on nested subsets of the data, several epochs each, early-stopped (Kaplan §3.3).
[[design]]
kind = "dataset_size"
shapes = [[{data_shape}]]
head_dim = 8
tokens = {data_tokens}
budget = {{ tokens = {data_budget} }}

# Batch sizes over the same tokens, for the critical batch size (Kaplan §5.1, Fig 18).
[[design]]
kind = "batch_scan"
shapes = [[{batch_shape}]]
head_dim = 8
batch_sizes = {batch_sizes}
budget = {{ tokens = {batch_budget} }}

# Shapes at one N, one knob at a time: depth (d_model / n_layer), d_ff / d_model, head size (Kaplan Fig 5).
[[design]]
kind = "shape_scan"
overrides = ["eval.points=4"]   # only the final loss is used
params = [{shape_params}]
aspect_ratio = {shape_aspect}
head_dim = 8
aspect_ratios = {aspect_ratios}
ff_ratios = {ff_ratios}
head_dims = {head_dims}
budget = {{ tokens = {shape_budget} }}
"""

FULL = dict(
    tokens_per_param=8,
    eval_tokens=16384,
    ladder="[[3, 96], [3, 80], [2, 64], [2, 48], [2, 32], [2, 24]]",
    grid_shapes="[[2, 64], [2, 48], [2, 32], [2, 24]]",
    grid_tokens="[1_000_000]",
    long_shapes="[[2, 48], [2, 32]]",
    long_tokens="[2_000_000]",
    data_shape="2, 48",
    data_tokens="[100_000, 200_000, 400_000, 800_000]",
    data_budget="1_000_000",
    batch_shape="2, 32",
    batch_sizes="[4, 8, 16, 32]",
    batch_budget="1_000_000",
    shape_params="5e4",
    shape_aspect=24,
    aspect_ratios="[4, 8, 13, 24]",
    ff_ratios="[2, 4, 8]",
    head_dims="[8, 16]",
    shape_budget="400_000",
)
"""The full demo: about 20 minutes on 2 cores."""

QUICK = dict(
    tokens_per_param=3,
    eval_tokens=8192,
    ladder="[[2, 56], [2, 48], [2, 40], [2, 32], [2, 24], [2, 16]]",
    grid_shapes="[[2, 32], [2, 16]]",
    grid_tokens="[150_000]",
    long_shapes="[[2, 24]]",
    long_tokens="[400_000]",
    data_shape="2, 24",
    data_tokens="[25_000, 50_000, 100_000]",
    data_budget="200_000",
    batch_shape="2, 16",
    batch_sizes="[4, 8, 16, 64]",
    batch_budget="200_000",
    shape_params="1.2e4",
    shape_aspect=12,
    aspect_ratios="[4, 12]",
    ff_ratios="[2, 4]",
    head_dims="[8]",
    shape_budget="150_000",
)
"""The quick demo: about 3 minutes on 2 cores (tests and CI)."""


def study_text(quick: bool = False) -> str:
    """The demo's study file (TOML)."""
    return DEMO_STUDY.format(**(QUICK if quick else FULL))


@dataclass
class DemoResult:
    """The report and the headline numbers of a finished demo."""

    report: ReportResult
    study_file: Path
    seconds: float

    def to_dict(self) -> dict:
        return {"study_file": str(self.study_file), "seconds": self.seconds, **self.report.to_dict()}


def run_demo(out_dir: str | Path, quick: bool = False, workers: int = 2, progress: bool = True) -> DemoResult:
    """Write the study file to ``out_dir``, train it (resuming a partial run), and build the report."""
    start = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study_file = out / "study.toml"
    text = study_text(quick).replace('name = "demo"', f'name = "demo"\nout_dir = "{out.resolve().as_posix()}"')
    study_file.write_text(text)
    study = load_study(study_file)
    _say(progress, f"[1/2] training the {'quick ' if quick else ''}demo study in {out} with {workers} workers")
    run_study(study, "local", workers, progress=progress)
    _say(progress, "[2/2] fitting the laws and drawing the figures")
    report = build_report(out, progress=progress)
    return DemoResult(report, study_file, time.monotonic() - start)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def summary_lines(result: DemoResult) -> list[str]:
    """The closing note: the fitted exponents beside Kaplan's, the backtest, and where the report is."""
    lines = [
        f"demo finished in {result.seconds / 60:.1f} min",
        *headline_lines(result.report.numbers),  # the report's headline table, as text
        "  Exponents are comparable with the paper's; scales (N_c, D_c, B*) depend on the tokenizer and corpus.",
        f"  report: {result.report.path}",
    ]
    if result.report.skipped:
        lines.insert(-1, f"  skipped: {', '.join(result.report.skipped)}")
    return lines
