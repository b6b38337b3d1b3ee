"""Verified checkpoints: ``checkpoints/step_<N>/state.pt`` plus a ``COMPLETE`` marker with its checksum.

A checkpoint is built as an atomic directory (:mod:`scalinglab.atomic`), so a kill at any moment
leaves either a whole checkpoint or none, and its marker records the size and SHA-256 of
``state.pt``. Resuming verifies that record and falls back to the newest intact checkpoint, naming
each one it skipped and why; a garbled checkpoint is never loaded. The newest ``keep_last``
complete checkpoints are kept, and those of ``runtime.keep_steps`` for good.

A cooldown branch (``RunConfig.branch``, study design wsd_ladder) starts from its parent's kept
checkpoint: :func:`start_branch` links it into the branch's own directory as the branch's first
checkpoint, so the branch resumes from it like any interrupted run, then from its own checkpoints.
The parent is the sibling run directory named ``<name>-<parent identity>``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalinglab.atomic import COMPLETE, atomic_dir, remove_leftovers, verify_dir
from scalinglab.errors import TrainingError

if TYPE_CHECKING:
    import torch

    from scalinglab.train.config import BranchConfig

CHECKPOINTS = "checkpoints"
MARKER = COMPLETE
STATE = "state.pt"
_STEP_DIR = re.compile(r"step_(\d+)")
FULL_BELOW = 1 << 20
"""A file system with less free space than this after a failed ``torch.save`` is taken to be full."""


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every complete checkpoint, oldest first (complete: marked, not yet verified)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.fullmatch(d.name)
        if m and (d / MARKER).exists():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint, or None."""
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: Path, step: int, state: dict[str, Any], keep_last: int, keep_steps: Collection[int] = ()
) -> Path:
    """Write ``state`` as the checkpoint of ``step`` atomically, then drop all but the newest ``keep_last``
    and those of ``keep_steps``."""
    import torch  # the study store reads checkpoints' places without loading torch

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root, "step_*")  # left by a writer that was killed mid-checkpoint
    for stale in root.glob(".tmp-*"):  # the same, from before scalinglab.atomic named them
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step_{step}"
    with atomic_dir(final, extra={"step": step}) as tmp, open(tmp / STATE, "wb") as f:
        try:
            torch.save(state, f)
        except RuntimeError:  # torch's zip writer reports a failed write as a position mismatch, not OSError
            stat = os.statvfs(tmp)
            if stat.f_bavail * stat.f_frsize < FULL_BELOW:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / STATE)) from None
            raise
    for old_step, old in complete_checkpoints(run_dir)[:-keep_last]:
        if old_step not in keep_steps:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved in checkpoint directory ``path`` (tensors and plain data only), verified first.

    Raises :class:`TrainingError` naming the checkpoint when it is damaged (checksum, size, unreadable).
    """
    import torch

    path = Path(path)
    problem = verify_dir(path)
    if not problem:
        try:
            return torch.load(path / STATE, map_location=map_location, weights_only=True)
        except Exception as e:  # a marker from before checksums, over a damaged file
            problem = f"{STATE} cannot be read ({type(e).__name__})"
    raise TrainingError(f"checkpoint {path} is damaged: {problem}; delete it to resume from an older one.")


def load_latest(run_dir: Path, map_location: str | torch.device = "cpu") -> tuple[int, dict[str, Any]] | None:
    """(step, state) of the newest intact checkpoint, or None when the run has none yet.

    A damaged checkpoint is skipped with a warning naming it and why (it is left in place; the next
    save at its step replaces it). When checkpoints exist but none is intact, raises
    :class:`TrainingError` naming the directory and the fix.
    """
    found = complete_checkpoints(run_dir)
    skipped = []
    for step, path in reversed(found):
        try:
            state = load_checkpoint(path, map_location)
        except TrainingError as e:
            skipped.append(path.name)
            warnings.warn(f"skipping {str(e).split('; delete it')[0]}", stacklevel=2)
            continue
        return step, state
    if skipped:
        root = Path(run_dir) / CHECKPOINTS
        raise TrainingError(
            f"no intact checkpoint in {root} ({', '.join(skipped)} damaged); delete {root} to train the run "
            "from the start."
        )
    return None


def parent_dir(run_dir: Path, parent: str) -> Path | None:
    """The run directory of identity ``parent`` beside ``run_dir`` (``<name>-<identity>``), or None."""
    root = Path(run_dir).parent
    found = sorted(p for p in root.glob(f"*{parent}") if p.name == parent or p.name.endswith(f"-{parent}"))
    return found[0] if found else None


def branch_point(run_dir: Path, branch: BranchConfig) -> tuple[Path | None, Path | None]:
    """(parent directory, its complete checkpoint at ``branch.step``); either is None while it does not exist."""
    parent = parent_dir(run_dir, branch.parent)
    if parent is None:
        return None, None
    point = dict(complete_checkpoints(parent)).get(branch.step)
    return parent, point


def start_branch(run_dir: Path, branch: BranchConfig) -> None:
    """Give a cooldown branch its parent's checkpoint at ``branch.step`` as its own first checkpoint.

    A no-op once the branch has a checkpoint (it resumes from its newest). The file is hard-linked
    (copied across file systems) and re-marked, so the branch's pruning never touches the parent's.
    Raises :class:`TrainingError` naming the parent when it has not reached the step or its
    checkpoint there is damaged.
    """
    run_dir = Path(run_dir)
    if complete_checkpoints(run_dir):
        return
    parent, point = branch_point(run_dir, branch)
    if point is None:
        where = (
            f"run {parent.name}" if parent else f"no run of identity {branch.parent} beside {run_dir.name}"
        )
        raise TrainingError(
            f"cooldown branch {run_dir.name} starts from its parent's checkpoint at step {branch.step}, and "
            f"there is none ({where}); train the parent first with runtime.keep_steps including {branch.step} "
            "(study run does both)."
        )
    problem = verify_dir(point)
    if problem:
        raise TrainingError(
            f"the parent checkpoint {point} of cooldown branch {run_dir.name} is damaged: {problem}; delete the "
            "parent's run directory to train it again."
        )
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    with atomic_dir(root / point.name, extra={"step": branch.step, "branch_of": parent.name}) as tmp:
        try:
            os.link(point / STATE, tmp / STATE)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(point / STATE, tmp / STATE)
