"""Tiny real studies on the built-in corpus: models of a few thousand parameters, a few dozen steps."""

from __future__ import annotations

from pathlib import Path

import pytest

BASE = """
recipe = "kaplan2020"
stale_seconds = 30

[base.model]
n_layer = 2
n_ctx = 32
d_model = 32
n_head = 2
vocab_size = 512

[base.data]
corpus = "stdlib"
vocab_size = 512

[base.optim]
batch_size = 8

[base.budget]
steps = 30

[base.eval]
points = 2
tokens = 2048
per_position = false

[base.runtime]
checkpoint_steps = 10
"""

SIX = """
[[design]]
kind = "ladder"
shapes = [[2, 32], [2, 48]]

[[design]]
kind = "lr_scan"
shapes = [[2, 32]]
lr_multipliers = [0.5, 2]

[[design]]
kind = "seeds"
shapes = [[2, 32]]
seeds = [0, 1, 2]   # seed 0 is the ladder's L2-d32 run: trained once
"""
"""Six runs: two sizes, two learning rates, two more seeds."""


def write_study(directory: Path, name: str, designs: str, top: str = "", base: str = BASE) -> Path:
    """A study file in ``directory`` whose runs go to ``directory/runs/<name>``."""
    path = directory / f"{name}.toml"
    path.write_text(f'name = "{name}"\nout_dir = "{directory / "runs" / name}"\n{top}\n{base}\n{designs}')
    return path


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU is shared: every torch the tests start uses one thread."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
