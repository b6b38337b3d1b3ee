"""``train(run_cfg)``: run one training run to completion, resuming it if it was interrupted.

This is the entry point executors call (a local process pool, Ray, SLURM, torchrun): it is
idempotent, so calling it again on a finished run is a no-op that returns the stored summary. It
holds the run directory's lock for the whole training, so two callers never write one run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from scalinglab.atomic import os_errors
from scalinglab.train.config import RunConfig
from scalinglab.train.rundir import RunLock, check_identity, read_status, read_summary, run_dir_for


def train(run_cfg: RunConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train ``run_cfg`` in ``run_dir`` (default: :func:`run_dir_for`) and return ``summary.json``'s content.

    Resumes from the newest intact checkpoint in the directory. Raises
    :class:`~scalinglab.errors.TrainingError` when the run diverges (status.json says failed, with the
    step and the reason) or the directory holds another config, :class:`~scalinglab.errors.ConfigError`
    when the config cannot run, :class:`~scalinglab.errors.LockedError` when another process is
    training the run, and :class:`~scalinglab.errors.Stopped` after a SIGTERM or SIGINT (the run stays
    pending). Under torchrun every process calls this; they train one run together, rank 0 holds the
    lock and writes its files.
    """
    path = Path(run_dir) if run_dir is not None else run_dir_for(run_cfg)
    if path.is_dir():
        check_identity(path, run_cfg)  # finished or not: a directory holds one run
    main = int(os.environ.get("RANK", "0")) == 0
    with os_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    with RunLock(path) if main else contextlib.nullcontext():
        summary = read_summary(path)
        if summary is not None and read_status(path)["state"] == "done":
            return summary
        if run_cfg.branch.parent and main:  # a cooldown branch starts from its parent's checkpoint (wsd_ladder)
            from scalinglab.train.checkpoint import start_branch

            start_branch(path, run_cfg.branch)
        from scalinglab.train.distributed import Distributed, pick_device  # torch only when there is work
        from scalinglab.train.trainer import Trainer

        device = pick_device(run_cfg.runtime.device)
        dist = Distributed.from_env(device)
        try:
            return Trainer(run_cfg, path, device, dist).run()
        finally:
            dist.close()
