"""Soak: a long run with frequent checkpoints, its memory and disk over time, then the cost of resuming it.

Trains one tiny model (`scalinglab train`, a real process on the built-in corpus, one thread, a
record every step, a checkpoint every ``--checkpoint-steps``) for ``--seconds``, printing its RSS and
the run directory's size every ``--every`` seconds; then stops it with SIGTERM (it checkpoints and
exits resumable) and resumes it in a fresh process for a few seconds, printing that process's peak
RSS. Both stay flat with the length of metrics.jsonl when resume streams it.

    .venv/bin/python benchmarks/soak.py --seconds 600      # the issue's 10-minute soak
    .venv/bin/python benchmarks/soak.py --seconds 60 --every 10
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = [
    "model.n_layer=2", "model.d_model=32", "model.n_head=4", "model.n_ctx=64", "model.vocab_size=2048",
    "data.vocab_size=2048", "optim.batch_size=8", "budget.steps=10000000", "eval.tokens=4096", "eval.points=40",
    "runtime.threads=1", "runtime.log_every=1", "runtime.keep_last=2",
]  # fmt: skip


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a live process, MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def disk_mb(path: Path) -> tuple[float, float]:
    """(metrics.jsonl, whole run directory) sizes, MB."""
    metrics = path / "metrics.jsonl"
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return (metrics.stat().st_size if metrics.exists() else 0) / 2**20, total / 2**20


def start(run_dir: Path, checkpoint_steps: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scalinglab", "train", *RUN, f"runtime.checkpoint_steps={checkpoint_steps}",
           "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)


def watch(proc: subprocess.Popen, run_dir: Path, seconds: float, every: float, label: str) -> float:
    """Print RSS and disk every ``every`` s for ``seconds``; SIGTERM the run; return its peak RSS."""
    t0, peak = time.monotonic(), 0.0
    while time.monotonic() - t0 < seconds and proc.poll() is None:
        time.sleep(min(every, seconds))
        if proc.poll() is not None:
            break
        rss, peak = rss_mb(proc.pid)
        metrics, total = disk_mb(run_dir)
        print(f"{label} {time.monotonic() - t0:7.0f} s  RSS {rss:7.1f} MB (peak {peak:7.1f})  "
              f"metrics.jsonl {metrics:7.1f} MB  run dir {total:7.1f} MB", flush=True)  # fmt: skip
    proc.send_signal(signal.SIGTERM)  # checkpoint, then exit pending
    proc.wait()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600, help="length of the soak (default 600)")
    parser.add_argument("--every", type=float, default=30, help="seconds between reports (default 30)")
    parser.add_argument("--checkpoint-steps", type=int, default=50, help="checkpoint every this many steps (default 50)")
    parser.add_argument("--resume-seconds", type=float, default=15, help="how long the resumed run trains (default 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "soak"
        soak_peak = watch(start(run_dir, args.checkpoint_steps), run_dir, args.seconds, args.every, "soak  ")
        metrics, total = disk_mb(run_dir)
        resume_peak = watch(start(run_dir, args.checkpoint_steps), run_dir, args.resume_seconds, args.resume_seconds / 3, "resume")
        print(f"soak peak RSS {soak_peak:.0f} MB; resuming with {metrics:.1f} MB of metrics ({total:.1f} MB on disk): "
              f"peak RSS {resume_peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
