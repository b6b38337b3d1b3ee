"""Speed switches of the trainer that change how a step runs, not what it computes."""

from __future__ import annotations

import torch

from scalinglab.config import load_config
from scalinglab.train.config import RunConfig
from scalinglab.train.distributed import Distributed
from scalinglab.train.trainer import Trainer

TINY = ["model.n_layer=1", "model.d_model=16", "model.n_head=2", "model.n_ctx=16", "model.vocab_size=512",
        "data.vocab_size=512", "optim.batch_size=2", "eval.tokens=64", "budget.steps=2", "runtime.progress=false"]  # fmt: skip


def test_compile_compiles_the_training_path(tmp_path) -> None:
    """runtime.compile wraps model.loss, which training and evaluation call (compiling forward captured nothing)."""
    on = Trainer(load_config(RunConfig, None, [*TINY, "runtime.compile=true"]), tmp_path, torch.device("cpu"), Distributed())
    on._build()
    assert getattr(on.model.loss, "_torchdynamo_orig_callable", None) is not None
    assert on.model._compiled_call_impl is None  # the module's forward is left alone
    off = Trainer(load_config(RunConfig, None, TINY), tmp_path, torch.device("cpu"), Distributed())
    off._build()
    assert not hasattr(off.model.loss, "_torchdynamo_orig_callable")
