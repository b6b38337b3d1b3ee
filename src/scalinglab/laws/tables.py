"""Reading runs tables (CSV, Parquet, JSONL, W&B CSV exports, collected studies) for fitting.

Columns are named ``N``, ``D``, ``C``, ``loss`` (docs/contracts.md); ``columns`` maps other names
(``{"loss": "val/loss", "N": "params"}``, or the CLI's ``loss=val/loss,N=params``). When only one
of ``D`` and ``C`` is given the other follows from C = 6·N·D (Kaplan §2.1), and the table's
``attrs["notes"]`` says so; :func:`fit_frame` checks a table against a law before fitting.

A CSV is read into a :class:`Table` of numpy columns, so fitting one never imports pandas (three
quarters of a second, more than the fit); other formats, and CSVs past :data:`CSV_WITHOUT_PANDAS_BYTES`,
are read with pandas and enter at the edge (:meth:`Table.of`); :func:`read_runs_table` gives a DataFrame.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.diagnostics import warning
from scalinglab.laws.forms import Form

if TYPE_CHECKING:
    import pandas as pd

# pandas' default missing-value strings (read_csv's na_values), so both readers see the same gaps.
_NA = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
     "NULL", "NaN", "None", "n/a", "nan", "null"]
)  # fmt: skip
_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}

CSV_WITHOUT_PANDAS_BYTES = 2 << 20
"""A CSV up to this size (about 35,000 rows of four numbers) is read without pandas; a larger one by pandas'
C parser, which past it is faster than its own import (0.75 s): 240,000 rows took 6.4 s here against 0.3 s."""


def _is_frame(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame (without importing pandas: none exists unless it is loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


class Table:
    """Equal-length numpy columns with row labels and ``attrs``: a runs table that fitting reads without pandas.

    It reads like the DataFrame it stands for where the fitter needs one (``t["N"]`` is an array,
    ``"N" in t.columns``, ``len(t)`` rows, ``t.index`` labels, ``t.attrs``); :meth:`of` takes a
    DataFrame or a mapping of columns at the edge, and :meth:`to_frame` gives a DataFrame back.
    """

    def __init__(self, columns: Mapping[str, Any], index: Sequence[Any] | np.ndarray | None = None, attrs: Mapping[str, Any] | None = None) -> None:
        arrays = {str(k): np.asarray(v) for k, v in columns.items()}
        lengths = {a.size for a in arrays.values() if a.ndim}
        n = len(index) if index is not None else (lengths.pop() if len(lengths) == 1 else 0)
        if lengths - {n}:
            sizes = ", ".join(f"{k} {v.size}" for k, v in arrays.items())
            raise DataError(f"the table's columns have different lengths ({sizes}); give one value per row in each.")
        self._columns = {k: np.broadcast_to(v, (n,)).copy() if v.ndim == 0 else v.reshape(-1) for k, v in arrays.items()}
        self.index = np.arange(n) if index is None else np.asarray(index)
        self.attrs: dict[str, Any] = dict(attrs or {})

    @classmethod
    def of(cls, data: Table | pd.DataFrame | Mapping[str, Any]) -> Table:
        """``data`` as a Table: itself, a DataFrame's columns, index and attrs, or a mapping of columns."""
        if isinstance(data, Table):
            return data
        if _is_frame(data):
            return cls({str(c): data[c].to_numpy() for c in data.columns}, data.index.to_numpy(), data.attrs)
        return cls(dict(data))

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def keys(self) -> list[str]:
        return self.columns

    def __len__(self) -> int:
        return self.index.size

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __setitem__(self, name: str, values: Any) -> None:
        values = np.asarray(values)
        self._columns[name] = np.broadcast_to(values, (len(self),)).copy() if values.ndim == 0 else values.reshape(-1)

    def take(self, rows: np.ndarray) -> Table:
        """The rows a boolean mask or positions pick, labels and attrs kept."""
        return Table({k: v[rows] for k, v in self._columns.items()}, self.index[rows], self.attrs)

    def to_frame(self) -> pd.DataFrame:
        """The same table as a pandas DataFrame (imports pandas)."""
        import pandas as pd

        index = None if np.array_equal(self.index, np.arange(len(self))) else pd.Index(self.index)
        frame = pd.DataFrame(self._columns, index=index)
        frame.attrs = dict(self.attrs)
        return frame


def _take(data: Any, keep: np.ndarray) -> Any:
    """The rows of a Table or DataFrame where ``keep`` holds (a boolean array), as the same kind of table."""
    return data.take(keep) if isinstance(data, Table) else data[keep]


