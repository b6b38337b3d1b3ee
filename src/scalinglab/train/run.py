"""``train(run_cfg)``: run one training run to completion, resuming it if it was interrupted.

This is the entry point executors call (a local process pool, Ray, SLURM, torchrun): it is
idempotent, so calling it again on a finished run is a no-op that returns the stored summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalinglab.train.config import RunConfig
from scalinglab.train.rundir import read_status, read_summary, run_dir_for


def train(run_cfg: RunConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train ``run_cfg`` in ``run_dir`` (default: :func:`run_dir_for`) and return ``summary.json``'s content.

    Resumes from the newest complete checkpoint in the directory. Raises
    :class:`~scalinglab.errors.TrainingError` when the run diverges (status.json says failed, with the
    step and the reason) and :class:`~scalinglab.errors.ConfigError` when the config cannot run.
    Under torchrun every process calls this; they train one run together and rank 0 writes its files.
    """
    path = Path(run_dir) if run_dir is not None else run_dir_for(run_cfg)
    summary = read_summary(path)
    if summary is not None and read_status(path)["state"] == "done":
        return summary
    from scalinglab.train.distributed import Distributed, pick_device  # torch only when there is work
    from scalinglab.train.trainer import Trainer

    device = pick_device(run_cfg.runtime.device)
    dist = Distributed.from_env(device)
    try:
        return Trainer(run_cfg, path, device, dist).run()
    finally:
        dist.close()
