"""The demo's study file, checked without training: the designs the issue asks for, at the sizes promised."""

from __future__ import annotations

import tomllib

import pytest

from scalinglab.demo import study_text
from scalinglab.model.counting import count_params
from scalinglab.study import expand_study, study_from_dict
from scalinglab.train.budget import resolve_steps, tokens_per_step


@pytest.mark.parametrize(("quick", "decades"), [(False, 2.0), (True, 1.5)])
def test_demo_study_has_a_ladder_over_decades_a_data_sweep_and_a_batch_scan(quick, decades):
    runs = expand_study(study_from_dict(tomllib.loads(study_text(quick))))
    kinds = {r.kind for r in runs}
    assert {"ladder", "isoflop", "dataset_size", "batch_scan", "shape_scan"} <= kinds
    ladder = [r.config for r in runs if r.kind == "ladder"]
    assert len({count_params(c.model)["N"] for c in ladder}) >= 6
    compute = [6 * count_params(c.model)["N"] * resolve_steps(c) * tokens_per_step(c) for c in ladder]
    assert max(compute) / min(compute) >= 10**decades  # the full demo: at least two decades of compute
    assert all(c.model.n_layer >= 2 for c in ladder)  # Kaplan leaves 1-layer models out of the fits
    configs = [r.config for r in runs]
    assert all(c.data.corpus == "stdlib" for c in configs)  # built in: no download
    assert all([e.corpus for e in c.data.eval_sets] == ["stdlib-docstrings"] for c in configs)  # transfer
    in_scan = [r for r in runs if r.kind == "batch_scan" or any(d == "batch_scan" for d, _ in r.also)]  # shared too
    assert len({r.config.optim.batch_size for r in in_scan}) >= 4


def test_quick_demo_is_much_smaller():
    def tokens(quick: bool) -> int:
        runs = expand_study(study_from_dict(tomllib.loads(study_text(quick))))
        return sum(resolve_steps(r.config) * tokens_per_step(r.config) for r in runs)

    assert tokens(True) * 5 < tokens(False)