def numeric(values: Any) -> np.ndarray:
    """A column as numbers, anything unreadable as NaN (pandas' ``to_numeric(errors="coerce")``: integers stay integers)."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return values
    out = np.full(values.size, np.nan)
    for i, v in enumerate(values.reshape(-1)):
        with contextlib.suppress(TypeError, ValueError):
            out[i] = float(v)
    return out


def _parse_column(cells: list[str]) -> np.ndarray:
    """A CSV column typed as pandas' reader types it: integers, booleans, floats (gaps as NaN) or strings."""
    present = [c for c in cells if c not in _NA]
    if not present:
        return np.full(len(cells), np.nan) if cells else np.array([], dtype=object)
    if len(present) == len(cells):
        if all(c in _BOOLS for c in cells):
            return np.array([_BOOLS[c] for c in cells])
        try:
            if not any("_" in c for c in cells):  # Python reads 1_000 as a number; pandas does not
                return np.array([int(c) for c in cells], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
    try:
        if not any("_" in c for c in present):
            return np.array([np.nan if c in _NA else float(c) for c in cells])
    except ValueError:
        pass
    return np.array([np.nan if c in _NA else c for c in cells], dtype=object)


def _read_csv(path: Path, sep: str, what: str = "runs table") -> Table:
    """A CSV or TSV file as a Table, typed like pandas' reader would (one header row, blank lines skipped)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f, delimiter=sep) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {what} '{path}': {e}") from None
    if not rows:
        raise DataError(f"cannot read {what} '{path}': No columns to parse from file")
    header, body = rows[0], rows[1:]
    names: list[str] = []
    for i, name in enumerate(header):  # pandas' names for blank and repeated headers
        name = name or f"Unnamed: {i}"
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    for line, row in enumerate(body, start=2):
        if len(row) > len(names):
            raise DataError(
                f"cannot read {what} '{path}': line {line} has {len(row)} fields, the header {len(names)}; fix that line."
            )
    cells = [[row[i] if i < len(row) else "" for row in body] for i in range(len(names))]
    return Table({name: _parse_column(col) for name, col in zip(names, cells)})


def _read_with_pandas(path: Path, what: str = "runs table") -> Table:
    """A Parquet, JSON(L) or large CSV table, read with pandas and taken in at the edge."""
    import pandas as pd

    reader, options = _PANDAS_READERS.get(path.suffix.lower(), _PANDAS_READERS[".csv"])
    try:
        return Table.of(getattr(pd, reader)(path, **options))
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read {what} '{path}': {e}") from None


_SEPARATORS = {".csv": ",", ".tsv": "\t"}
_PANDAS_READERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("read_csv", {}),
    ".tsv": ("read_csv", {"sep": "\t"}),
    ".parquet": ("read_parquet", {}),
    ".pq": ("read_parquet", {}),
    ".jsonl": ("read_json", {"lines": True}),
    ".ndjson": ("read_json", {"lines": True}),
    ".json": ("read_json", {}),
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


def column_renames(spec: str | Mapping[str, str] | None, found: Sequence[str], source: str) -> tuple[dict[str, str], set[str]]:
    """``--columns`` against a table's columns ``found``: ({theirs: ours} to rename, our names to drop first, where
    the table has a column of that name besides the one mapped onto it); a named column it lacks is an error."""
    mapping = parse_columns(spec)
    missing = [theirs for theirs in mapping.values() if theirs not in found]
    if missing:
        raise DataError(
            f"--columns names {', '.join(repr(m) for m in missing)}, not in '{source}'; "
            f"columns found: {', '.join(map(str, found))}."
        )
    dropped = {ours for ours, theirs in mapping.items() if ours in found and ours != theirs}
    return {theirs: ours for ours, theirs in mapping.items()}, dropped


def _table_path(path: Path) -> Path:
    if path.is_dir():  # a collected study: its runs table
        for name in ("runs.parquet", "runs.csv", "runs.jsonl"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"'{path}' has no runs.parquet or runs.csv; run `scalinglab collect {path}` first.")
    if not path.is_file():
        raise DataError(f"runs table '{path}' not found.")
    return path


def read_rows(path: Path, what: str = "runs table") -> Table:
    """A table file's rows as read, untyped beyond pandas' typing: a CSV or TSV up to
    :data:`CSV_WITHOUT_PANDAS_BYTES` without pandas, anything else with it (a file of another suffix as a CSV)."""
    sep = _SEPARATORS.get(path.suffix.lower(), "," if path.suffix.lower() not in _PANDAS_READERS else None)
    if sep is not None and path.stat().st_size <= CSV_WITHOUT_PANDAS_BYTES:
        return _read_csv(path, sep, what)
    return _read_with_pandas(path, what)


def blank(values: np.ndarray) -> np.ndarray:
    """Where a column read from a file is empty: NaN (a missing cell), None or a blank string."""
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" for v in np.asarray(values)], dtype=bool)


def non_numbers(values: np.ndarray) -> np.ndarray:
    """Where a column read from a file holds a value that is neither a number nor empty (``numeric`` makes both NaN)."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return np.zeros(values.size, dtype=bool)
    return np.isnan(numeric(values)) & ~blank(values)


