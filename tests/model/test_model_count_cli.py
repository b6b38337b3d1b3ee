"""``scalinglab count``: JSON and table output, TOML files, overrides and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalinglab.cli import main
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params, flops_per_token

SHAPE = ["model.n_layer=4", "model.d_model=256", "model.n_head=4", "model.n_ctx=256", "model.vocab_size=4096"]


def test_json_output_has_every_convention(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["count", *SHAPE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = ModelConfig(n_layer=4, d_model=256, n_head=4, n_ctx=256, vocab_size=4096)
    p = count_params(cfg)
    assert {k: out[k] for k in ("N", "N_total", "N_with_head", "groups")} == {
        k: p[k] for k in ("N", "N_total", "N_with_head", "groups")
    }
    assert out["N"] == 4 * (256 * 768 + 768 + 256 * 256 + 256 + 2 * 256 * 1024 + 1024 + 256) + 9 * 512
    assert out["flops_per_token"] == flops_per_token(cfg)
    assert set(out["flops_per_token"]) == {"6N", "6N_total", "kaplan", "structural", "model", "hardware"}


def test_table_and_compute_for_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["count", *SHAPE, "--tokens", "1e9"]) == 0
    out = capsys.readouterr().out
    assert "3,159,552" in out  # N for this shape (also checked by hand above)
    assert "structural" in out and "PF-days" in out


def test_toml_file_model_table_with_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[model]\nn_layer = 3\nd_model = 192\nn_head = 3\n[optim]\nlr = 0.001\n')
    assert main(["count", "--config", str(path), "model.tie_embeddings=false", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["n_layer"] == 3 and out["model"]["tie_embeddings"] is False
    assert out["groups"]["head"] == 4096 * 192
    assert main(["count", str(path), "--json"]) == 0  # the positional form, as `scalinglab train` takes it
    assert json.loads(capsys.readouterr().out)["groups"]["head"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.n_layr=4"], "unknown config key 'model.n_layr'. Did you mean 'n_layer'?"),
        (["model.d_model=100", "model.n_head=3"], "model.d_model=100 is not divisible by model.n_head=3"),
        (["optim.lr=0.1"], "is not a model setting; write model.<key>=value"),
        (["missing.toml"], "config file 'missing.toml' does not exist"),
        (["--tokens", "-1"], "--tokens must be positive"),
    ],
)
def test_bad_input_is_one_line_error(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["count", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_every_family_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    lstm = ["model.arch=lstm", "model.n_layer=2", "model.d_model=256", "model.vocab_size=4096"]
    assert main(["count", *lstm, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["arch"] == "lstm"
    assert out["N"] == 2 * (2 * 1024 * 256 + 2 * 1024) + 2 * 256  # gates W_ih, W_hh, b_ih, b_hh; final norm
    assert out["flops_per_token"]["structural"] == 3 * (2 * 4096 * 256 * 2 + 2 * 2 * 256 * 1024 * 2)
    assert main(["count", *lstm]) == 0
    table = capsys.readouterr().out
    assert table.startswith("LSTM n_layer=2") and "1,053,184" in table and "lstm " in table

    universal = ["model.arch=universal", "model.reuse=4", "model.n_layer=2", "model.d_model=256"]
    assert main(["count", *universal]) == 0
    table = capsys.readouterr().out
    block = 256 * 768 + 768 + 256 * 256 + 256 + 2 * 256 * 1024 + 1024 + 256 + 4 * 256  # one block and its 2 norms
    assert f"{2 * block + 512:,}" in table and f"{4 * 2 * block + 512:,}" in table  # N, then N_with_reuse
    assert "N_with_reuse" in table and "reuse=4" in table


def test_reuse_without_the_universal_family_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["count", "model.arch=lstm", "model.reuse=2"]) == 2
    err = capsys.readouterr().err
    assert "model.reuse=2 applies only to model.arch='universal'" in err and err.count("\n") == 1
