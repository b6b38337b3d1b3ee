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


def test_the_cuda_paths_bf16_autocast_and_fused_adamw_run_on_cpu() -> None:
    """The GPU step (bf16 autocast, where the loss takes F.cross_entropy, and fused AdamW) checked on CPU."""
    from scalinglab.model.config import ModelConfig
    from scalinglab.model.gpt import GPT

    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, d_model=32, n_head=4, n_ctx=16, vocab_size=512))
    idx = torch.randint(0, 512, (4, 17))
    fp32 = model.loss(idx[:, :-1], idx[:, 1:])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model.loss(idx[:, :-1], idx[:, 1:])
    assert bf16.dtype == torch.float32  # the loss is upcast before the softmax
    assert abs(bf16.item() - fp32.item()) < 0.02 * fp32.item()  # bf16 keeps ~3 significant digits
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    bf16.backward()
    before = model.wte.weight.detach().clone()
    opt.step()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert not torch.equal(before, model.wte.weight)
