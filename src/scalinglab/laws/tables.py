"""Reading runs tables (CSV, Parquet, JSONL, W&B CSV exports, collected studies) for fitting.

Columns are named ``N``, ``D``, ``C``, ``loss`` (docs/contracts.md); ``columns`` maps other names
(``{"loss": "val/loss", "N": "params"}``, or the CLI's ``loss=val/loss,N=params``). When only one
of ``D`` and ``C`` is given the other follows from C = 6·N·D (Kaplan §2.1), and the table's
``attrs["notes"]`` says so; :func:`fit_frame` checks a table against a law before fitting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import DataError, FitError
from scalinglab.laws.forms import Form

_READERS = {
    ".csv": pd.read_csv,
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".ndjson": lambda p: pd.read_json(p, lines=True),
    ".json": pd.read_json,
}


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"loss=val/loss,N=params"`` -> ``{"loss": "val/loss", "N": "params"}`` (ours = theirs)."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    mapping = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise DataError(f"--columns item '{item}' is not NAME=COLUMN; write e.g. --columns loss=val/loss,N=params.")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _table_path(path: Path) -> Path:
    if path.is_dir():  # a collected study: its runs table
        for name in ("runs.parquet", "runs.csv", "runs.jsonl"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"'{path}' has no runs.parquet or runs.csv; run `scalinglab collect {path}` first.")
    if not path.is_file():
        raise DataError(f"runs table '{path}' not found.")
    return path


def read_runs_table(path: str | Path, columns: str | Mapping[str, str] | None = None) -> pd.DataFrame:
    """Load a runs table, rename mapped columns, keep finished runs, and derive D or C from 6ND.

    Unfinished runs (``status`` not ``done`` in a collected table, W&B ``State`` not ``finished``)
    are dropped and counted in ``attrs["notes"]``; ``attrs["convention"]`` says which N/C
    convention the table uses.
    """
    path = _table_path(Path(path))
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"cannot read '{path.name}': use a .csv, .parquet or .jsonl runs table.")
    try:
        df = reader(path)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read runs table '{path}': {e}") from None
    notes: list[str] = []
    mapping = parse_columns(columns)
    missing = [theirs for theirs in mapping.values() if theirs not in df.columns]
    if missing:
        raise DataError(
            f"--columns names {', '.join(repr(m) for m in missing)}, not in '{path.name}'; "
            f"columns found: {', '.join(map(str, df.columns))}."
        )
    df = df.drop(columns=[ours for ours, theirs in mapping.items() if ours in df.columns and ours != theirs])
    df = df.rename(columns={theirs: ours for ours, theirs in mapping.items()})
    for col, ok in (("status", "done"), ("State", "finished")):  # collected study / W&B export
        if col in df.columns:
            keep = df[col].astype(str) == ok
            if not keep.all():
                notes.append(f"dropped {int((~keep).sum())} run(s) whose {col} is not '{ok}'")
            df = df[keep]
    for col in ("N", "D", "C", "loss"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "D" not in df.columns and {"N", "C"} <= set(df.columns):
        df["D"] = df["C"] / (6.0 * df["N"])
        notes.append("D = C/(6N) (tokens derived from compute)")
    if "C" not in df.columns and {"N", "D"} <= set(df.columns):
        df["C"] = 6.0 * df["N"] * df["D"]
        notes.append("C = 6ND (compute derived from tokens)")
    df = df.reset_index(drop=True)
    df.attrs["source"] = str(path)
    df.attrs["notes"] = notes
    if "N_total" in df.columns:  # a table written by `scalinglab collect`
        df.attrs["convention"] = "N = non-embedding parameters (Kaplan); C = 6ND; N_total and C_* columns hold the others"
    else:
        df.attrs["convention"] = f"N, D, C as given in {path.name}" + (f"; {'; '.join(notes)}" if notes else "")
    return df


def drop_highest(df: pd.DataFrame, k: int, column: str = "loss") -> pd.DataFrame:
    """The table without its ``k`` highest-``column`` rows (Epoch drop Chinchilla's 5 worst runs)."""
    if k <= 0:
        return df
    if column not in df.columns:
        raise DataError(f"cannot drop the highest '{column}': the table has no such column.")
    out = df.drop(index=df[column].nlargest(k).index)
    out.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), f"dropped the {k} highest-{column} rows"]}
    return out


