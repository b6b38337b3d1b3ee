"""benchmarks/model_ab.py: two versions of the model file built and stepped alike, so only the code differs."""

from __future__ import annotations

from pathlib import Path

from benchmarks.model_ab import OURS, load, stepper

from scalinglab.model.config import ModelConfig


def _losses(path: Path, name: str, steps: int = 3) -> list[float]:
    cfg = ModelConfig(n_layer=1, d_model=16, n_head=2, n_ctx=8, vocab_size=64)
    step = stepper(load(path, name), cfg, tokens=32)
    return [step() for _ in range(steps)]


def test_the_same_file_twice_trains_identically_and_a_changed_one_does_not(tmp_path: Path) -> None:
    same = _losses(OURS, "ab_a"), _losses(OURS, "ab_b")
    assert same[0] == same[1]  # one init and one batch: a difference would be the harness's, not the code's
    assert same[0][-1] < same[0][0]  # the steps train
    changed = tmp_path / "gpt.py"  # the residual projections' init scaled: other arithmetic, same interface
    changed.write_text(OURS.read_text().replace("std=cfg.init_std / math.sqrt(", "std=2 * cfg.init_std / math.sqrt("))
    assert _losses(changed, "ab_c") != same[0]
