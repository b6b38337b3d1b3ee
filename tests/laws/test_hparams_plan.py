"""Using fitted hyper-parameter laws: plan --hparams (LR, batch, steps with intervals) and the fitted: recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_hparams import TRUE, synthetic_grid  # the same synthetic grids (tests/laws is on sys.path)

from scalinglab.cli import main
from scalinglab.errors import DataError
from scalinglab.laws.fit import fit_law
from scalinglab.laws.hparams import fit_hparams
from scalinglab.laws.hparams_plan import plan_hparams
from scalinglab.study.config import expand_study, study_from_dict


@pytest.fixture(scope="module")
def hparams_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("hp") / "hparams.json"
    fit_hparams(synthetic_grid(0), bootstrap=50).to_json(path)
    return path


@pytest.fixture(scope="module")
def chinchilla_json(tmp_path_factory):
    """A chinchilla fit to runs drawn from Epoch's constants with 1% noise, with bootstrap refits."""
    rng = np.random.default_rng(0)
    n, d = np.meshgrid(np.geomspace(1e7, 2e8, 5), np.geomspace(1e9, 1.6e10, 5))
    n, d = n.ravel(), d.ravel()
    loss = (1.8172 + 482.01 / n**0.3478 + 2085.43 / d**0.3658) * np.exp(rng.normal(0, 0.01, n.size))
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    fit_law("chinchilla", {"N": n, "D": d, "loss": loss}, bootstrap=30).to_json(path)
    return path


def test_plan_gives_lr_batch_steps_with_intervals(hparams_json, chinchilla_json, capsys) -> None:
    budget = 6 * 5e7 * 4e9
    assert main(["plan", "--fit", str(chinchilla_json), "--hparams", str(hparams_json), "--budget", f"{budget:g}", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    n, d = plan["n_params"], plan["tokens"]
    eta = TRUE["lr"][0] * n ** TRUE["lr"][1] * d ** TRUE["lr"][2]
    b_opt = TRUE["batch"][0] * d ** TRUE["batch"][2]
    for key, truth in (("lr", eta), ("batch", b_opt)):
        lo, hi = plan[f"{key}_interval"]
        assert lo < truth < hi, (key, lo, truth, hi)
    assert plan["batch_tokens"] == pytest.approx(plan["hparams"]["batch_tokens"])
    assert plan["steps"] == pytest.approx(d / plan["batch_tokens"])
    lo, hi = plan["steps_interval"]
    assert lo < plan["steps"] < hi
    for key in ("n_params_interval", "tokens_interval", "loss_interval"):
        assert plan[key][0] < plan[key][1]


def test_interval_grows_with_the_plans_n_uncertainty(hparams_json) -> None:
    from scalinglab.laws.hparams import HparamsFit

    hp = HparamsFit.load(hparams_json)
    point = plan_hparams(hp, 5e7, 4e9)
    spread = plan_hparams(hp, 5e7, 4e9, n_interval=(2e7, 1.2e8), compute=6 * 5e7 * 4e9)
    assert spread.lr_interval[0] < point.lr_interval[0] and spread.lr_interval[1] > point.lr_interval[1]
    far = plan_hparams(hp, 5e9, 4e12)
    assert any(w["kind"] == "extrapolation" for w in far.warnings)


def test_fitted_recipe_sets_lr_and_batch_from_the_laws(hparams_json) -> None:
    study = study_from_dict(
        {
            "name": "fitted",
            "recipe": f"fitted:{hparams_json}",
            "base": {"model": {"n_ctx": 64, "vocab_size": 512}, "data": {"vocab_size": 512}, "budget": {"tokens": 2_000_000}},
            "design": [{"kind": "ladder", "shapes": [[2, 32], [2, 64]], "head_dim": 16}],
        }
    )
    runs = expand_study(study)
    from scalinglab.laws.hparams import HparamsFit
    from scalinglab.model.counting import count_params

    hp = HparamsFit.load(hparams_json)
    lrs = []
    for run in runs:
        cfg = run.config
        n = count_params(cfg.model)["N"]
        assert cfg.optim.lr == pytest.approx(float(hp.lr.predict(n, 2_000_000)), rel=1e-3)  # D: whole steps of the budget
        want = hp.batch.predict(n, 2_000_000) / 64
        assert abs(np.log2(cfg.optim.batch_size) - np.log2(want)) <= 0.5 + 1e-9
        assert cfg.model.init_std == pytest.approx(1 / np.sqrt(cfg.model.d_model))  # tiny-v1's init
        lrs.append(cfg.optim.lr)
    assert lrs[0] > lrs[1]  # the N exponent is negative


def test_fitted_recipe_missing_file_fails_at_plan_time(tmp_path) -> None:
    with pytest.raises(DataError, match="scalinglab hparams"):
        study_from_dict({"name": "x", "recipe": f"fitted:{tmp_path / 'nope.json'}", "design": [{"kind": "ladder"}]})
