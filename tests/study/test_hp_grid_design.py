"""The hp_grid design: LR x batch grids over (N, D) cells, the grid's LR and batch kept by every recipe."""

from __future__ import annotations

import pytest

from scalinglab.errors import ConfigError
from scalinglab.study.config import expand_study, study_from_dict
from scalinglab.train.budget import resolve_steps, tokens_per_step


def _study(recipe: str, **design):
    return study_from_dict(
        {
            "name": "hp",
            "recipe": recipe,
            "base": {"model": {"n_ctx": 32, "vocab_size": 512}, "data": {"vocab_size": 512}},
            "design": [{"kind": "hp_grid", "shapes": [[2, 16], [2, 32]], "head_dim": 8, **design}],
        }
    )


@pytest.mark.parametrize("recipe", ["tiny-v1", "tuned-v1", "kaplan2020"])
def test_cells_and_pins_survive_the_recipe(recipe: str) -> None:
    runs = expand_study(_study(recipe, tokens=[50_000, 100_000], lrs=[0.004, 0.016], batch_sizes=[4, 8, 16]))
    assert len(runs) == 2 * 2 * 3 * 2
    cells = {r.group for r in runs}
    assert cells == {"L2-d16-D5e4", "L2-d16-D1e5", "L2-d32-D5e4", "L2-d32-D1e5"}
    for r in runs:
        cfg = r.config
        assert (cfg.optim.lr, cfg.optim.batch_size) in {(lr, b) for lr in (0.004, 0.016) for b in (4, 8, 16)}
        d = resolve_steps(cfg) * tokens_per_step(cfg)
        assert d == pytest.approx({"D5e4": 50_000, "D1e5": 100_000}[r.group.rsplit("-", 1)[1]], rel=0.02)


def test_multipliers_follow_the_recipe_lr() -> None:
    runs = expand_study(_study("tiny-v1", tokens=[50_000], lr_multipliers=[0.5, 2], batch_sizes=[8]))
    by_width = {(r.config.model.d_model, round(r.config.optim.lr, 9)) for r in runs}
    assert by_width == {(16, round(0.2 / 16, 9)), (16, round(0.8 / 16, 9)), (32, round(0.2 / 32, 9)), (32, round(0.8 / 32, 9))}


def test_bad_grid_says_what_to_change() -> None:
    with pytest.raises(ConfigError, match="one of lrs or lr_multipliers"):
        _study("tiny-v1", tokens=[50_000], batch_sizes=[8])
    with pytest.raises(ConfigError, match="batch_sizes must list positive"):
        _study("tiny-v1", tokens=[50_000], lrs=[0.01], batch_sizes=[0])


@pytest.mark.slow
def test_hparams_on_a_trained_study(tmp_path, capsys) -> None:
    """A real tiny hp_grid study (two D cells x three LRs, noise scale on) read by `scalinglab hparams DIR`."""
    import json

    from tests.support import BASE, write_study

    from scalinglab.cli import main
    from scalinglab.study import load_study, run_study

    base = BASE.replace("batch_size = 8", "batch_size = 4\nmicro_batch_size = 2").replace("per_position = false", "per_position = false\nnoise_scale = true")
    design = '[[design]]\nkind = "hp_grid"\nshapes = [[2, 16]]\nhead_dim = 8\ntokens = [2048, 4096]\nlrs = [0.003, 0.01, 0.03]\n'
    study = load_study(write_study(tmp_path, "hp", design, base=base))
    run_study(study, "local", workers=2, progress=False)
    from scalinglab.study.collect import write_tables

    write_tables(study.directory)
    assert main(["hparams", str(study.directory), "--bootstrap", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["n_runs"] for c in out["cells"]] == [3, 3]
    for c in out["cells"]:
        assert c["batch"] is None and 0.003 <= c["lr"] <= 0.03 and c["lr_interval"][0] <= c["lr"] <= c["lr_interval"][1]
        assert c["B_noise"] is not None and c["B_noise"] > 0  # the online noise scale of the same runs
    assert out["lr"] is None or out["lr"]["N_exp"] is None  # one size: no N exponent, and it says why
    assert out["warnings"] and all(set(w) == {"kind", "param", "message"} for w in out["warnings"])
