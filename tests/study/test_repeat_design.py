"""The repeat design: sizes x nested unique-data subsets U x epochs, costed, selected for data_constrained, and
a real tiny study fitted from its directory and drawn in the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scalinglab.errors import ConfigError, DataError
from scalinglab.study.config import expand_study, study_from_dict
from scalinglab.study.selection import select_for_law
from scalinglab.train.budget import resolve_steps, tokens_per_step


def _study(**design):
    return study_from_dict({
        "name": "rep", "recipe": "tiny-v1",
        "base": {"model": {"n_ctx": 32, "vocab_size": 512}, "data": {"vocab_size": 512}},
        "design": [{"kind": "repeat", "shapes": [[2, 16], [2, 32]], "head_dim": 8, **design}],
    })  # fmt: skip


def test_each_size_repeats_each_subset_for_each_epoch_count() -> None:
    runs = expand_study(_study(unique_tokens=[4096, 16384], epochs=[1, 2, 8]))
    assert len(runs) == 2 * 2 * 3
    for r in runs:
        u = r.config.data.train_tokens
        e = float(r.name.rsplit("-ep", 1)[1])
        assert u in (4096, 16384) and r.group.endswith(f"-U{u:.3g}".replace("e+0", "e"))
        assert resolve_steps(r.config) * tokens_per_step(r.config) == pytest.approx(e * u, rel=0.05)
    seeds = {r.config.data.subset_seed for r in runs}
    assert seeds == {0}  # one seeded subset per size U, the same for every run: nested and shared


def test_bad_repeat_design_says_what_to_change() -> None:
    with pytest.raises(ConfigError, match="give the data once"):
        _study(unique_tokens=[])
    with pytest.raises(ConfigError, match="give the data once"):
        _study(unique_tokens=[4096], tokens=[8192])
    with pytest.raises(ConfigError, match="epochs must list positive"):
        _study(unique_tokens=[4096], epochs=[0, 2])


def test_selection_takes_the_subset_runs_with_their_unique_tokens() -> None:
    runs = pd.DataFrame({
        "run_id": list("abcd"), "status": "done", "kind": ["repeat", "repeat", "repeat", "ladder"],
        "design": ["repeat", "repeat", "repeat", "ladder"], "n_layer": 2, "N": [1e4, 1e4, 2e4, 1e4],
        "D": [4096, 16384, 8192, 30000], "train_tokens_limit": [4096, 4096, 8192, 0],
        "loss": [5.0, 4.8, 4.7, 4.5], "best_loss": [5.0, 4.8, 4.6, 4.5],
    })  # fmt: skip
    kept, line = select_for_law(runs, "data_constrained")
    assert list(kept["run_id"]) == ["a", "b"] and list(kept["U"]) == [4096, 4096]
    assert list(kept["loss"]) == [5.0, 4.8]  # the final loss (Muennighoff fits the final)
    assert "1 on the whole corpus" in line and "1 whose loss rose" in line  # c overfits: 4.7 after 4.6


@pytest.mark.slow
def test_a_real_repeat_study_fits_from_its_directory(tmp_path, capsys) -> None:
    """Eight runs of a few steps: `fit DIR --law data_constrained` selects them and the report section is drawn."""
    from tests.support import tiny_base, write_study

    from scalinglab.cli import main
    from scalinglab.report import repeat as rp
    from scalinglab.report.figures import save
    from scalinglab.study import load_study, run_study
    from scalinglab.study.collect import collect, write_tables

    base = tiny_base(points=1)
    design = ('[[design]]\nkind = "repeat"\nshapes = [[2, 8], [2, 16]]\nhead_dim = 8\n'
              "tokens = [1024, 2048]\nepochs = [1, 4]\n")  # two D, U = D / epochs: 8 runs of 4 or 8 steps  # fmt: skip
    study = load_study(write_study(tmp_path, "rep", design, base=base))
    run_study(study, "local", workers=2, progress=False)
    write_tables(study.directory)
    fit_json = tmp_path / "fit.json"
    args = ["fit", str(study.directory), "--law", "data_constrained", "--bootstrap", "10", "--no-progress", "--out", str(fit_json)]
    assert main(args) in (0, 1)  # 1: not converged, said on stderr; 8 runs for 7 parameters may not pin them all
    captured = capsys.readouterr()
    out = json.loads(fit_json.read_text())
    assert out["n_points"] == 8 and sorted(set(out["data"]["U"])) == [256, 512, 1024, 2048]
    assert "8 of 8 runs" in captured.err and all(set(w) == {"kind", "param", "message"} for w in out["warnings"])

    runs, _ = collect(study.directory)
    a = rp.repetition(runs, bootstrap=10)  # the report's 100 refits cost 25 s on eight degenerate runs
    assert len(a.runs) == 8 and (a.runs["D_eff"] <= a.runs["D"] * (1 + 1e-9)).all()
    assert "R_D* =" in rp.caption_epochs(a)
    png, _ = save(rp.fig_epochs(a), tmp_path / "figures", "repeat_loss_vs_epochs")
    assert png.stat().st_size > 0
    with pytest.raises(DataError, match="studies/repeat.toml"):
        rp.repetition(runs.assign(kind="ladder", design="ladder", designs="ladder"))


def test_a_repeat_panel_of_a_study_with_the_design_gives_the_real_reason(tmp_path) -> None:
    from scalinglab.report.build import FIGURES, _panel

    panel = next(f for f in FIGURES if f.key == "repeat").panels[0]
    why = {"repetition": "the fit did not converge"}
    note = _panel(panel, {}, why, tmp_path, {}, frozenset({"ladder", "repeat"})).note
    assert note == "not drawn: the fit did not converge"  # the design is there: no "add a repeat design"
    assert "add a repeat design" in _panel(panel, {}, why, tmp_path, {}, frozenset({"ladder"})).note
