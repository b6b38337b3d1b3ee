"""`scalinglab data prepare` and `scalinglab data info` from the command line."""

from __future__ import annotations

import json

from scalinglab.cli import main


def test_prepare_then_info_as_json(tmp_path, small_corpus, capsys):
    args = ["data", "prepare", "--corpus", str(small_corpus), "--tokenizer", "byte", "--cache-dir", str(tmp_path)]
    assert main([*args, "--eval", f"again={small_corpus}:test", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vocab_size"] == 256 and set(summary["splits"]) == {"train", "valid", "again"}
    assert summary["splits"]["train"]["bytes_per_token"] < 1  # bytes plus one end-of-document token each

    assert main(["data", "info", "--cache-dir", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (tok,) = info["tokenizers"]
    assert sorted(s["split"] for s in tok["splits"].values()) == ["test", "train", "valid"]

    assert main(["data", "info", "--cache-dir", str(tmp_path)]) == 0
    assert "bytes/token" in capsys.readouterr().out


def test_errors_are_one_line_naming_the_fix(tmp_path, capsys):
    code = main(["data", "prepare", "--corpus", str(tmp_path / "missing.txt"), "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "check the path" in err
    assert main(["data", "prepare", "--vocab-size", "100", "--cache-dir", str(tmp_path)]) == 2
    assert "vocab_size must be at least 257" in capsys.readouterr().err