def skip_early(df: pd.DataFrame, run_column: str, fraction: float, tokens: str = "D") -> pd.DataFrame:
    """A checkpoint table without each run's first ``fraction`` of tokens (its warmup transient; spec §6 item 14)."""
    if run_column not in df.columns:
        raise DataError(f"--run-column '{run_column}' not in the table; columns found: {', '.join(map(str, df.columns))}.")
    if not 0 <= fraction < 1:
        raise DataError(f"--skip-fraction {fraction}; give a fraction in [0, 1), e.g. 0.1.")
    if not fraction:
        return df
    if tokens not in df.columns:
        raise DataError(f"--skip-fraction needs a '{tokens}' column (tokens seen at each checkpoint); map it with --columns.")
    seen = pd.to_numeric(df[tokens], errors="coerce")
    keep = seen >= fraction * seen.groupby(df[run_column]).transform("max")
    out = df[keep]
    out.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), f"dropped {int((~keep).sum())} checkpoint(s) below {fraction:g} of their run's tokens"]}
    return out


def run_weights(labels: pd.Series, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each run's rows share weight 1 (a run with many checkpoints counts like one with few); sets ``frame["weight"]``.

    Returns each row's run number ``(n,)`` and a mask of each run's last row (most tokens, ``D`` when present).
    """
    groups = pd.factorize(labels.astype(str))[0]
    counts = np.bincount(groups)
    frame["weight"] = frame["weight"].to_numpy() / counts[groups]
    order = frame["D"].to_numpy() if "D" in frame.columns else np.arange(len(frame), dtype=float)
    last = np.zeros(len(frame), bool)
    for g in range(counts.size):
        rows = np.flatnonzero(groups == g)
        last[rows[np.argmax(order[rows])]] = True
    return groups, last


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    rows = [str(i) for i in index[mask][:10]]
    return ", ".join(rows) + (f" (and {int(mask.sum()) - 10} more)" if mask.sum() > 10 else "")


def fit_frame(
    data: pd.DataFrame | Mapping[str, Any],
    form: Form,
    weights: str | Sequence[float] | None = None,
    extra: Sequence[str] = (),
    to_fit: bool = True,
) -> pd.DataFrame:
    """The columns ``form`` needs (inputs, target, ``extra``, ``weight``), checked: present, positive, enough points.

    ``to_fit=False`` (a table only predicted, e.g. a backtest's held-out runs) skips the checks that
    only a fit needs: more points than parameters and several values of each input.

    ``weights`` is a column name or one value per row; rows keep their original index so errors
    and outlier flags name them.
    """
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    needed = list(dict.fromkeys([*form.inputs, form.target, *extra]))
    missing = [c for c in needed if c not in df.columns]
    if missing:
        fix = ", ".join(f"{m}=<your column>" for m in missing)
        raise DataError(
            f"the runs table has no column {', '.join(repr(m) for m in missing)} (law '{form.name}' needs "
            f"{', '.join(needed)}); columns found: {', '.join(map(str, df.columns))}. Map yours with --columns {fix}."
        )
    out = df[needed].apply(pd.to_numeric, errors="coerce").astype(float)
    if weights is None:
        out["weight"] = 1.0
    elif isinstance(weights, str):
        if weights not in df.columns:
            raise DataError(f"weights column '{weights}' not found; columns found: {', '.join(map(str, df.columns))}.")
        out["weight"] = pd.to_numeric(df[weights], errors="coerce")
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(df),):
            raise DataError(f"weights has {w.size} values for {len(df)} rows; give one weight per row.")
        out["weight"] = w
    for col in [*needed, "weight"]:
        values = out[col].to_numpy()
        bad = ~np.isfinite(values) | (values < 0 if col == "weight" else values <= 0)
        if bad.any():
            kind = "negative" if col == "weight" else "non-positive"
            raise DataError(
                f"column '{col}' has {kind} or missing values in row(s) {_rows(bad, out.index)}; "
                "fix or remove those rows."
            )
    n_used = int((out["weight"] > 0).sum())
    if to_fit and n_used < len(form.params) + 1:
        raise FitError(
            f"law '{form.name}' has {len(form.params)} parameters but the table has {n_used} usable point(s); "
            f"give at least {len(form.params) + 1} runs."
        )
    for col in form.inputs if to_fit else ():
        if out[col].nunique() == 1:
            raise FitError(
                f"all points have the same {col} = {out[col].iloc[0]:g}; law '{form.name}' needs runs at "
                f"several values of {col}."
            )
    out.attrs = dict(df.attrs)
    return out
