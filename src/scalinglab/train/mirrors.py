"""Optional mirrors of ``metrics.jsonl`` to TensorBoard and Weights & Biases (offline).

They are conveniences for watching runs; ``metrics.jsonl`` stays the source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalinglab.config import to_dict
from scalinglab.errors import ConfigError
from scalinglab.train.config import RunConfig


class Mirrors:
    """Forwards each metrics record to the trackers switched on in ``runtime``."""

    def __init__(self, cfg: RunConfig, run_dir: Path) -> None:
        self._tb = self._wandb = None
        if cfg.runtime.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("runtime.tensorboard needs TensorBoard: pip install 'scalinglab[tracking]'.") from None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if cfg.runtime.wandb:
            try:
                import wandb
            except ImportError:
                raise ConfigError("runtime.wandb needs wandb: pip install 'scalinglab[tracking]'.") from None
            self._wandb = wandb.init(
                mode="offline", dir=str(run_dir), name=run_dir.name, config=to_dict(cfg), reinit=True
            )

    def log(self, record: dict[str, Any]) -> None:
        step = record["step"]
        numbers = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
        if self._tb is not None:
            for key, value in numbers.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(numbers, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