def read_table(path: str | Path, columns: str | Mapping[str, str] | None = None) -> Table:
    """Load a runs table, rename mapped columns, keep finished runs, and derive D or C from 6ND.

    Unfinished runs (``status`` not ``done`` in a collected table, W&B ``State`` not ``finished``)
    are dropped and counted in ``attrs["notes"]``; ``attrs["convention"]`` says which N/C
    convention the table uses.
    """
    path = _table_path(Path(path))
    if path.suffix.lower() not in _PANDAS_READERS:
        raise DataError(f"cannot read '{path.name}': use a .csv, .parquet or .jsonl runs table.")
    df = read_rows(path)
    notes: list[str] = []
    renames, dropped = column_renames(columns, list(df.columns), path.name)
    df = Table({renames.get(c, c): df[c] for c in df.columns if c not in dropped}, attrs=df.attrs)
    for col, ok in (("status", "done"), ("State", "finished")):  # collected study / W&B export
        if col in df.columns:
            keep = np.array([str(v) == ok for v in df[col]], dtype=bool)
            if not keep.all():
                notes.append(f"dropped {int((~keep).sum())} run(s) whose {col} is not '{ok}'")
            df = df.take(keep)
    if not len(df):
        why = f" left ({'; '.join(notes)}); let them finish (scalinglab study status)" if notes else "; add a row per run"
        raise DataError(f"the runs table '{path}' has no runs{why}.")
    for col in ("N", "D", "C", "loss"):
        if col in df.columns:
            df[col] = numeric(df[col])
    if "D" not in df.columns and {"N", "C"} <= set(df.columns):
        df["D"] = df["C"] / (6.0 * df["N"])
        notes.append("D = C/(6N) (tokens derived from compute)")
    if "C" not in df.columns and {"N", "D"} <= set(df.columns):
        df["C"] = 6.0 * df["N"] * df["D"]
        notes.append("C = 6ND (compute derived from tokens)")
    df.index = np.arange(len(df))
    df.attrs["source"] = str(path)
    df.attrs["notes"] = notes
    if "N_total" in df.columns:  # a table written by `scalinglab collect`
        df.attrs["convention"] = "N = non-embedding parameters (Kaplan); C = 6ND; N_total and C_* columns hold the others"
    else:
        df.attrs["convention"] = f"N, D, C as given in {path.name}" + (f"; {'; '.join(notes)}" if notes else "")
    return df


def read_runs_table(path: str | Path, columns: str | Mapping[str, str] | None = None) -> pd.DataFrame:
    """:func:`read_table` as a pandas DataFrame, for the paths that work on one (study selection, the report)."""
    return read_table(path, columns).to_frame()


def select_rows(df: Table | pd.DataFrame, spec: str | None) -> Table | pd.DataFrame:
    """The rows whose columns equal the values of ``spec`` ("COL=VALUE,...", ``--where``): one configuration of
    a table that holds several (Porian et al.'s ten). Numbers compare as numbers, anything else as text;
    a column or value that matches nothing is an error that lists what the table has."""
    if not spec:
        return df
    keep = np.ones(len(df), bool)
    for item in spec.split(","):
        col, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not col:
            raise ConfigError(f"--where takes COL=VALUE pairs separated by commas (got '{item}').")
        if col not in df.columns:
            raise DataError(f"--where: the table has no column '{col}'; its columns are {', '.join(map(str, df.columns))}.")
        cells = np.asarray(df[col])
        try:
            match = np.isclose(numeric(cells).astype(float), float(value), rtol=1e-9, atol=0)
        except ValueError:  # the value is not a number: compare as text
            match = np.array([str(v) for v in cells]) == value
        if not match.any():
            seen = sorted({str(v) for v in cells})
            more = f" and {len(seen) - 6} more" if len(seen) > 6 else ""
            raise DataError(f"--where: no row has {col} = '{value}'; it takes {', '.join(seen[:6])}{more}.")
        keep &= match
    if not keep.any():
        raise DataError(f"--where: no row matches all of '{spec}'; loosen the filter.")
    out = _take(df, keep)
    out.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), f"kept the {int(keep.sum())} of {len(df)} rows where {spec}"]}
    return out


