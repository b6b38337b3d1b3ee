"""Fault injection on real parts: real tiny trainings on the built-in corpus, real files, real signals."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import TINY_RUN, _one_thread, cli

from scalinglab.config import load_config
from scalinglab.train.config import RunConfig

__all__ = ["TINY", "_one_thread", "cli", "tiny", "train_args"]

TINY = TINY_RUN
"""A run of a few thousand parameters: each step takes milliseconds."""


@pytest.fixture(scope="session")
def cache(token_cache: str) -> str:
    """The session's token cache of the built-in corpus, shared by every fault test."""
    return token_cache


def tiny(cache: str, *overrides: str) -> RunConfig:
    return load_config(RunConfig, None, [*TINY, f"runtime.cache_dir={cache}", *overrides])


def train_args(cache: str, run_dir: Path, *overrides: str) -> list[str]:
    return ["train", *TINY, f"runtime.cache_dir={cache}", *overrides, "--run-dir", str(run_dir)]
