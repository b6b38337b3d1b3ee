"""Fault injection on real parts: real tiny trainings on the built-in corpus, real files, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scalinglab.config import load_config
from scalinglab.data.config import DataConfig
from scalinglab.train.config import RunConfig

VOCAB = 512
TINY = [
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
"""A run of a few thousand parameters: each step takes milliseconds."""


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> str:
    """A token cache of the built-in corpus shared by every fault test (tokenised once)."""
    from scalinglab.data import prepare

    path = tmp_path_factory.mktemp("fault-cache")
    prepare(DataConfig(corpus="stdlib", vocab_size=VOCAB), cache_dir=str(path), progress=False)
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU is shared: every torch the tests start uses one thread."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def tiny(cache: str, *overrides: str) -> RunConfig:
    return load_config(RunConfig, None, [*TINY, f"runtime.cache_dir={cache}", *overrides])


def cli(*args: str, cache: str | None = None) -> subprocess.Popen:
    """``scalinglab ARGS`` in a new process group (so a test can signal it and its children)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    if cache:
        env["SCALINGLAB_CACHE"] = cache
    return subprocess.Popen(
        [sys.executable, "-m", "scalinglab", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        # SIGINT at its default, as at a terminal: a shell's background job (CI started with &) ignores it,
        # and the trainer keeps an inherited SIG_IGN (the pool workers' rule), so Ctrl-C tests would hang.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def train_args(cache: str, run_dir: Path, *overrides: str) -> list[str]:
    return ["train", *TINY, f"runtime.cache_dir={cache}", *overrides, "--run-dir", str(run_dir)]