def mixed_configurations(df: Table | pd.DataFrame, inputs: Sequence[str]) -> dict[str, Any] | None:
    """A warning when rows at the same ``inputs`` differ in a text column: the table holds several
    configurations (Porian et al.'s ten in one file, 1,139 of its 1,164 rows sharing (N, D) with another) that
    one law would fit as one. A column naming each row (as many values as rows) is a run's name, not a
    configuration, and is not counted. None when no such rows."""
    if not inputs or not all(c in df.columns for c in inputs) or len(df) < 2:
        return None
    keys = list(zip(*(np.asarray(df[c], dtype=float).tolist() for c in inputs)))
    rows: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    shared = [r for r in rows.values() if len(r) > 1]
    if not shared:
        return None
    found = {}
    for col in df.columns:
        cells = np.asarray(df[col])
        if col in inputs or cells.dtype.kind in "biuf" or not np.isnan(numeric(cells)).all():
            continue
        text = [str(v) for v in cells]
        distinct = set(text)
        if len(distinct) < 2 or len(distinct) == len(text):
            continue
        split = sum(len({text[i] for i in r}) > 1 for r in shared)
        if split:
            found[str(col)] = (split, sorted(distinct))
    if not found:
        return None
    col = max(found, key=lambda c: found[c][0])
    values = found[col][1]
    shown = ", ".join(values[:4]) + (f" and {len(values) - 4} more" if len(values) > 4 else "")
    return warning(
        "mixed", None,
        f"{found[col][0]} groups of rows share their {', '.join(inputs)} but differ in {', '.join(found)}: the table "
        f"may hold several configurations (or seeds) fitted as one law; fit one with --where {col}=VALUE ({col} takes "
        f"{shown}).",
    )  # fmt: skip


def drop_highest(df: Table | pd.DataFrame, k: int, column: str = "loss") -> Table | pd.DataFrame:
    """The table without its ``k`` highest-``column`` rows (Epoch drop Chinchilla's 5 worst runs)."""
    if k < 0:
        raise DataError(f"--drop-highest-loss takes a number of runs to drop, 0 or more (got {k}).")
    if k == 0:
        return df
    if k >= len(df):
        raise DataError(f"--drop-highest-loss {k} would drop every one of the table's {len(df)} runs; drop fewer.")
    if column not in df.columns:
        raise DataError(f"cannot drop the highest '{column}': the table has no such column.")
    values = np.asarray(df[column], dtype=float)
    order = np.argsort(-values, kind="stable")  # ties: the first rows go first, as pandas' nlargest
    keep = np.ones(len(df), bool)
    keep[order[~np.isnan(values[order])][:k]] = False
    out = _take(df, keep)
    out.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), f"dropped the {k} highest-{column} rows"]}
    return out


def _run_numbers(labels: Any) -> np.ndarray:
    """Each row's run as a number 0, 1, ... in order of first appearance (labels compared as text)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        labels = np.array([str(v) for v in labels])
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.intp)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def check_run_column(df: Table | pd.DataFrame, run_column: str) -> None:
    """The table has ``run_column`` and every row names its run (a row without one belongs to no run)."""
    if run_column not in df.columns:
        raise DataError(f"--run-column '{run_column}' not in the table; columns found: {', '.join(map(str, df.columns))}.")
    empty = blank(df[run_column])
    if empty.any():
        index = np.asarray(df.index)
        raise DataError(f"column '{run_column}' names no run in row(s) {row_list(empty, index)}; fill in each row's run "
                        "or remove those rows.")  # fmt: skip


def skip_early(df: Table | pd.DataFrame, run_column: str, fraction: float, tokens: str = "D") -> Table | pd.DataFrame:
    """A checkpoint table without each run's first ``fraction`` of tokens (its warmup transient; spec §6 item 14)."""
    check_run_column(df, run_column)
    if not 0 <= fraction < 1:
        raise DataError(f"--skip-fraction {fraction}; give a fraction in [0, 1), e.g. 0.1.")
    if not fraction:
        return df
    if tokens not in df.columns:
        raise DataError(f"--skip-fraction needs a '{tokens}' column (tokens seen at each checkpoint); map it with --columns.")
    seen = numeric(df[tokens]).astype(float)
    runs = _run_numbers(df[run_column])
    most = np.full(runs.max() + 1 if runs.size else 0, -np.inf)
    np.fmax.at(most, runs, seen)  # each run's final tokens, gaps ignored
    keep = seen >= fraction * most[runs]
    out = _take(df, keep)
    out.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), f"dropped {int((~keep).sum())} checkpoint(s) below {fraction:g} of their run's tokens"]}
    return out


