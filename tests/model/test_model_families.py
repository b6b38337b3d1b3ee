"""The LSTM and the universal Transformer: counts by hand and against the modules, and what each computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.errors import ConfigError
from scalinglab.model import build_model
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params, flops_per_token, forward_flops_per_token, param_groups
from scalinglab.model.gpt import GPT
from scalinglab.model.lstm import LSTM
from scalinglab.model.universal import UniversalTransformer


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


LSTM_2 = ModelConfig(arch="lstm", n_layer=2, d_model=64, n_head=4, n_ctx=32, vocab_size=500)
LSTM_1_UNTIED = ModelConfig(arch="lstm", n_layer=1, d_model=48, n_head=4, n_ctx=16, vocab_size=300, tie_embeddings=False, bias=False)
UNIVERSAL_4 = ModelConfig(arch="universal", reuse=4, n_layer=2, d_model=64, n_head=4, n_ctx=32, vocab_size=500)
UNIVERSAL_ODD = ModelConfig(arch="universal", reuse=3, n_layer=1, d_model=48, n_head=3, d_ff=100, n_ctx=16, vocab_size=300, bias=False)

# Written out by hand. LSTM layer: W_ih and W_hh (4d x d each, gates i, f, g, o) + b_ih and b_hh
# (4d each); the final LayerNorm d weights + d biases. No positions.
HAND_PARAMS = {
    LSTM_2: {
        "embeddings": 500 * 64,
        "positions": 0,
        "head": 0,
        "lstm": 2 * (2 * 256 * 64 + 2 * 256),
        "norms": 64 + 64,
        "biases": 2 * 512 + 64,
    },
    LSTM_1_UNTIED: {
        "embeddings": 300 * 48,
        "positions": 0,
        "head": 300 * 48,
        "lstm": 2 * 192 * 48,
        "norms": 48,
        "biases": 0,
    },
    # the universal Transformer holds n_layer distinct blocks: the GPT's groups
    UNIVERSAL_4: {
        "embeddings": 500 * 64,
        "positions": 32 * 64,
        "head": 0,
        "attention": 2 * (64 * 192 + 192 + 64 * 64 + 64),
        "mlp": 2 * (64 * 256 + 256 + 256 * 64 + 64),
        "norms": 5 * (64 + 64),
        "biases": 2 * (192 + 64 + 256 + 64) + 5 * 64,
    },
    UNIVERSAL_ODD: {
        "embeddings": 300 * 48,
        "positions": 16 * 48,
        "head": 0,
        "attention": 48 * 144 + 48 * 48,
        "mlp": 2 * 48 * 100,
        "norms": 3 * 48,
        "biases": 0,
    },
}

# N with each block counted once per application: the blocks' parameters x reuse, the final norm once.
HAND_N_WITH_REUSE = {
    UNIVERSAL_4: 4 * (2 * (64 * 192 + 192 + 64 * 64 + 64) + 2 * (64 * 256 + 256 + 256 * 64 + 64) + 4 * 128) + 128,
    UNIVERSAL_ODD: 3 * (48 * 144 + 48 * 48 + 2 * 48 * 100 + 2 * 48) + 48,
}

# Forward FLOPs per token by hand. LSTM: 2Vd embedding + L·(2·d·4d input + 2·d·4d recurrent) + 2dV head.
# Universal: the GPT's terms with L·reuse blocks applied (Hoffmann App F, per token, s = n_ctx).
HAND_FORWARD = {
    LSTM_2: 2 * 500 * 64 + 2 * (2 * 64 * 256 + 2 * 64 * 256) + 2 * 64 * 500,
    LSTM_1_UNTIED: 2 * 300 * 48 + (2 * 48 * 192 + 2 * 48 * 192) + 2 * 48 * 300,
    UNIVERSAL_4: 2 * 500 * 64
    + 8 * (6 * 64**2 + 2 * 32 * 64 + 3 * 4 * 32 + 2 * 32 * 64 + 2 * 64**2 + 4 * 64 * 256)
    + 2 * 64 * 500,
    UNIVERSAL_ODD: 2 * 300 * 48
    + 3 * (6 * 48**2 + 2 * 16 * 48 + 3 * 3 * 16 + 2 * 16 * 48 + 2 * 48**2 + 4 * 48 * 100)
    + 2 * 48 * 300,
}

SHAPES = list(HAND_PARAMS)
IDS = ["lstm2", "lstm1-untied", "universal4", "universal3-odd"]


def _module_groups(model: torch.nn.Module) -> dict[str, int]:
    """Group the real module's distinct parameters by name, independently of counting.py."""
    groups: dict[str, int] = {}
    for name, p in model.named_parameters():  # a tied head appears once, as wte
        group = (
            "embeddings" if name.startswith("wte") else
            "positions" if name.startswith("wpe") else
            "head" if name.startswith("head") else
            "lstm" if name.startswith("lstm.") else
            "attention" if ".attn." in name else
            "mlp" if ".mlp." in name else
            "norms"
        )
        groups[group] = groups.get(group, 0) + p.numel()
        if "bias" in name:
            groups["biases"] = groups.get("biases", 0) + p.numel()
    return groups


