"""Follow a study as it trains: runs done / running / pending with an ETA, live learning curves, the fit as runs finish.

:class:`StudyView` renders one frame: a line per run (state, step of steps, last losses and a sparkline
of its training loss, read from ``metrics.jsonl`` by streaming: each frame reads only the bytes written
since the last), the study's counts and time left, and the law refitted on the finished runs whenever
their number changes. :func:`watch` draws frames every few seconds, in place on a terminal and as plain
lines in a log; ``html`` also writes a page that reloads itself.
"""

from __future__ import annotations

import html as htmlib
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from scalinglab import atomic
from scalinglab.errors import ConfigError, ScalinglabError
from scalinglab.study.config import StudyConfig, expand_study
from scalinglab.study.runner import _cost, study_status
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


class StudyView:
    """Frames of one study: the state of every run, their curves, the time left and the latest fit."""

    def __init__(self, study: StudyConfig, law: str = "chinchilla", budget: float | None = None, width: int = 32,
                 levels: str = SPARK) -> None:  # fmt: skip
        self.study, self.law, self.budget, self.width, self.levels = study, law, budget, width, levels
        self.costs = {run.name: _cost(run.config) for run in expand_study(study)}
        self.tails: dict[str, CurveTail] = {}
        self.fit_line, self.fitted_on = "", -1
        self.finished = False

    def frame(self) -> list[str]:
        """The lines of one frame, reading only what the runs wrote since the last."""
        status = study_status(self.study)
        rows, left, rate_cost, rate_seconds = [], 0.0, 0.0, 0.0
        for r in status.to_dict("records"):
            tail = self.tails.setdefault(r["name"], CurveTail(r["run_dir"]))
            tail.poll()
            step = max(int(r["step"] or 0), tail.step) if r["state"] != "done" else int(r["steps"])
            cost = self.costs.get(r["name"], 0.0)
            if r["state"] not in FINISHED:
                left += cost * (1 - step / max(1, r["steps"]))
            if tail.wall > 0 and tail.step:
                rate_cost += cost * tail.step / max(1, r["steps"])
                rate_seconds += tail.wall
            note = r["reason"] if r["state"] in ("failed", "damaged", "stale", "waiting") else ""
            if r["state"] == "running" and math.isfinite(tail.seconds_per_step):
                note = f"{_duration((r['steps'] - step) * tail.seconds_per_step)} left"
            rows.append([r["name"], r["state"], f"{step}/{r['steps']}", _num(tail.train), _num(tail.val),
                         sparkline(tail.curve, self.width, self.levels), note])  # fmt: skip
        counts = status["state"].value_counts().to_dict()
        running = counts.get("running", 0)
        eta = left / (rate_cost / rate_seconds) / max(1, running) if rate_cost > 0 else float("nan")
        self.finished = not any(s not in FINISHED for s in counts)
        done = counts.get("done", 0)
        if done != self.fitted_on:  # refit only when a run has finished
            self.fit_line, self.fitted_on = (self._fit() if done else f"fit {self.law}: no finished runs yet"), done
        order = ["done", "running", "waiting", "stale", "pending", "failed", "damaged"]
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in order if counts.get(s, 0) or s in ("done", "running", "pending"))
        when = "finished" if self.finished else f"ETA {_duration(eta) if left else '0 s'}"
        head = f"study {self.study.name}: {summary} of {len(status)}; {when} [{datetime.now():%H:%M:%S}]"
        return [head, *_columns(["run", "state", "step", "train", "valid", "training loss", ""], rows), self.fit_line]

    def _fit(self) -> str:
        """One line: the law fitted on the study's finished runs now (the runs the report would use)."""
        from scalinglab.laws.fit import fit_law
        from scalinglab.study.collect import collect
        from scalinglab.study.selection import select_for_law

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a damaged run shows as damaged in its row
                runs, _ = collect(self.study.directory)
                table, _ = select_for_law(runs, self.law)
                fit = fit_law(self.law, table.reset_index(drop=True), calibrate=False)
        except ScalinglabError as e:
            return f"fit {self.law}: not yet ({e})"
        params = ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items())
        line = f"fit {self.law} on {fit.n_points} finished runs: {params}"
        if self.budget and set(fit.form.inputs) == {"N", "D"}:
            from scalinglab.study.suggest import answer

            value, _ = answer(fit.form, fit.form.to_theta(np.array([[fit.params[p] for p in fit.form.params]])), self.budget, "loss")
            if np.isfinite(value[0]):
                line += f"; compute-optimal loss at C={self.budget:.3g}: {math.exp(value[0]):.4g}"
        return line + ("" if fit.converged else " (not converged)")


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


def watch(study: StudyConfig, *, interval: float = 5.0, once: bool = False, law: str = "chinchilla",
          budget: float | None = None, html: str | Path | None = None, out: TextIO | None = None, width: int = 32) -> int:
    """Draw frames of ``study`` every ``interval`` seconds until every run has finished (``once``: one frame).

    On a terminal each frame replaces the last; otherwise frames follow each other, a blank line apart.
    """  # fmt: skip
    if interval <= 0 or width < 1:
        raise ConfigError(f"--interval {interval:g} and --width {width} must be positive; e.g. --interval 5 --width 32.")
    out = out or sys.stdout
    unicode = (getattr(out, "encoding", "") or "").lower().replace("-", "").startswith("utf")
    view = StudyView(study, law, budget, width, SPARK if unicode else ASCII_SPARK)
    live = out.isatty() and not once
    while True:
        lines = view.frame()
        out.write((CLEAR if live else "") + "\n".join(lines) + ("\n" if live else "\n\n"))
        out.flush()
        if html:
            write_html(html, lines, interval)
        if once or view.finished:
            return 0
        time.sleep(interval)
