"""What the tests (and benchmarks/kill_resume.py) share: the tiny real study, the tiny run, a CLI child, polling.

A tiny study is a real study file on the built-in corpus (a 512-token BPE, models of a few thousand
parameters, a few dozen steps): seconds a run on one thread. Each test directory varies it through
``tiny_base``'s arguments instead of keeping a copy of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

VOCAB = 512
"""The tiny runs' vocabulary: the output head dominates tiny models, so it stays small (DESIGN.md)."""

TINY_RUN = [
    "model.n_layer=1",
    "model.d_model=32",
    "model.n_head=2",
    "model.n_ctx=32",
    f"model.vocab_size={VOCAB}",
    f"data.vocab_size={VOCAB}",
    "optim.batch_size=8",
    "optim.lr=3e-3",
    "eval.tokens=2048",
    "eval.points=3",
    "runtime.threads=1",
    "runtime.progress=false",
]
"""``scalinglab train`` overrides for a run of a few thousand parameters: each step takes milliseconds."""


def tiny_base(
    *,
    steps: int = 30,
    points: int = 2,
    n_layer: int = 2,
    d_model: int = 32,
    checkpoint_steps: int = 10,
    per_position: bool = False,
    cache_dir: str | None = None,
) -> str:
    """The TOML of a tiny study's recipe and ``[base]`` tables (name, out_dir and designs are the caller's)."""
    cache = f'cache_dir = "{cache_dir}"\n' if cache_dir else ""
    return f"""
recipe = "kaplan2020"
stale_seconds = 30

[base.model]
n_layer = {n_layer}
n_ctx = 32
d_model = {d_model}
n_head = 2
vocab_size = {VOCAB}

[base.data]
corpus = "stdlib"
vocab_size = {VOCAB}

[base.optim]
batch_size = 8

[base.budget]
steps = {steps}

[base.eval]
points = {points}
tokens = 2048
per_position = {str(per_position).lower()}

[base.runtime]
checkpoint_steps = {checkpoint_steps}
{cache}"""


BASE = tiny_base()
"""Two layers of width 32, 30 steps, two evaluations, a checkpoint every 10 steps."""


def write_study(directory: Path, name: str, designs: str, top: str = "", base: str = BASE) -> Path:
    """A study file ``directory/<name>.toml`` whose runs go to ``directory/runs/<name>``."""
    path = Path(directory) / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'name = "{name}"\nout_dir = "{Path(directory) / "runs" / name}"\n{top}\n{base}\n{designs}')
    return path


def cli(*args: str, cache: str | None = None, stdout: int | None = subprocess.PIPE) -> subprocess.Popen:
    """``scalinglab ARGS`` in a new process group (so a test can signal it and its children), one thread."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    if cache:
        env["SCALINGLAB_CACHE"] = cache
    return subprocess.Popen(
        [sys.executable, "-m", "scalinglab", *args], env=env, stdout=stdout, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        # SIGINT at its default, as at a terminal: a shell's background job (CI started with &) ignores it,
        # and the trainer keeps an inherited SIG_IGN (the pool workers' rule), so Ctrl-C tests would hang.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def wait_until(condition, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU is shared: every torch a test starts uses one thread (a directory's conftest imports this)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


TIMING_FIELDS = {"wall_time", "tokens_per_s", "model_flops_per_s", "hardware_flops_per_s", "fraction_of_peak_model",
                 "fraction_of_peak_hardware"}  # fmt: skip
"""Fields of a metrics record that measure time, not training: they may differ after a resume."""


def training_records(run_dir: Path) -> list[dict]:
    """Every ``metrics.jsonl`` record of a run without its timings: equal, bit for bit, for a resumed run and its
    uninterrupted twin."""
    from scalinglab.train.rundir import read_metrics

    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in read_metrics(run_dir)]