@pytest.mark.parametrize("cfg", SHAPES, ids=IDS)
def test_param_groups_match_hand_count_and_module(cfg: ModelConfig) -> None:
    assert param_groups(cfg) == HAND_PARAMS[cfg]
    model = build_model(cfg)
    expected = {k: v for k, v in HAND_PARAMS[cfg].items() if v}  # the module has no empty groups
    assert _module_groups(model) == expected
    assert count_params(cfg)["N_total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cfg", SHAPES, ids=IDS)
def test_conventions(cfg: ModelConfig) -> None:
    g, p = HAND_PARAMS[cfg], count_params(cfg)
    blocks = g["lstm"] if cfg.arch == "lstm" else g["attention"] + g["mlp"]
    assert p["N"] == blocks + g["norms"]
    assert p["N_total"] == p["N"] + g["embeddings"] + g["positions"] + g["head"]
    assert p["N_with_head"] == p["N"] + cfg.vocab_size * cfg.d_model
    assert p["N_with_reuse"] == HAND_N_WITH_REUSE.get(cfg, p["N"])  # only reuse makes them differ
    formula = 8 * cfg.n_layer * cfg.d_model**2 if cfg.arch == "lstm" else 2 * cfg.d_model * cfg.n_layer * (2 * cfg.d_model + cfg.ff_width)
    assert p["N_kaplan_formula"] == formula


@pytest.mark.parametrize("cfg", SHAPES, ids=IDS)
def test_training_flops_charge_every_application_and_the_recurrence(cfg: ModelConfig) -> None:
    p, f = count_params(cfg), flops_per_token(cfg)
    n = p["N_with_reuse"]
    extra = n - p["N"]
    assert f["6N"] == 6 * n
    assert f["6N_total"] == 6 * (p["N_total"] + extra)
    attention = 0 if cfg.arch == "lstm" else 2 * cfg.n_layer * cfg.reuse * cfg.n_ctx * cfg.d_model
    assert f["kaplan"] == 3 * (2 * n + attention)  # Kaplan Table 1; an LSTM attends over no context
    assert f["structural"] == 3 * HAND_FORWARD[cfg]
    assert build_model(cfg).flops_per_token() == f
    # throughput counts (PaLM App B): 6 x the matmul weights a token passes through, each application
    # counted, plus 12·L·T·d of full attention for model FLOPs, causal (T + 1)/2 keys for hardware FLOPs
    d, V, s, applied = cfg.d_model, cfg.vocab_size, cfg.n_ctx, cfg.n_layer * cfg.reuse
    if cfg.arch == "lstm":
        assert f["model"] == 6 * p["N_with_head"]  # no attention over the context
        assert f["hardware"] == 6 * (cfg.n_layer * 8 * d * d + V * d)
    else:
        assert f["model"] == 6 * (p["N_with_head"] + extra) + 12 * applied * s * d
        assert f["hardware"] == 6 * (applied * (4 * d * d + 2 * d * cfg.ff_width) + V * d) + 12 * applied * d * (s + 1) / 2


