"""Designs of other model families: a ladder per family (arch, reuse), run tags, sizes counted in the
family, the committed Fig 7, 17 and 24 studies, and bad family settings failing at plan time."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalinglab.errors import ConfigError
from scalinglab.model.counting import count_params
from scalinglab.study import expand_study, load_study, study_from_dict

STUDIES = Path(__file__).resolve().parents[2] / "studies"
BASE = {"model": {"n_ctx": 32, "vocab_size": 512}, "data": {"corpus": "stdlib", "vocab_size": 512},
        "budget": {"tokens": 20_000}}  # fmt: skip


def _study(*designs: dict) -> list:
    return expand_study(study_from_dict({"name": "f", "recipe": "tiny-v1", "base": BASE, "design": list(designs)}))


def test_a_ladder_per_family() -> None:
    runs = _study(
        {"kind": "ladder", "name": "gpt", "shapes": [[2, 32]], "head_dim": 16},
        {"kind": "ladder", "name": "lstm", "arch": "lstm", "shapes": [[1, 56], [2, 40]], "head_dim": 8},
        {"kind": "ladder", "name": "u", "arch": "universal", "reuse": 4, "shapes": [[2, 32]], "head_dim": 16},
    )
    assert [r.name for r in runs] == ["gpt-L2-d32", "lstm-lstm-L1-d56", "lstm-lstm-L2-d40", "u-ux4-L2-d32"]
    models = [r.config.model for r in runs]
    assert [(m.arch, m.reuse) for m in models] == [("gpt", 1), ("lstm", 1), ("lstm", 1), ("universal", 4)]
    assert len({r.identity for r in runs}) == 4  # same shape, another family: another run
    assert count_params(models[3])["N"] == count_params(models[0])["N"]  # reuse adds no parameters
    assert count_params(models[3])["N_with_reuse"] > 3.9 * count_params(models[0])["N"]


def test_sizes_from_n_are_counted_in_the_design_family() -> None:
    """A target N builds an LSTM of that N (8·L·d²), not the shape a Transformer of that N would have."""
    (run,) = _study({"kind": "ladder", "arch": "lstm", "params": [5e4], "aspect_ratio": 32, "head_dim": 8})
    m = run.config.model
    assert m.arch == "lstm" and abs(count_params(m)["N"] / 5e4 - 1) < 0.25
    assert 8 * m.n_layer * m.d_model**2 == pytest.approx(5e4, rel=0.3)


@pytest.mark.parametrize(
    ("design", "message"),
    [
        ({"arch": "rnn"}, "arch 'rnn' is not a model family; choose one of gpt, lstm, universal"),
        ({"arch": "lstm", "reuse": 2}, "model.reuse=2 applies only to model.arch='universal'"),
        ({"reuse": -1}, "reuse must be at least 1"),
    ],
)
def test_bad_family_settings_fail_at_plan_time(design: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _study({"kind": "ladder", "shapes": [[2, 32]], "head_dim": 16, **design})


def test_the_figure_studies_expand() -> None:
    fig7 = expand_study(load_study(STUDIES / "kaplan_fig7.toml"))
    archs = {(r.config.model.arch, r.config.model.n_layer) for r in fig7}
    assert {("lstm", 1), ("lstm", 2), ("lstm", 4), ("gpt", 2)} <= archs
    n = {r.name: count_params(r.config.model)["N"] for r in fig7}
    assert all(abs(n[f"{d}-lstm-{s}"] / n[f"transformer-{t}"] - 1) < 0.15  # equal N, size by size
               for d, sizes in (("lstm1", ("L1-d56", "L1-d104", "L1-d160")), ("lstm2", ("L2-d40", "L2-d72", "L2-d112")),
                                ("lstm4", ("L4-d28", "L4-d52", "L4-d80")))
               for s, t in zip(sizes, ("L2-d32", "L3-d48", "L4-d64")))  # fmt: skip
    fig17 = expand_study(load_study(STUDIES / "kaplan_fig17.toml"))
    assert sorted({r.config.model.reuse for r in fig17}) == [1, 2, 4, 8]
    fig24 = load_study(STUDIES / "kaplan_fig24.toml")
    runs = expand_study(fig24)
    sizes = [count_params(r.config.model)["N"] for r in runs]
    assert [r.config.model.n_layer for r in runs] == [1, 2, 4, 8, 16] and max(sizes) / min(sizes) < 1.33
    assert [e.name for e in fig24.base.data.eval_sets] == ["docstrings", "books", "docs"]
