"""Reading runs tables: formats, column mapping, derived D and C, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError, FitError
from scalinglab.laws import tables
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form
from scalinglab.laws.tables import Table, drop_highest, fit_frame, parse_columns, read_runs_table, read_table


def runs(n: int = 8) -> pd.DataFrame:
    N = np.logspace(6, 9, n)
    D = 20 * N
    return pd.DataFrame({"N": N, "D": D, "loss": 2.0 + 300 / N**0.3 + 400 / D**0.3})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    df = runs()
    path = tmp_path / f"runs{suffix}"
    {".csv": lambda: df.to_csv(path, index=False), ".parquet": lambda: df.to_parquet(path),
     ".jsonl": lambda: df.to_json(path, orient="records", lines=True)}[suffix]()  # fmt: skip
    table = read_runs_table(path)
    np.testing.assert_allclose(table["loss"], df["loss"], rtol=1e-9)  # to_json keeps 10 digits
    np.testing.assert_allclose(table["C"], 6 * df["N"] * df["D"], rtol=1e-9)  # C = 6ND derived
    assert "C = 6ND" in table.attrs["convention"]


def test_wandb_export_with_column_mapping(tmp_path: Path) -> None:
    df = runs()
    export = pd.DataFrame({"Name": [f"run-{i}" for i in range(len(df))], "State": ["finished"] * len(df),
                           "params": df["N"], "val/loss": df["loss"], "flops": 6 * df["N"] * df["D"]})  # fmt: skip
    export.loc[2, "State"] = "crashed"
    path = tmp_path / "wandb_export.csv"
    export.to_csv(path, index=False)
    table = read_runs_table(path, "loss=val/loss, N=params, C=flops")
    assert len(table) == len(df) - 1  # the crashed run is dropped, and said so
    assert any("State" in note for note in table.attrs["notes"])
    np.testing.assert_allclose(table["D"], df["D"].drop(index=2), rtol=1e-12)  # D = C/(6N)
    with pytest.raises(DataError, match=r"'val_loss'.*columns found: Name, State, params"):
        read_runs_table(path, {"loss": "val_loss"})


def test_collected_study_directory(tmp_path: Path) -> None:
    df = runs().assign(status="done", N_total=lambda d: d["N"] * 1.2)
    df.loc[0, "status"] = "failed"
    df.to_parquet(tmp_path / "runs.parquet")
    table = read_runs_table(tmp_path)
    assert len(table) == len(df) - 1
    assert "non-embedding" in table.attrs["convention"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="scalinglab collect"):
        read_runs_table(tmp_path / "empty")


def test_missing_column_names_the_fix() -> None:
    df = runs().rename(columns={"loss": "val_loss"})
    with pytest.raises(DataError, match=r"no column 'loss'.*columns found: N, D, val_loss.*--columns loss="):
        fit_frame(df, get_form("chinchilla"))


def test_bad_values_name_the_rows() -> None:
    df = runs()
    df.loc[2, "loss"] = np.nan
    df.loc[5, "D"] = -1.0
    with pytest.raises(DataError, match=r"column 'D' has non-positive or missing values in row\(s\) 5"):
        fit_frame(df, get_form("chinchilla"))
    with pytest.raises(DataError, match=r"column 'loss'.*row\(s\) 2"):
        fit_frame(df.drop(index=5), get_form("chinchilla"))


def test_too_few_points_and_one_size() -> None:
    with pytest.raises(FitError, match="5 parameters but the table has 4"):
        fit_frame(runs(4), get_form("chinchilla"))
    one_size = runs().assign(N=1e8)
    with pytest.raises(FitError, match="same N"):
        fit_frame(one_size, get_form("chinchilla"))


def test_parse_columns_and_drop_highest() -> None:
    assert parse_columns("loss=val/loss,N = params") == {"loss": "val/loss", "N": "params"}
    with pytest.raises(DataError, match="NAME=COLUMN"):
        parse_columns("loss")
    df = runs()
    kept = drop_highest(df, 3)
    assert len(kept) == len(df) - 3 and kept["loss"].max() < df["loss"].nlargest(3).min()
    with pytest.raises(DataError, match="0 or more"):  # a negative count was taken as 0
        drop_highest(df, -3)
    with pytest.raises(DataError, match=f"would drop every one of the table's {len(df)} runs"):
        drop_highest(df, len(df))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_runs_table(tmp_path / "nope.csv")
    (tmp_path / "runs.txt").write_text("x")
    with pytest.raises(DataError, match="csv"):
        read_runs_table(tmp_path / "runs.txt")


def test_csv_reader_types_columns_as_pandas_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CSV reader is numpy-only (fitting a CSV imports no pandas); what it reads must be what pandas reads.
    path = tmp_path / "mixed.csv"
    path.write_text(
        "N,D,loss,,steps,State,ok,D\n"
        '1e8,2.0000000000000004e9,3.1,x,100,finished,True,1\n'
        '3e8,6e9,NA,y,200,"crashed, oom",False,2\n'
        "\n"
        "1e9,,2.7,,300,,True,3\n"
    )
    ours = read_table(path).to_frame()
    theirs = pd.read_csv(path)
    theirs["C"] = 6.0 * theirs["N"] * theirs["D"]
    pd.testing.assert_frame_equal(ours, theirs.iloc[[0], :].reset_index(drop=True), check_dtype=False)
    raw = read_table(path)  # the unfinished runs are dropped; the raw columns typed as pandas types them
    assert list(raw.columns) == ["N", "D", "loss", "Unnamed: 3", "steps", "State", "ok", "D.1", "C"]
    assert raw["steps"].dtype == np.int64 and raw["ok"].dtype == bool and raw["N"].dtype == np.float64
    monkeypatch.setattr(tables, "CSV_WITHOUT_PANDAS_BYTES", 0)  # a large CSV goes to pandas' parser: the same table
    pd.testing.assert_frame_equal(read_table(path).to_frame(), ours)


def test_a_table_and_its_dataframe_fit_identically(tmp_path: Path) -> None:
    df = runs(12).assign(run=[f"r{i // 3}" for i in range(12)])
    df.loc[4, "loss"] *= 1.03
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    plain, frame = drop_highest(read_table(path), 1), drop_highest(read_runs_table(path), 1)
    assert isinstance(plain, Table) and list(plain.index) == list(frame.index)  # the same row dropped, labels kept
    options = {"runs": "run", "bootstrap": 8, "outliers": "downweight"}
    a, b = fit_law("chinchilla", plain, **options), fit_law("chinchilla", frame, **options)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())  # every number, to the last digit
    assert a.bootstrap.shape == (len(a.samples), len(a.params) + len(a.derived)) and a.data.index.equals(frame.index)