def test_reuse_costs_compute_but_no_parameters() -> None:
    shallow = ModelConfig(n_layer=2, d_model=64, n_head=4, n_ctx=32, vocab_size=500)
    deep = ModelConfig(n_layer=8, d_model=64, n_head=4, n_ctx=32, vocab_size=500)  # 2 blocks x 4 applications
    # the parameters of the shallow GPT, the applied parameters and the compute of the deep one
    assert count_params(UNIVERSAL_4)["N"] == count_params(shallow)["N"]
    assert count_params(UNIVERSAL_4)["N_with_reuse"] == count_params(deep)["N"]
    assert forward_flops_per_token(UNIVERSAL_4) == forward_flops_per_token(deep)
    assert flops_per_token(UNIVERSAL_4) == flops_per_token(deep) != flops_per_token(shallow)


def test_universal_matmul_flops_match_torch_flop_counter() -> None:
    torch.manual_seed(0)
    model = build_model(UNIVERSAL_4)
    B, T = 2, UNIVERSAL_4.n_ctx
    with FlopCounterMode(display=False) as counter:
        model(torch.randint(0, UNIVERSAL_4.vocab_size, (B, T)))
    terms = forward_flops_per_token(UNIVERSAL_4)
    linear = terms["qkv"] + terms["attn_proj"] + terms["mlp"] + terms["head"]
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert sum(n for op, n in counts.items() if "mm" in op) == linear * B * T


def _lstm_by_hand(model: LSTM, idx: torch.Tensor) -> torch.Tensor:
    """The LSTM equations step by step with the module's weights: i, f, g, o gates, c and h per token."""
    x = model.wte(idx)  # (B, T, C)
    B, T, C = x.shape
    for k in range(model.cfg.n_layer):
        w_ih, w_hh = getattr(model.lstm, f"weight_ih_l{k}"), getattr(model.lstm, f"weight_hh_l{k}")
        bias = getattr(model.lstm, f"bias_ih_l{k}", 0) + getattr(model.lstm, f"bias_hh_l{k}", 0)
        h, c, out = x.new_zeros(B, C), x.new_zeros(B, C), []
        for t in range(T):
            gates = x[:, t] @ w_ih.t() + h @ w_hh.t() + bias  # (B, 4C): input and recurrent matmuls
            i, f, g, o = gates.split(C, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        x = torch.stack(out, dim=1)  # (B, T, C)
    return model.head(model.ln_f(x))  # (B, T, V)


@pytest.mark.parametrize("cfg", [LSTM_2, LSTM_1_UNTIED], ids=["lstm2", "lstm1-untied"])
def test_lstm_is_the_textbook_lstm_and_its_matmuls_are_the_counted_ones(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).double().eval()
    assert isinstance(model, LSTM)
    for p in model.lstm.parameters():  # off the init, so every weight matters
        torch.nn.init.normal_(p, std=0.3)
    idx = torch.randint(0, cfg.vocab_size, (3, 10))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        expected = _lstm_by_hand(model, idx)
    torch.testing.assert_close(model(idx), expected, rtol=1e-10, atol=1e-10)
    terms = forward_flops_per_token(cfg)
    counted = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "mm" in str(op))
    assert counted == (terms["lstm_input"] + terms["lstm_recurrent"] + terms["head"]) * idx.numel()


def test_lstm_init_keeps_the_cell_and_ties_the_head() -> None:
    model = build_model(LSTM_2)
    d = LSTM_2.d_model
    assert model.head.weight is model.wte.weight
    b = model.lstm.bias_ih_l1.detach()
    assert b[d : 2 * d].eq(1).all() and b[:d].eq(0).all() and b[2 * d :].eq(0).all()  # forget gate at 1
    assert model.lstm.weight_hh_l0.std().item() == pytest.approx(LSTM_2.init_std, rel=0.1)


