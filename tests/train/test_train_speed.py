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


def test_flat_adamw_is_bit_identical_to_torch_fused_adamw_and_shares_its_checkpoints() -> None:
    """Two groups (decay and none), clipping and five steps: the same parameters, moments and grad norms, bit for bit,
    and each optimiser's state_dict loads into the other."""
    from scalinglab.model.config import ModelConfig
    from scalinglab.model.gpt import GPT
    from scalinglab.train.adamw import FlatAdamW

    cfg = ModelConfig(n_layer=1, d_model=16, n_head=2, n_ctx=8, vocab_size=64)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(GPT(cfg))
    idx = torch.randint(0, 64, (3, 9))
    named = list(models[0].named_parameters())
    group_of = [int(p.dim() < 2) for _, p in named]
    ref = torch.optim.AdamW(
        [{"params": [p for (_, p), g in zip(named, group_of) if g == k], "weight_decay": wd} for k, wd in ((0, 0.1), (1, 0.0))],
        lr=1e-2, betas=(0.9, 0.95), eps=1e-8, fused=True,
    )  # fmt: skip
    flat = FlatAdamW(list(models[1].parameters()), group_of, [0.1, 0.0], lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    for step in range(5):
        lr = 1e-2 * (step + 1) / 5
        models[0].loss(idx[:, :-1], idx[:, 1:]).backward()
        norm_ref = torch.nn.utils.clip_grad_norm_(list(models[0].parameters()), 0.5)
        for group in ref.param_groups:
            group["lr"] = lr
        ref.step()
        ref.zero_grad(set_to_none=True)
        models[1].loss(idx[:, :-1], idx[:, 1:]).backward()
        norm = flat.grad_norm()
        flat.clip_(norm, 0.5)
        flat.step(lr)
        flat.zero_grad()
        assert norm.item() == norm_ref.item()
        assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True))
    theirs, ours = ref.state_dict(), flat.state_dict()
    assert [g["params"] for g in theirs["param_groups"]] == [g["params"] for g in ours["param_groups"]]
    for i, s in theirs["state"].items():
        assert all(torch.equal(s[k], ours["state"][i][k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    flat.exp_avg.zero_()
    flat.load_state_dict(theirs)  # a checkpoint written by torch's AdamW resumes here, and back
    assert all(torch.equal(s["exp_avg"], flat.state_dict()["state"][i]["exp_avg"]) for i, s in theirs["state"].items())
    ref.load_state_dict(flat.state_dict())
