"""The quick demo, run once per test session: its study and report are shared by the report tests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory: pytest.TempPathFactory):
    """(DemoResult, wall seconds) of ``scalinglab demo --quick`` in a fresh directory."""
    import torch

    from scalinglab.demo import run_demo

    torch.set_num_threads(1)
    out: Path = tmp_path_factory.mktemp("demo-quick")
    start = time.monotonic()
    result = run_demo(out, quick=True, workers=2, progress=False)
    return result, time.monotonic() - start
