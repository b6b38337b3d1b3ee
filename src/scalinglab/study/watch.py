"""Follow a study as it trains: runs done / running / pending with an ETA, live learning curves, the fit as runs finish.

:class:`StudyView` renders one frame: a line per run (state, step of steps, last losses and a sparkline
of its training loss, read from ``metrics.jsonl`` by streaming: each frame reads only the bytes written
since the last), the study's counts and time left, and the law refitted on the finished runs whenever
their number changes. A run's state comes from its status and claim files (study.store), and a finished
run is not read again. :func:`watch` draws frames every few seconds, in place on a terminal and as plain
lines in a log, or as one line of JSON each (:meth:`StudyView.snapshot`); ``html`` also writes a page that
reloads itself. Given a study directory instead of the
study, the frames show the runs started so far.
"""

from __future__ import annotations

import html as htmlib
import json
import math
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from scalinglab import atomic
from scalinglab.config import from_dict
from scalinglab.errors import ConfigError, DataError, ScalinglabError
from scalinglab.study.collect import run_config
from scalinglab.study.config import StudyConfig, StudyRun, expand_study
from scalinglab.study.plan import spent_flops
from scalinglab.study.store import RunState, RunStore
from scalinglab.train.budget import resolve_steps
from scalinglab.train.config import RunConfig
from scalinglab.train.rundir import METRICS

SPARK = "▁▂▃▄▅▆▇█"
ASCII_SPARK = "_.-~=+*#"
"""Sparkline levels, low to high; the ASCII set where the output cannot show Unicode."""
MAX_POINTS = 512
"""A curve keeps at most this many points (every other one is dropped and the stride doubled past it)."""
CLEAR = "\x1b[H\x1b[2J"
"""Home and clear: a terminal frame replaces the last one."""
FINISHED = frozenset({"done", "failed", "damaged"})


class CurveTail:
    """One run's learning curve, read from its metrics.jsonl as the file grows.

    Each :meth:`poll` reads from where the last stopped and takes only whole lines, so a line being
    written (or torn by a crash) waits for its newline; a file that shrank (a resumed run truncates it to
    its checkpoint) is read again from the start.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / METRICS
        self.reset()

    def reset(self) -> None:
        self.offset = 0
        self.step, self.wall, self.train, self.val = 0, 0.0, float("nan"), float("nan")
        self.curve: list[float] = []
        self.stride, self._skip = 1, 0

    def poll(self) -> int:
        """Read the records written since the last poll; how many."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size < self.offset:
            self.reset()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        count = 0
        for line in chunk[:end].splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a damaged line: the run's state says so (study.store)
            count += 1
            self.step, self.wall = int(rec.get("step", self.step)), float(rec.get("wall_time", self.wall))
            if "val_loss_valid" in rec:
                self.val = float(rec["val_loss_valid"])
            if "train_loss" in rec:
                self.train = float(rec["train_loss"])
                self._add(self.train)
        return count

    def _add(self, value: float) -> None:
        self._skip += 1
        if self._skip < self.stride:
            return
        self._skip = 0
        self.curve.append(value)
        if len(self.curve) > MAX_POINTS:  # bounded memory for any run length
            self.curve = self.curve[::2]
            self.stride *= 2

    @property
    def seconds_per_step(self) -> float:
        return self.wall / self.step if self.step and self.wall > 0 else float("nan")


