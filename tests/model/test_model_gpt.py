"""The GPT module: its fused loss equals the textbook one, shapes, causality and input checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scalinglab.model.config import ModelConfig
from scalinglab.model.gpt import GPT, HeadCrossEntropy, SmallCausalAttention


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("n_head", [2, 8], ids=["flash", "small-heads"])  # head size 16: the flash kernel; 4: batched matmuls
@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_and_gradients_equal_cross_entropy_of_the_logits(tie: bool, reduction: str, n_head: int) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=n_head, n_ctx=16, vocab_size=300, tie_embeddings=tie)
    model = GPT(cfg).double()
    tokens = torch.randint(0, 300, (3, 17))
    x, y = tokens[:, :-1], tokens[:, 1:]
    reference = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction=reduction)
    reference = reference.view(y.shape) if reduction == "none" else reference
    weights = torch.rand_like(reference)  # any upstream gradient, not only the mean's
    (reference * weights).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    loss = model.loss(x, y, reduction=reduction)
    (loss * weights).sum().backward()
    torch.testing.assert_close(loss, reference, rtol=0, atol=1e-12)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-9, atol=1e-12, msg=name)


def test_fused_loss_matches_in_float32_with_extreme_logits() -> None:
    """Many rows and large logits: the in-place log-softmax must not overflow, nor its gradient."""
    torch.manual_seed(1)
    vocab, rows = 1000, 1031
    h = (torch.randn(rows, 24) * 20).requires_grad_()
    w = torch.randn(vocab, 24).requires_grad_()
    t = torch.randint(0, vocab, (rows,))
    reference = F.cross_entropy(h @ w.t(), t, reduction="none")
    reference.mean().backward()
    expected = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    loss = HeadCrossEntropy.apply(h, w, t)
    loss.mean().backward()
    assert torch.isfinite(loss).all() and loss.max() > 100  # past fp32's probabilities: from the logits again
    assert (loss < -math.log(HeadCrossEntropy.UNDERFLOW)).any()  # and rows read off the softmax
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close((h.grad, w.grad), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("B", "T", "H", "hd"), [(3, 16, 4, 8), (2, 64, 6, 4), (1, 1, 2, 2)])
def test_small_head_attention_equals_causal_sdpa(B: int, T: int, H: int, hd: int) -> None:
    """The batched-matmul attention gives the flash kernel's outputs and gradients for q, k and v."""
    torch.manual_seed(2)
    qkv = torch.randn(B, T, 3 * H * hd, dtype=torch.float64, requires_grad=True)
    q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(H * hd, dim=2))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, H * hd)
    y = SmallCausalAttention.apply(qkv, H)
    upstream = torch.randn_like(y)
    torch.testing.assert_close(y, reference, rtol=0, atol=1e-12)
    expected, got = (torch.autograd.grad(out, qkv, upstream)[0] for out in (reference, y))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_a_second_backward_through_the_fused_loss_is_refused() -> None:
    model = GPT(ModelConfig(n_layer=1, d_model=16, n_head=2, n_ctx=8, vocab_size=50))
    tokens = torch.randint(0, 50, (2, 9))
    loss = model.loss(tokens[:, :-1], tokens[:, 1:])
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()  # the softmax buffer became the gradient: reusing it would be wrong


def test_causal_logits_shape_and_no_grad_eval() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=4, n_ctx=12, vocab_size=64)
    model = GPT(cfg).eval()
    a = torch.randint(0, 64, (2, 12))
    b = a.clone()
    b[:, 8:] = (b[:, 8:] + 1) % 64  # change only the future
    with torch.no_grad():
        la, lb = model(a), model(b)
        per_position = model.loss(a[:, :-1], a[:, 1:], reduction="none")
    assert la.shape == (2, 12, 64) and per_position.shape == (2, 11)
    torch.testing.assert_close(la[:, :8], lb[:, :8])  # positions before 8 cannot see it
    assert not torch.allclose(la[:, 8:], lb[:, 8:])
    # evaluation's path (flash attention, the log-softmax alone) gives the training path's losses
    with_grad = model.loss(a[:, :-1], a[:, 1:], reduction="none")
    assert with_grad.requires_grad
    torch.testing.assert_close(per_position, with_grad.detach(), rtol=1e-5, atol=1e-6)


def test_bad_inputs() -> None:
    model = GPT(ModelConfig(n_layer=1, d_model=16, n_head=2, n_ctx=8, vocab_size=50))
    with pytest.raises(ValueError, match="longer than model.n_ctx=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction must be"):
        model.loss(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long), reduction="avg")


def test_tied_head_shares_storage_and_residual_init_is_scaled() -> None:
    cfg = ModelConfig(n_layer=8, d_model=64, n_head=2, n_ctx=16, vocab_size=100)
    model = GPT(cfg)
    assert model.head.weight is model.wte.weight
    std = model.blocks[0].mlp.proj.weight.std().item()
    assert std == pytest.approx(cfg.init_std / (2 * cfg.n_layer) ** 0.5, rel=0.1)  # GPT-2 residual scaling


def test_loss_under_autocast_uses_float32_cross_entropy() -> None:
    """With bf16 autocast (the CUDA path, here on CPU) the logits are upcast before the loss."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, d_model=32, n_head=2, n_ctx=8, vocab_size=64))
    tokens = torch.randint(0, 64, (2, 9))
    exact = model.loss(tokens[:, :-1], tokens[:, 1:], reduction="none")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.loss(tokens[:, :-1], tokens[:, 1:], reduction="none")
    assert mixed.dtype == torch.float32 and mixed.shape == (2, 8)
    torch.testing.assert_close(mixed, exact, rtol=0.02, atol=0.02)
