"""Damaged files on disk: atomic writes, checkpoints garbled or truncated at several offsets, the token cache."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from scalinglab import atomic
from scalinglab.data import DataConfig, prepare
from scalinglab.errors import DamagedFile, DiskError, TrainingError
from scalinglab.train import checkpoint
from scalinglab.train.rundir import read_metrics, read_status


def test_json_is_strict_and_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path) -> None:
    path = tmp_path / "x.json"
    atomic.write_json(path, {"a": math.nan, "b": [1.0, math.inf], "c": np.float32(2.5), "d": (1, 2)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": 2.5, "d": [1, 2]}

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        atomic.write_json(path, {"a": Unserialisable()})
    assert json.loads(path.read_text())["c"] == 2.5  # the old content, whole
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left


def test_a_damaged_json_file_is_named(tmp_path) -> None:
    (tmp_path / "status.json").write_text('{"state": "runn')
    with pytest.raises(DamagedFile, match=r"status.json is not valid JSON.*only its run is affected"):
        read_status(tmp_path)
    (tmp_path / "status.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(DamagedFile, match="status.json"):
        read_status(tmp_path)
    (tmp_path / "status.json").write_text('{"state": "exploded"}')
    with pytest.raises(DamagedFile, match="holds no run state"):
        read_status(tmp_path)


def test_corrupt_metrics_name_the_line_and_a_fix_that_works(tmp_path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(DamagedFile, match=r"metrics.jsonl:2 is not JSON.*delete .*metrics.jsonl and the run's checkpoints"):
        read_metrics(tmp_path)


def test_os_errors_are_one_line_with_path_and_errno(tmp_path) -> None:
    target = tmp_path / "ro" / "x.json"
    with pytest.raises(DiskError, match=r"cannot write .*ro.*\[ENOENT\]"):
        atomic.write_json(target, {})


def test_an_out_path_inside_a_file_is_one_line_from_any_command(tmp_path, capsys) -> None:
    """fit --out (an atomic write) and report --out (its folders, made before any analysis; before, a traceback
    from mkdir after the analyses): rc 2, one line naming the path, errno and fix; a study path that is a file too."""
    from scalinglab.cli import main

    (tmp_path / "a_file").write_text("")
    table = tmp_path / "runs.csv"
    n = np.geomspace(1e6, 1e9, 8)
    table.write_text("N,loss\n" + "".join(f"{v:g},{(8.8e13 / v) ** 0.076:.6f}\n" for v in n))
    assert main(["fit", str(table), "--law", "kaplan_n", "--bootstrap", "0", "--out", str(tmp_path / "a_file" / "fit.json")]) == 2
    (tmp_path / "study").mkdir()
    assert main(["report", str(tmp_path / "study"), "--out", str(tmp_path / "a_file" / "r")]) == 2
    assert main(["collect", str(tmp_path / "a_file")]) == 2  # a study "directory" that is a file
    lines = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert len(lines) == 3 and all("[ENOTDIR]" in x and "a part of that path is a file, not a folder" in x for x in lines[:2])
    assert lines[0].startswith("scalinglab fit: error: cannot write") and str(tmp_path / "a_file") in lines[0]
    assert lines[1].startswith(f"scalinglab report: error: cannot write {tmp_path / 'a_file' / 'r'}")
    assert lines[2].startswith("scalinglab collect: error:")


def _state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    model = {"w": torch.randn(64, 64, generator=g), "b": torch.randn(64, generator=g)}
    return {"model": model, "step": seed, "sampler": {"pos": seed}}


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.37, 0.5, 0.81, 0.999])
@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_older_intact_one(tmp_path, fraction, damage) -> None:
    for step in (10, 20):
        checkpoint.save_checkpoint(tmp_path, step, _state(step), keep_last=2)
    state_file = tmp_path / "checkpoints" / "step_20" / "state.pt"
    data = bytearray(state_file.read_bytes())
    at = int(fraction * (len(data) - 1))
    if damage == "garble":
        data[at] ^= 0x5A  # one flipped byte anywhere: header, pickle, tensor payload
    else:
        data = data[:at]
    state_file.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"skipping checkpoint .*step_20 is damaged: state.pt (does not match|has \d+ bytes)"):
        step, state = checkpoint.load_latest(tmp_path)
    assert step == 10 and torch.equal(state["model"]["w"], _state(10)["model"]["w"])


def test_no_intact_checkpoint_stops_with_one_line_naming_the_directory(tmp_path) -> None:
    for step in (10, 20):
        checkpoint.save_checkpoint(tmp_path, step, _state(step), keep_last=2)
        (tmp_path / "checkpoints" / f"step_{step}" / "state.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with warnings.catch_warnings(), pytest.raises(TrainingError) as e:
        warnings.simplefilter("ignore")
        checkpoint.load_latest(tmp_path)
    message = str(e.value)
    assert "\n" not in message and f"{tmp_path / 'checkpoints'}" in message and "step_20, step_10" in message
    assert "delete" in message


@pytest.mark.parametrize("damage", ["truncate", "out_of_range", "garble"])
def test_a_damaged_token_cache_entry_is_rebuilt(tmp_path, small_corpus, damage) -> None:
    cfg = DataConfig(corpus=str(small_corpus), tokenizer="byte")
    first = prepare(cfg, cache_dir=tmp_path, progress=False)
    want = np.array(first.splits["train"].tokens)
    tokens = first.splits["train"].path / "tokens.bin"
    data = bytearray(tokens.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "out_of_range":
        data[10:12] = (60_000).to_bytes(2, "little")  # an id no byte tokenizer has
    else:
        data[len(data) // 2] ^= 0x01  # in range: only the checksum sees it
    tokens.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"token cache entry .* is damaged .*; rebuilding it"):
        again = prepare(cfg, cache_dir=tmp_path, progress=False)
    assert np.array_equal(np.array(again.splits["train"].tokens), want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # intact now: read without a word
        prepare(cfg, cache_dir=tmp_path, progress=False)


@pytest.fixture
def small_corpus(tmp_path):
    docs = [f"document {i}: " + "the quick brown fox jumps over the lazy dog. " * (5 + i % 7) for i in range(200)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n<|endoftext|>\n".join(docs))
    return path
