"""Golden numerics: 20 steps of a fixed tiny config give the losses pinned here, so a refactor that changes
the numerics (init, data order, schedule, optimiser, loss) fails (torchtitan's rule: a refactor reproduces
the loss exactly under a fixed seed)."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from scalinglab.config import load_config
from scalinglab.train.config import RunConfig
from scalinglab.train.run import train
from scalinglab.train.rundir import read_metrics

pytestmark = pytest.mark.slow  # tokenises a corpus and trains: about 10 s on a quiet machine

DOCS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "python311_docs_rst.txt.xz"

GOLDEN_TRAIN_LOSS = {1: 5.373569011688232, 5: 5.285069465637207, 10: 4.690791130065918, 20: 4.315319538116455}
"""Training loss at steps 1, 5, 10 and 20 (nats/token), measured on this config with torch on one CPU thread."""

GOLDEN_VALID_LOSS = 4.263408209512553
"""Validation loss after step 20."""


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DOCS.is_file():
        pytest.skip(f"{DOCS} is absent (the shared data directory is only on development machines)")
    root = tmp_path_factory.mktemp("golden")
    corpus = root / "docs.txt"  # a fixed real text: the first 400 kB of the Python 3.11 docs
    with lzma.open(DOCS) as f:
        corpus.write_bytes(f.read(400_000))
    cfg = load_config(RunConfig, None, [
        "seed=1234", "model.n_layer=2", "model.d_model=32", "model.n_head=2", "model.n_ctx=32",
        "model.vocab_size=256", f"data.corpus={corpus.as_posix()}", "data.tokenizer=byte", "optim.batch_size=4",
        "optim.lr=3e-3", "schedule.warmup_steps=5", "budget.steps=20", "eval.points=1", "eval.tokens=4096",
        "eval.per_position=false", "runtime.threads=1", "runtime.progress=false", "runtime.device=cpu",
        f"runtime.cache_dir={(root / 'cache').as_posix()}", f"runtime.out_dir={(root / 'runs').as_posix()}",
    ])  # fmt: skip
    train(cfg)
    return next((root / "runs").iterdir())


def test_twenty_steps_of_a_fixed_tiny_config_give_the_pinned_losses(golden_run: Path) -> None:
    records = {r["step"]: r for r in read_metrics(golden_run)}
    got = {step: records[step]["train_loss"] for step in GOLDEN_TRAIN_LOSS}
    assert got == pytest.approx(GOLDEN_TRAIN_LOSS, rel=1e-4), got
    assert records[20]["val_loss_valid"] == pytest.approx(GOLDEN_VALID_LOSS, rel=1e-4), records[20]["val_loss_valid"]
