"""Fixtures every test directory may use: the token cache of the tiny runs, tokenised once per session."""

from __future__ import annotations

import pytest
from tests.support import VOCAB


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A private token cache of the built-in corpus at the tiny runs' vocabulary (each module tokenised its own:
    seconds apiece, the same bytes)."""
    from scalinglab.data import prepare
    from scalinglab.data.config import DataConfig

    path = tmp_path_factory.mktemp("token-cache")
    prepare(DataConfig(corpus="stdlib", vocab_size=VOCAB), cache_dir=str(path), progress=False)
    return str(path)