@pytest.mark.parametrize("cfg", [LSTM_2, UNIVERSAL_4], ids=["lstm", "universal"])
def test_causal_and_same_loss_path_as_cross_entropy(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).double().eval()
    a = torch.randint(0, cfg.vocab_size, (2, 12))
    b = a.clone()
    b[:, 8:] = (b[:, 8:] + 1) % cfg.vocab_size  # change only the future
    with torch.no_grad():
        la, lb = model(a), model(b)
        per_position = model.loss(a[:, :-1], a[:, 1:], reduction="none")
    torch.testing.assert_close(la[:, :8], lb[:, :8])  # positions before 8 cannot see it
    assert not torch.allclose(la[:, 8:], lb[:, 8:])
    reference = F.cross_entropy(model(a[:, :-1]).flatten(0, 1), a[:, 1:].flatten(), reduction="none")
    torch.testing.assert_close(per_position, reference.view(2, 11), rtol=0, atol=1e-12)


def test_universal_applies_each_block_reuse_times_in_a_row() -> None:
    """reuse=2 of blocks (A, B) is the GPT with blocks (A, A, B, B); reuse=1 is the GPT itself."""
    cfg = ModelConfig(arch="universal", reuse=2, n_layer=2, d_model=32, n_head=2, n_ctx=8, vocab_size=50)
    torch.manual_seed(0)
    universal = build_model(cfg).eval()
    assert isinstance(universal, UniversalTransformer)
    plain = GPT(ModelConfig(n_layer=4, d_model=32, n_head=2, n_ctx=8, vocab_size=50)).eval()
    state = {k: v for k, v in universal.state_dict().items() if not k.startswith("blocks.")}
    for i, source in enumerate((0, 0, 1, 1)):
        state.update({f"blocks.{i}.{k}": v for k, v in universal.blocks[source].state_dict().items()})
    plain.load_state_dict(state)
    idx = torch.randint(0, 50, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(universal(idx), plain(idx), rtol=0, atol=0)

    once = ModelConfig(arch="universal", n_layer=2, d_model=32, n_head=2, n_ctx=8, vocab_size=50)
    torch.manual_seed(1)
    a = build_model(once).eval()
    torch.manual_seed(1)
    b = GPT(ModelConfig(n_layer=2, d_model=32, n_head=2, n_ctx=8, vocab_size=50)).eval()
    with torch.no_grad():
        assert torch.equal(a(idx), b(idx))  # the same init and the same function


def test_universal_residual_init_scales_with_the_applied_depth() -> None:
    model = build_model(ModelConfig(arch="universal", reuse=8, n_layer=2, d_model=128, n_head=2, n_ctx=8, vocab_size=50))
    std = model.blocks[0].mlp.proj.weight.std().item()
    assert std == pytest.approx(0.02 / (2 * 2 * 8) ** 0.5, rel=0.1)  # GPT-2's 1/sqrt(2 n_layer), 16 blocks applied


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"arch": "rnn"}, "model.arch='rnn' is not a model family; choose one of gpt, lstm, universal"),
        ({"reuse": 0, "arch": "universal"}, "model.reuse must be at least 1"),
        ({"reuse": 2}, "model.reuse=2 applies only to model.arch='universal'"),
        ({"reuse": 4, "arch": "lstm"}, "set model.arch=universal or model.reuse=1"),
    ],
)
def test_bad_family_settings_say_what_to_change(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(**fields)


def test_a_gpt_run_keeps_its_identity() -> None:
    """arch and reuse at their defaults are left out of the hash: existing run directories still match."""
    from scalinglab.config import to_dict
    from scalinglab.train.config import RunConfig, identity_of

    cfg = RunConfig()
    old = to_dict(cfg)
    for key in ("name", "runtime"):
        old.pop(key)
    for key in ("arch", "reuse"):
        old["model"].pop(key)  # a config.json written before the families existed
    assert cfg.identity() == identity_of(old)
    lstm = RunConfig(model=ModelConfig(arch="lstm"))
    universal = RunConfig(model=ModelConfig(arch="universal"))
    assert len({cfg.identity(), lstm.identity(), universal.identity()}) == 3
    assert identity_of(to_dict(lstm)) == lstm.identity()