def run_weights(labels: Any, frame: Table) -> tuple[np.ndarray, np.ndarray]:
    """Each run's rows share weight 1 (a run with many checkpoints counts like one with few); sets ``frame["weight"]``.

    Returns each row's run number ``(n,)`` and a mask of each run's last row (most tokens, ``D`` when present).
    """
    groups = _run_numbers(labels)
    counts = np.bincount(groups)
    frame["weight"] = np.asarray(frame["weight"]) / counts[groups]
    order = np.asarray(frame["D"]) if "D" in frame.columns else np.arange(len(frame), dtype=float)
    last = np.zeros(len(frame), bool)
    for g in range(counts.size):
        rows = np.flatnonzero(groups == g)
        last[rows[np.argmax(order[rows])]] = True
    return groups, last


def row_list(mask: np.ndarray, index: np.ndarray) -> str:
    """The labels of the rows ``mask`` picks, the first ten, for an error message."""
    rows = [str(i) for i in index[mask][:10]]
    return ", ".join(rows) + (f" (and {int(mask.sum()) - 10} more)" if mask.sum() > 10 else "")


def require_positive(df: Table | pd.DataFrame, columns: Sequence[str], allow_zero: bool = False) -> None:
    """Every value of ``columns`` is a finite number above 0 (at least 0 with ``allow_zero``), else a
    :class:`DataError` naming the column and its bad rows: logs of these columns are fitted."""
    for col in columns:
        values = numeric(df[col]).astype(float)
        bad = ~np.isfinite(values) | (values < 0 if allow_zero else values <= 0)
        if bad.any():
            kind = "negative" if allow_zero else "non-positive"
            raise DataError(
                f"column '{col}' has {kind} or missing values in row(s) {row_list(bad, np.asarray(df.index))}; "
                "fix or remove those rows."
            )


def fit_frame(
    data: Table | pd.DataFrame | Mapping[str, Any],
    form: Form,
    weights: str | Sequence[float] | None = None,
    extra: Sequence[str] = (),
    to_fit: bool = True,
) -> Table | pd.DataFrame:
    """The columns ``form`` needs (inputs, target, ``extra``, ``weight``), checked: present, positive, enough points.

    ``to_fit=False`` (a table only predicted, e.g. a backtest's held-out runs) skips the checks that
    only a fit needs: more points than parameters and several values of each input.

    ``weights`` is a column name or one value per row; rows keep their original labels so errors
    and outlier flags name them. A DataFrame comes back as a DataFrame, anything else as a Table.
    """
    df = Table.of(data)
    needed = list(dict.fromkeys([*form.inputs, form.target, *extra]))
    missing = [c for c in needed if c not in df.columns]
    if missing:
        fix = ", ".join(f"{m}=<your column>" for m in missing)
        raise DataError(
            f"the runs table has no column {', '.join(repr(m) for m in missing)} (law '{form.name}' needs "
            f"{', '.join(needed)}); columns found: {', '.join(map(str, df.columns))}. Map yours with --columns {fix}."
        )
    out = Table({c: numeric(df[c]).astype(float) for c in needed}, df.index, df.attrs)
    if weights is None:
        out["weight"] = 1.0
    elif isinstance(weights, str):
        if weights not in df.columns:
            raise DataError(f"weights column '{weights}' not found; columns found: {', '.join(map(str, df.columns))}.")
        out["weight"] = numeric(df[weights])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(df),):
            raise DataError(f"weights has {w.size} values for {len(df)} rows; give one weight per row.")
        out["weight"] = w
    require_positive(out, needed)
    require_positive(out, ["weight"], allow_zero=True)
    n_used = int((out["weight"] > 0).sum())
    if to_fit and n_used < len(form.params) + 1:
        raise FitError(
            f"law '{form.name}' has {len(form.params)} parameters but the table has {n_used} usable point(s); "
            f"give at least {len(form.params) + 1} runs."
        )
    for col in form.inputs if to_fit else ():
        if np.all(out[col] == out[col][0]):  # not np.unique: it imports numpy.ma, a tenth of the start-up
            raise FitError(
                f"all points have the same {col} = {out[col][0]:g}; law '{form.name}' needs runs at "
                f"several values of {col}."
            )
    return out.to_frame() if _is_frame(data) else out
