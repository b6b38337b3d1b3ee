"""Fixtures shared by the laws tests: Chinchilla's published runs (Epoch's digitisation)."""

from pathlib import Path

import pandas as pd
import pytest

from scalinglab.laws.tables import drop_highest, read_runs_table

EPOCH_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "runs" / "chinchilla_fig4_epoch.csv"


@pytest.fixture(scope="session")
def epoch_runs() -> pd.DataFrame:
    """All 245 runs; skipped where ../shared/data is absent (it exists on developer machines only)."""
    if not EPOCH_CSV.is_file():
        pytest.skip(f"published runs not found at {EPOCH_CSV} (shared data absent)")
    return read_runs_table(EPOCH_CSV)


@pytest.fixture(scope="session")
def epoch240(epoch_runs: pd.DataFrame) -> pd.DataFrame:
    """The 240 runs Epoch fit: the 5 highest-loss runs dropped (Besiroglu et al. 2024)."""
    return drop_highest(epoch_runs, 5)
