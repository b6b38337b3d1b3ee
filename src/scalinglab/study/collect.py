"""Collect a study's run directories into two tidy tables: one row per run, one row per evaluation.

The columns are those of docs/contracts.md ("Runs tables"): ``N`` is Kaplan's non-embedding count,
``D`` the tokens processed, ``C`` = 6·N·D (Kaplan's convention; ``C_6N_total``, ``C_kaplan`` and
``C_structural`` hold the others) and ``loss`` the final validation loss in nats/token
(``best_loss``: the early-stopped one, Kaplan §3.3). ``scalinglab fit`` reads the runs table directly
and keeps the runs whose ``status`` is ``done``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from scalinglab.atomic import os_errors, write_bytes, write_text
from scalinglab.errors import DamagedFile, DataError, DiskError
from scalinglab.train.config import identity_of
from scalinglab.train.rundir import (
    CONFIG,
    METRICS,
    SUMMARY,
    iter_metrics,
    read_json,
    read_status,
    read_summary,
)

RUN_COLUMNS = [
    "run_id", "name", "design", "group", "status", "seed", "arch", "reuse", "n_layer", "d_model", "n_head", "d_ff",
    "n_ctx", "vocab_size", "batch_size", "batch_tokens", "lr", "train_tokens_limit", "N", "N_total", "N_with_head",
    "N_with_reuse", "steps", "D", "C", "C_6N", "C_6N_total", "C_kaplan", "C_structural", "loss", "bpb", "best_loss",
    "best_step", "epochs",
]  # fmt: skip
"""Leading columns of the runs table; then ``loss_<set>``, ``bpb_<set>``, ``wall_time``, ``kind``, ``recipe``,
``designs`` and ``groups`` (every design and group a run shared by several designs belongs to, ';'-separated),
``parent`` and ``branch_step`` (a cooldown branch's parent run_id and the step it starts from; '' and 0 for other
runs), ``replicate`` (the run identity without the seed: runs that share it differ only in their seed) and ``run_dir`` (the run's directory name inside the study directory)."""

STEP_COLUMNS = [
    "run_id", "step", "tokens", "C", "C_6N", "C_6N_total", "C_kaplan", "C_structural", "lr", "train_loss",
    "loss", "bpb",
]  # fmt: skip
"""Fixed leading columns of the steps table; ``loss_<set>``, ``bpb_<set>`` and run columns follow."""

_FLOPS = {"C_6N": "6N", "C_6N_total": "6N_total", "C_kaplan": "kaplan", "C_structural": "structural"}
_STEP_RUN_COLUMNS = ["N", "N_total", "batch_tokens", "design", "group"]


def _run_id(run_dir: Path, summary: dict[str, Any], labels: dict[str, Any]) -> str:
    return summary.get("run_id") or labels.get("identity") or run_dir.name.rsplit("-", 1)[-1]


def _run_row(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    labels = read_json(run_dir / "labels.json") or {}
    summary = read_summary(run_dir) or {}
    model, optim = config["model"], config["optim"]
    params = summary.get("params", {})
    flops = summary.get("flops", {})
    final, best = summary.get("final", {}), summary.get("best", {})
    row: dict[str, Any] = {
        "run_id": _run_id(run_dir, summary, labels),
        "name": config.get("name") or run_dir.name,
        "design": labels.get("design", ""),
        "group": labels.get("group", ""),
        "status": read_status(run_dir)["state"],
        "seed": config["seed"],
        "arch": model.get("arch", "gpt"),  # runs from before the model families are GPTs
        "reuse": model.get("reuse", 1),
        "n_layer": model["n_layer"],
        "d_model": model["d_model"],
        "n_head": model["n_head"],
        "d_ff": model["d_ff"] or 4 * model["d_model"],
        "n_ctx": model["n_ctx"],
        "vocab_size": model["vocab_size"],
        "batch_size": optim["batch_size"],
        "batch_tokens": optim["batch_size"] * model["n_ctx"],
        "lr": summary.get("lr", optim["lr"]),
        "train_tokens_limit": config["data"]["train_tokens"],
        "N": params.get("N"),
        "N_total": params.get("N_total"),
        "N_with_head": params.get("N_with_head"),
        "N_with_reuse": params.get("N_with_reuse", params.get("N")),  # each application of a reused block
        "steps": summary.get("steps"),
        "D": summary.get("tokens"),
        "C": flops.get("6N"),
        **{col: flops.get(conv) for col, conv in _FLOPS.items()},
        "loss": final.get("valid", {}).get("loss"),
        "bpb": final.get("valid", {}).get("bpb"),
        "best_loss": best.get("valid", {}).get("loss"),
        "best_step": best.get("valid", {}).get("step"),
        "epochs": summary.get("epochs"),
    }
    for name, r in final.items():
        row[f"loss_{name}"], row[f"bpb_{name}"] = r.get("loss"), r.get("bpb")
    row.update(
        wall_time=summary.get("wall_time"),
        kind=labels.get("kind", ""),
        recipe=labels.get("recipe", ""),
        designs=labels.get("designs", row["design"]),  # every design the run belongs to, ';'-separated
        groups=labels.get("groups", row["group"]),
        parent=(config.get("branch") or {}).get("parent", ""),  # a cooldown branch's parent run_id (wsd_ladder)
        branch_step=(config.get("branch") or {}).get("step", 0),
        replicate=identity_of({k: v for k, v in config.items() if k != "seed"}),  # the identity rule, seed left out
        run_dir=run_dir.name,  # the run's directory inside the study directory
    )
    return row


def _step_rows(run_dir: Path, run: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for rec in iter_metrics(run_dir):  # streamed: a long run's metrics.jsonl is never held whole
        if "val_loss_valid" not in rec:
            continue  # one row per evaluation step
        row = {
            "run_id": run["run_id"],
            "step": rec["step"],
            "tokens": rec["tokens"],
            "C": rec.get("flops_6N"),
            **{col: rec.get(f"flops_{conv}") for col, conv in _FLOPS.items()},
            "lr": rec.get("lr"),
            "train_loss": rec.get("train_loss"),
            "loss": rec["val_loss_valid"],
            "bpb": rec.get("val_bpb_valid"),
        }
        for key, value in rec.items():
            if key.startswith("val_loss_"):
                row[f"loss_{key[len('val_loss_'):]}"] = value
            elif key.startswith("val_bpb_"):
                row[f"bpb_{key[len('val_bpb_'):]}"] = value
        row.update({col: run[col] for col in _STEP_RUN_COLUMNS})
        rows.append(row)
    return rows


def _readable_metrics(run_dir: Path, keep: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl that ``keep`` accepts (streamed, so memory follows what is
    kept), or nothing (with a warning naming the file) when it is damaged."""
    try:
        return [r for r in iter_metrics(run_dir) if keep(r)]
    except DamagedFile as e:
        warnings.warn(f"run {run_dir.name} is left out of the per-step tables: {e}", stacklevel=3)
        return []


def run_directories(study_dir: str | Path) -> list[Path]:
    """The run directories under ``study_dir`` (those with a config.json), in name order; none if it is no directory."""
    root = Path(study_dir)
    return sorted(p for p in root.iterdir() if (p / CONFIG).is_file()) if root.is_dir() else []


def _run_dirs(study_dir: str | Path) -> list[tuple[Path, str]]:
    """(run directory, run_id) of every run under ``study_dir`` that has a config.json."""
    out = []
    for d in run_directories(study_dir):
        try:
            out.append((d, _run_id(d, read_summary(d) or {}, read_json(d / "labels.json") or {})))
        except DamagedFile as e:  # collect() lists it as damaged; the per-step tables leave it out, saying so
            warnings.warn(f"run {d.name} is damaged and left out: {e}", stacklevel=2)
    return out


RECORD_COLUMNS = ["run_id", "step", "lr", "train_loss", "noise_b_simple"]
"""Leading columns of the records table; every other scalar field of metrics.jsonl follows."""


def run_records(run_dir: str | Path) -> pd.DataFrame:
    """One run directory's logged steps (metrics.jsonl, scalar fields) as a table, in step order: the
    curve that ``scalinglab predict`` extrapolates. A damaged file is an error naming it."""
    rows = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in iter_metrics(run_dir)]
    return pd.DataFrame(rows)


def run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """One run directory's resolved config.json, or None when it has none."""
    return read_json(Path(run_dir) / CONFIG)


def collect_records(study_dir: str | Path, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every logged step of every run (metrics.jsonl), or of ``run_ids`` only, scalar fields only: the
    batch-scan, noise-scale and learning-rate analyses read the training loss and LR, which are logged
    far more often than evaluations."""
    wanted = None if run_ids is None else set(run_ids)
    frames = []
    for run_dir, run_id in _run_dirs(study_dir):
        if wanted is not None and run_id not in wanted:
            continue
        records = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in _readable_metrics(run_dir)]
        if records:
            frames.append(pd.DataFrame(records).assign(run_id=run_id))
    if not frames:
        return pd.DataFrame(columns=RECORD_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    return df.reindex(columns=RECORD_COLUMNS + [c for c in df.columns if c not in RECORD_COLUMNS])


def collect_positions(study_dir: str | Path, split: str = "valid") -> pd.DataFrame:
    """Per-position loss of ``split`` (Kaplan Figs 20, 21): ``run_id``, ``step``, ``T`` (1-based), ``loss``, ``final``.

    The final evaluation comes from summary.json (``per_position_loss``); earlier ones from the
    ``pos_loss_<split>`` field of metrics.jsonl evaluations, where the trainer logged it.
    """
    frames = []
    for run_dir, run_id in _run_dirs(study_dir):
        summary = read_summary(run_dir) or {}
        last = (summary.get("per_position_loss") or {}).get(split)
        if last:
            frames.append(pd.DataFrame({"run_id": run_id, "step": summary.get("steps"), "T": range(1, len(last) + 1),
                                        "loss": last, "final": True}))
        for rec in _readable_metrics(run_dir, lambda r: bool(r.get(f"pos_loss_{split}"))):
            losses = rec[f"pos_loss_{split}"]
            frames.append(pd.DataFrame({"run_id": run_id, "step": rec["step"], "T": range(1, len(losses) + 1),
                                        "loss": losses, "final": False}))
    if not frames:
        return pd.DataFrame({"run_id": [], "step": [], "T": [], "loss": [], "final": pd.Series([], dtype=bool)})
    return pd.concat(frames, ignore_index=True)


def collect(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, steps) tables of every run directory under ``study_dir`` that has started training."""
    root = Path(study_dir)
    if not root.is_dir():
        raise DataError(f"study directory '{root}' does not exist; pass the directory `scalinglab study run` wrote (runs/<study name>).")
    runs, steps = [], []
    for run_dir in run_directories(root):
        try:
            run = _run_row(run_dir, read_json(run_dir / CONFIG))
            run_steps = _step_rows(run_dir, run)
        except DamagedFile as e:  # one unreadable file costs its own run only, and never silently
            warnings.warn(f"run {run_dir.name} is damaged and fits nothing: {e}", stacklevel=2)
            run, run_steps = {"run_id": run_dir.name.rsplit("-", 1)[-1], "name": run_dir.name, "status": "damaged",
                              "damage": str(e), "run_dir": run_dir.name}, []  # fmt: skip
        runs.append(run)
        steps.extend(run_steps)
    if not runs:
        raise DataError(f"'{root}' has no run directories with a config.json; train the study first (scalinglab study run).")
    runs_df = pd.DataFrame(runs)
    steps_df = pd.DataFrame(steps, columns=None if steps else STEP_COLUMNS + _STEP_RUN_COLUMNS)
    return runs_df, steps_df


def only_design(runs: pd.DataFrame, steps: pd.DataFrame, design: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs (and their evaluation rows) of the design called ``design`` or of every design of that kind,
    as their own or shared into them (study.selection.match_design)."""
    from scalinglab.study.selection import match_design

    mine = runs[match_design(runs, design)[0]]
    return mine.reset_index(drop=True), steps[steps["run_id"].isin(mine["run_id"])].reset_index(drop=True)


def save_tables(runs: pd.DataFrame, steps: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write runs and steps as Parquet and CSV into ``out_dir``, each file replaced atomically (a kill
    mid-write leaves the old table, never half a new one); the paths written."""
    out = Path(out_dir)
    with os_errors(out):
        out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in (("runs", runs), ("steps", steps)):
        write_bytes(out / f"{name}.parquet", df.to_parquet(index=False))
        write_text(out / f"{name}.csv", df.to_csv(index=False))
        paths += [out / f"{name}.parquet", out / f"{name}.csv"]
    return paths


def stale_tables(study_dir: str | Path) -> str | None:
    """Why ``study_dir``'s runs.parquet no longer holds what its run directories do (missing, unreadable,
    older than a run's files, a run added or gone), or None when it is current or there are no run
    directories (tables only)."""
    dirs = run_directories(study_dir)
    table = Path(study_dir) / "runs.parquet"
    if not dirs:
        return None
    if not table.is_file():
        return "runs.parquet was missing"
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(table).names
        column = pd.read_parquet(table, columns=["run_dir"])["run_dir"] if "run_dir" in names else None
    except (ValueError, OSError):  # cut short, e.g. by a kill before tables were written atomically
        return "runs.parquet was unreadable"
    # a table of another making, without run_dir: only its age tells
    listed = {d.name for d in dirs} if column is None else {Path(p).name for p in column if isinstance(p, str)}
    t = table.stat().st_mtime
    # a run copied in keeps its files' times, so the listing is compared too, not only the times
    changed = [d.name for d in dirs if d.name not in listed
               or any((d / f).is_file() and (d / f).stat().st_mtime > t for f in (CONFIG, METRICS, SUMMARY))]
    gone = listed - {d.name for d in dirs}
    if not changed and not gone:
        return None
    shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    what = [f"{len(changed)} run directories added or trained since it was written ({shown})"] if changed else []
    what += [f"{len(gone)} of its runs no longer here"] if gone else []
    return f"runs.parquet was stale ({'; '.join(what)})"


def refresh_tables(study_dir: str | Path) -> str | None:
    """Collect ``study_dir`` again when its tables are stale (:func:`stale_tables`), so a fit of the study
    sees the runs the report sees; what was done, or None when nothing was."""
    reason = stale_tables(study_dir)
    if reason is None:
        return None
    try:
        write_tables(study_dir)
    except DiskError as e:  # a study on a read-only share: its runs can still be collected elsewhere
        raise DiskError(f"{reason}, and the tables cannot be rewritten there ({e}) Collect them elsewhere and fit "
                        f"those: `scalinglab collect {study_dir} --out DIR`, then give DIR instead of the study.") from None
    return f"{reason}: collected again"


def write_tables(study_dir: str | Path, out_dir: str | Path | None = None, design: str | None = None) -> list[Path]:
    """Collect ``study_dir`` (only ``design``'s runs when given) and write runs/steps into ``out_dir`` (default: the study dir)."""
    runs, steps = collect(study_dir)
    if design:
        runs, steps = only_design(runs, steps, design)
    return save_tables(runs, steps, out_dir or study_dir)
