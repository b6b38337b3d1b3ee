"""``study status`` on finished runs: a run's metrics.jsonl is read through once, not on every call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support import tiny_base, write_study

from scalinglab.study import load_study, run_study, study_status
from scalinglab.study.store import METRICS_CHECKED


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory, token_cache: str):
    base = tiny_base(n_layer=1, d_model=16, steps=6, points=1, checkpoint_steps=0, cache_dir=token_cache)
    ladder = '[[design]]\nkind = "ladder"\nshapes = [[1, 16]]\n'
    study = load_study(write_study(tmp_path_factory.mktemp("status"), "one", ladder, base=base))
    table = run_study(study, "local", workers=1, progress=False)  # its closing status reads the metrics once
    assert list(table["state"]) == ["done"], table
    return study, Path(table["run_dir"].iloc[0])


def test_status_does_not_read_a_checked_metrics_file_again(finished_study) -> None:
    study, run_dir = finished_study
    metrics = run_dir / "metrics.jsonl"
    assert (run_dir / METRICS_CHECKED).is_file()
    st = metrics.stat()
    metrics.write_bytes((b"{\n" * st.st_size)[: st.st_size])  # same size and time; read, it is damaged at line 1
    os.utime(metrics, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert list(study_status(study)["state"]) == ["done"]  # so it was not read
    os.utime(metrics, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a changed file is read through again
    row = study_status(study).iloc[0]
    assert row["state"] == "damaged" and "metrics.jsonl:1" in row["reason"]