def sparkline(values: Sequence[float], width: int, levels: str = SPARK) -> str:
    """``values`` as ``width`` characters, the mean of each slice scaled between the curve's min and max."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return ""
    chunks = np.array_split(v, min(width, v.size))
    means = np.array([c.mean() for c in chunks])
    lo, hi = float(means.min()), float(means.max())
    scale = (means - lo) / (hi - lo) if hi > lo else np.zeros_like(means)
    return "".join(levels[int(round(s * (len(levels) - 1)))] for s in scale)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass
class _Run:
    """What a frame needs of one run: its name, length, cost and directory (None until the store makes it)."""

    name: str
    steps: int
    cost: float
    run: StudyRun | None = None
    run_dir: Path | None = None
    done: RunState | None = None
    """Its final state, once done or failed: never read again."""


class StudyView:
    """Frames of one study (a study file, or only the runs a study directory holds): the state of every run,
    their curves, the time left and the latest fit."""

    def __init__(self, study: StudyConfig | str | Path, law: str = "chinchilla", budget: float | None = None,
                 width: int = 32, levels: str = SPARK) -> None:  # fmt: skip
        self.law, self.budget, self.width, self.levels = law, budget, width, levels
        if isinstance(study, StudyConfig):
            self.name, self.directory = study.name, study.directory.resolve()
            self.store = RunStore(self.directory, study.stale_seconds)
            self.runs = [_Run(r.name, resolve_steps(r.config), spent_flops(r.config), r) for r in expand_study(study)]
        else:  # a directory alone: the runs started so far (pending ones are in the study file only)
            self.name, self.directory = Path(study).name, Path(study).resolve()
            if not self.directory.is_dir():
                raise DataError(f"study directory '{study}' does not exist; pass the study file or the directory `study run` wrote.")
            self.store, self.runs = RunStore(self.directory), []
            for d in self.store.run_dirs():
                raw = run_config(d)
                if raw is not None:
                    cfg = from_dict(RunConfig, raw)
                    self.runs.append(_Run(cfg.name or d.name, resolve_steps(cfg), spent_flops(cfg), run_dir=d))
        self.tails: dict[str, CurveTail] = {}
        self.fit: dict[str, Any] = {}
        self.fitted_on = -1
        self.finished = False

    def _state(self, r: _Run) -> RunState:
        """The run's state from its status and claim (cheap: no full read of its files); a finished one once."""
        if r.done is not None:
            return r.done
        if r.run_dir is None or not r.run_dir.exists():
            r.run_dir = self.store.run_dir(r.run) if r.run is not None else r.run_dir
            if r.run_dir is None or not r.run_dir.exists():
                return RunState("pending")
        state = self.store.state(r.run_dir)
        if state.state in FINISHED:
            r.done = state
        return state

    def snapshot(self) -> dict[str, Any]:
        """One frame's numbers, reading only what the runs wrote since the last: every run's state, step and last
        losses, the counts, the time left and the latest fit (refitted only when a run has finished)."""
        runs, counts, left, rate_cost, rate_seconds = [], Counter(), 0.0, 0.0, 0.0
        for r in self.runs:
            s = self._state(r)
            counts[s.state] += 1
            tail = self.tails.get(r.name)
            if tail is None and r.run_dir is not None:
                tail = self.tails[r.name] = CurveTail(r.run_dir)
            if tail is not None:
                tail.poll()
            seen = tail or CurveTail(self.directory / r.name)  # a pending run: an empty curve
            step = r.steps if s.state == "done" else max(s.step, seen.step)
            if s.state not in FINISHED:
                left += r.cost * (1 - step / max(1, r.steps))
            if seen.wall > 0 and seen.step:
                rate_cost += r.cost * seen.step / max(1, r.steps)
                rate_seconds += seen.wall
            note, seconds_left = s.reason if s.state in ("failed", "damaged", "stale", "waiting") else "", None
            if s.state == "running" and math.isfinite(seen.seconds_per_step):
                seconds_left = (r.steps - step) * seen.seconds_per_step
                note = f"{_duration(seconds_left)} left"
            runs.append({"name": r.name, "state": s.state, "step": step, "steps": r.steps, "train_loss": seen.train,
                         "val_loss": seen.val, "seconds_left": seconds_left, "note": note, "curve": seen.curve})
        eta = left / (rate_cost / rate_seconds) / max(1, counts["running"]) if rate_cost > 0 else float("nan")
        self.finished = all(s in FINISHED for s in counts)
        if counts["done"] != self.fitted_on:  # refit only when a run has finished
            self.fit = self._fit() if counts["done"] else {"law": self.law, "error": "no finished runs yet"}
            self.fitted_on = counts["done"]
        return {"study": self.name, "time": datetime.now().isoformat(timespec="seconds"), "counts": dict(counts),
                "total": len(self.runs), "finished": self.finished, "eta_seconds": eta if left else 0.0,
                "runs": runs, "fit": self.fit}  # fmt: skip

    def frame(self) -> list[str]:
        """The lines of one frame: a new :meth:`snapshot` as text."""
        return self.lines(self.snapshot())

    def lines(self, snap: dict[str, Any]) -> list[str]:
        """A snapshot as the frame's lines."""
        counts = Counter(snap["counts"])
        rows = [[r["name"], r["state"], f"{r['step']}/{r['steps']}", _num(r["train_loss"]), _num(r["val_loss"]),
                 sparkline(r["curve"], self.width, self.levels), r["note"]] for r in snap["runs"]]  # fmt: skip
        order = ["done", "running", "waiting", "stale", "pending", "failed", "damaged"]
        summary = ", ".join(f"{counts[s]} {s}" for s in order if counts[s] or s in ("done", "running", "pending"))
        when = "finished" if snap["finished"] else f"ETA {_duration(snap['eta_seconds'])}"
        head = f"study {snap['study']}: {summary} of {snap['total']}; {when} [{snap['time'][11:]}]"
        return [head, *_columns(["run", "state", "step", "train", "valid", "training loss", ""], rows), fit_line(snap["fit"])]

    def _fit(self) -> dict[str, Any]:
        """The law fitted on the study's finished runs now (the runs the report would use): its parameters,
        whether it converged, its warnings, and the compute-optimal loss at the target budget; or why not yet."""
        from scalinglab.laws.fit import fit_law
        from scalinglab.study.collect import collect
        from scalinglab.study.selection import select_for_law

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a damaged run shows as damaged in its row
                runs, _ = collect(self.directory)
                table, _ = select_for_law(runs, self.law)
                fit = fit_law(self.law, table.reset_index(drop=True), calibrate=False)
        except ScalinglabError as e:
            return {"law": self.law, "error": f"not yet ({e})"}
        out = {"law": self.law, "n_points": fit.n_points, "params": dict(fit.params), "converged": fit.converged,
               "warnings": fit.warnings, "budget": self.budget, "loss_at_budget": None}  # fmt: skip
        if self.budget and set(fit.form.inputs) == {"N", "D"}:
            from scalinglab.study.suggest import answer

            value, _ = answer(fit.form, fit.form.to_theta(np.array([[fit.params[p] for p in fit.form.params]])), self.budget, "loss")
            if np.isfinite(value[0]):
                out["loss_at_budget"] = math.exp(value[0])
        return out


