"""kill -9 at random moments: `scalinglab train` and the study driver, then the results against uninterrupted runs.

For ``train``: one tiny run is trained uninterrupted; then, in a fresh directory per episode, the
same run is started again and again and killed (SIGKILL, the whole process group) at a moment drawn
uniformly over the uninterrupted wall time, until a start finishes; episodes repeat until
``--train-kills`` kills have landed. For the driver the same with a small study whose driver alone
is killed (its pool workers exit with it), ``--driver-kills`` times. Each run must match its uninterrupted twin bitwise
(every metrics.jsonl record but wall time and speed, and the summary's losses), log every step
exactly once, and a re-run of a finished study must train nothing. Prints one row per fault class:
tried, survived, data lost.

    python benchmarks/kill_resume.py [--train-kills 20] [--driver-kills 10] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny study and run (tests/support.py)
from tests.support import TINY_RUN, cli, tiny_base, training_records, write_study  # noqa: E402

TINY = [*TINY_RUN, "model.n_layer=2", "eval.points=4", "runtime.checkpoint_steps=10", "budget.steps=300"]
"""The tests' tiny run at two layers, 300 steps, a checkpoint every 10 (later overrides win)."""
STUDY = tiny_base(steps=120, points=3, per_position=True)
LADDER = '[[design]]\nkind = "ladder"\nshapes = [[1, 32], [2, 32], [1, 48], [2, 48]]\n'
"""The study: four tiny sizes of 120 steps, a checkpoint every 10."""


def _scalinglab(args: list[str], cache: Path) -> subprocess.Popen:
    return cli(*args, cache=str(cache), stdout=subprocess.DEVNULL)


def _compare(run: Path, ref: Path) -> list[str]:
    """What differs between a run directory and its uninterrupted twin ('' when identical)."""
    problems = []
    got, want = training_records(run), training_records(ref)
    steps = [r["step"] for r in got]
    if len(steps) != len(set(steps)):
        problems.append(f"{run.name}: a step logged twice")
    if got != want:
        problems.append(f"{run.name}: metrics differ ({len(got)} records, {len(want)} uninterrupted)")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (run, ref))
    if a["final"] != b["final"] or a["best"] != b["best"] or a["steps"] != b["steps"]:
        problems.append(f"{run.name}: final losses differ")
    return problems


def _episode(start, duration: float, rng: random.Random, whole_group: bool) -> int:
    """Start and SIGKILL at uniform random moments of ``duration`` until a start finishes; the kills that landed."""
    landed = 0
    while True:
        proc = start()
        time.sleep(rng.uniform(0.0, duration))
        if proc.poll() is not None:  # it finished before the kill
            if proc.returncode != 0:
                raise SystemExit(f"a start ended with exit {proc.returncode}: {proc.stderr.read()[-2000:]}")
            return landed
        os.killpg(proc.pid, signal.SIGKILL) if whole_group else proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed += 1


def _warm_cache(cache: Path, root: Path) -> None:
    """Tokenise the corpus once, so that the timed uninterrupted runs measure training, not BPE."""
    warm = _scalinglab(["train", *TINY, "budget.steps=1", "--run-dir", str(root / "warm")], cache)
    if warm.wait() != 0:
        raise SystemExit(warm.stderr.read())


def train_kills(root: Path, cache: Path, kills: int, rng: random.Random) -> dict:
    ref = root / "train-ref"
    _warm_cache(cache, root)
    t0 = time.monotonic()
    done = _scalinglab(["train", *TINY, "--run-dir", str(ref)], cache)
    if done.wait() != 0:
        raise SystemExit(done.stderr.read())
    duration = time.monotonic() - t0
    landed, problems, episodes = 0, [], 0
    while landed < kills:  # a fresh copy of the run each episode, killed until it finishes
        run = root / f"train-killed-{episodes}"
        landed += _episode(lambda run=run: _scalinglab(["train", *TINY, "--run-dir", str(run)], cache), duration, rng, True)
        problems += _compare(run, ref)
        episodes += 1
    return {"fault": "kill -9 of train", "tried": landed, "survived": landed if not problems else 0,
            "data_lost": len(problems), "problems": problems, "episodes": episodes, "seconds_per_run": duration}  # fmt: skip


def driver_kills(root: Path, cache: Path, kills: int, rng: random.Random) -> dict:
    def study_file(name: str) -> Path:
        return write_study(root / name, "kill", LADDER, base=STUDY)

    def driver(path: Path) -> subprocess.Popen:
        return _scalinglab(["study", "run", str(path), "--workers", "2", "--no-progress"], cache)

    if not (root / "warm").exists():
        _warm_cache(cache, root)
    t0 = time.monotonic()
    ref = driver(study_file("ref"))
    if ref.wait() != 0:
        raise SystemExit(ref.stderr.read())
    duration = time.monotonic() - t0
    landed, problems, episodes, n_runs = 0, [], 0, 0
    while landed < kills:
        path = study_file(f"killed-{episodes}")
        landed += _episode(lambda path=path: driver(path), duration, rng, whole_group=False)  # the driver alone
        runs = sorted(p for p in (path.parent / "runs" / "kill").iterdir() if (p / "summary.json").exists())
        n_runs += len(runs)
        for run in runs:
            problems += _compare(run, root / "ref" / "runs" / "kill" / run.name)
        mtimes = {r: (r / "summary.json").stat().st_mtime_ns for r in runs}
        if driver(path).wait() != 0:
            problems.append(f"{path}: a re-run of the finished study failed")
        problems += [f"{r.name}: trained again after it finished" for r in runs if (r / "summary.json").stat().st_mtime_ns != mtimes[r]]
        episodes += 1
    return {"fault": "kill -9 of the study driver", "tried": landed, "survived": landed if not problems else 0,
            "data_lost": len(problems), "problems": problems, "episodes": episodes, "runs": n_runs,
            "seconds_per_study": duration}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-kills", type=int, default=20)
    ap.add_argument("--driver-kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="scalinglab-kill-") as tmp:
        root = Path(tmp)
        cache = root / "cache"
        rows = []
        if args.train_kills:
            rows.append(train_kills(root, cache, args.train_kills, rng))
        if args.driver_kills:
            rows.append(driver_kills(root, cache, args.driver_kills, rng))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'fault':<30} {'tried':>6} {'survived':>9} {'data lost':>10}")
    for r in rows:
        print(f"{r['fault']:<30} {r['tried']:>6} {r['survived']:>9} {r['data_lost']:>10}")
        for p in r["problems"]:
            print(f"  {p}")


if __name__ == "__main__":
    main()
