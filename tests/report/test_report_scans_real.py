"""Kaplan Figs 21 and 22 from real runs: the designs of studies/lr_schedules.toml and studies/context_scan.toml,
shrunk to tiny models and a few dozen steps on the built-in corpus, trained once, then analysed and drawn."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.report import scans as sc
from scalinglab.study import run_study, study_from_dict

STUDIES = Path(__file__).resolve().parents[2] / "studies"

BASE = {
    "recipe": "tiny-v1",
    "base": {
        "model": {"n_layer": 2, "d_model": 16, "n_head": 2, "n_ctx": 32, "vocab_size": 512},
        "data": {"corpus": "stdlib", "vocab_size": 512},
        "optim": {"batch_size": 8},
        "budget": {"steps": 80},
        "eval": {"points": 3, "tokens": 4096, "per_position": True},
    },
}
"""The studies' base, shrunk: 512-token BPE, 80 steps, small evaluations; per-position losses recorded."""


def _designs(name: str) -> list[dict]:
    return tomllib.loads((STUDIES / name).read_text())["design"]


def tiny_designs() -> list[dict]:
    """The shipped designs (schedules, overrides, context lengths) at two tiny widths and fewer points."""
    lr = _designs("lr_schedules.toml")
    cosine, others = lr[0], lr[1:]
    out = [cosine | {"shapes": [[2, 8], [2, 16]], "lr_multipliers": [1 / 16, 1, 16]}]  # a wide scan brackets the optimum
    out += [d | {"shapes": [[2, 16]], "lr_multipliers": [1]} for d in others]  # the same peak, another schedule
    # long enough to learn more than unigrams (the loss falls with position only then), evaluated on more tokens
    # so that one position's loss is known to about 0.1 nats
    ctx = {"shapes": [[2, 8], [2, 16]], "head_dim": 8, "n_ctx": [8, 32], "budget": {"steps": 240},
           "overrides": ["eval.tokens=16384"]}
    out += [d | ctx for d in _designs("context_scan.toml")]
    return out


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory):
    """One tiny real study with the LR scans and the context scan, trained with 2 workers, and its report."""
    from scalinglab.report.build import build_report

    out = tmp_path_factory.mktemp("scans")
    study = study_from_dict({"name": "scans", "out_dir": str(out), **BASE, "design": tiny_designs()})
    run_study(study, "local", 2, progress=False)
    return build_report(out, progress=False)


def test_the_shrunk_studies_keep_the_shipped_designs() -> None:
    kinds = [(d["kind"], d.get("name", d["kind"])) for d in tiny_designs()]
    assert kinds == [("lr_scan", "cosine"), ("lr_scan", "constant"), ("lr_scan", "wsd"), ("context_scan", "context_scan")]
    assert tiny_designs()[1]["overrides"] == ["schedule.kind=constant"]


def test_fig22_is_drawn_from_the_real_lr_scan(scans) -> None:
    assert "LR scan" not in scans.skipped and scans.sections["fig-22"]
    assert scans.figures["fig22_lr_scan"].stat().st_size > 10_000  # a drawn PNG, not a note
    a: sc.LearningRateScan = scans.results["LR scan"]
    p = a.points
    assert len(p) == 8 and set(p["design"]) == {"cosine", "constant", "wsd"}
    best = a.best()
    assert len(best) == 2 and not best["edge"].any()  # 1/16x and 16x the recipe's LR are both worse
    for _, g in p[p["design"] == "cosine"].groupby("N"):
        assert g.sort_values("lr")["lr_sum"].is_monotonic_increasing
        assert g["loss"].max() - g["loss"].min() > 0.1  # the scan spans a real range of losses
    one = p[(p["N"] == p["N"].max()) & np.isclose(p["lr"], p.loc[p["design"] == "constant", "lr"].iloc[0])]
    sums = one.set_index("design")["lr_sum"]
    assert sums["constant"] > sums["wsd"] > sums["cosine"]  # same peak: constant sums most, cosine least (Fig 22 left)
    steps = a.schedules.groupby("run_id")["step"].max()
    assert (steps == 80).all()  # the logged schedules run to the last step


def test_fig21_is_drawn_from_the_real_context_scan(scans) -> None:
    from scalinglab.study.collect import collect, collect_positions

    assert "context" not in scans.skipped and scans.sections["fig-21"]
    assert scans.figures["fig21_position_vs_n"].stat().st_size > 10_000
    a: sc.ContextLoss = scans.results["context"]
    f = a.final
    assert a.n_ctx == 32 and set(f["n_ctx"]) == {8, 32} and f["short"].sum() > 0
    assert f.groupby("run_id")["T"].nunique().min() >= 6  # positions 1-8, and 16, 32 of the long runs
    study = scans.path.parent.parent
    runs, _ = collect(study)
    short = f[f["short"]].groupby("run_id")["loss"].mean()  # a short run's positions are all drawn: their mean is its loss
    assert np.allclose(short, runs.set_index("run_id").loc[short.index, "loss"], rtol=1e-6)
    pos = collect_positions(study)
    wide = runs.loc[(runs["n_ctx"] == 32) & runs["run_id"].isin(f["run_id"]), ["run_id", "N"]].sort_values("N").iloc[-1]
    p = pos[pos["final"] & (pos["run_id"] == wide["run_id"])]
    early, late = p.loc[p["T"] <= 2, "loss"].mean(), p.loc[p["T"] > 16, "loss"].mean()
    assert early > late + 0.03, (early, late)  # Fig 20: tokens late in the context are predicted better
    assert isinstance(a.during, pd.DataFrame)