def fit_line(fit: dict[str, Any]) -> str:
    """A frame's last line: the fit of :meth:`StudyView._fit` (its findings after ⚠; `scalinglab fit` gives the fixes)."""
    from scalinglab.laws.diagnostics import findings

    if "error" in fit:
        return f"fit {fit['law']}: {fit['error']}"
    params = ", ".join(f"{k}={v:.4g}" for k, v in fit["params"].items())
    line = f"fit {fit['law']} on {fit['n_points']} finished runs: {params}"
    if fit["loss_at_budget"] is not None:
        line += f"; compute-optimal loss at C={fit['budget']:.3g}: {fit['loss_at_budget']:.4g}"
    line += "" if fit["converged"] else " (not converged)"
    doubts = findings(fit["warnings"])
    return line + (f" ⚠ {'; '.join(doubts)}" if doubts else "")


def _num(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "-"


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *rows]]


def write_html(path: str | Path, lines: Sequence[str], interval: float) -> None:
    """A page showing the frame that reloads itself every ``interval`` seconds (written atomically)."""
    body = htmlib.escape("\n".join(lines))
    atomic.write_text(
        path,
        f'<!doctype html>\n<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{max(1, round(interval))}">'
        f"<title>{htmlib.escape(lines[0])}</title></head>\n<body><pre>{body}</pre></body></html>\n",
    )


def watch(study: StudyConfig | str | Path, *, interval: float = 5.0, once: bool = False, law: str = "chinchilla",
          budget: float | None = None, html: str | Path | None = None, out: TextIO | None = None, width: int = 32,
          as_json: bool = False) -> int:
    """Draw frames of ``study`` every ``interval`` seconds until every run has finished (``once``: one frame).

    On a terminal each frame replaces the last; otherwise frames follow each other, a blank line apart.
    ``as_json``: each frame is one line of JSON, :meth:`StudyView.snapshot` without the curves (JSON Lines).
    """  # fmt: skip
    if interval <= 0 or width < 1:
        raise ConfigError(f"--interval {interval:g} and --width {width} must be positive; e.g. --interval 5 --width 32.")
    out = out or sys.stdout
    unicode = (getattr(out, "encoding", "") or "").lower().replace("-", "").startswith("utf")
    view = StudyView(study, law, budget, width, SPARK if unicode else ASCII_SPARK)
    live = out.isatty() and not once and not as_json
    while True:
        snap = view.snapshot()
        lines = view.lines(snap)
        if as_json:
            out.write(atomic.dumps({**snap, "runs": [{k: v for k, v in r.items() if k != "curve"} for r in snap["runs"]]}) + "\n")
        else:
            out.write((CLEAR if live else "") + "\n".join(lines) + ("\n" if live else "\n\n"))
        out.flush()
        if html:
            write_html(html, lines, interval)
        if once or view.finished:
            return 0
        time.sleep(interval)
