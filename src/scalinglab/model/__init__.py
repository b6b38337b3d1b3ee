"""The model families (gpt.py, lstm.py, universal.py), their config and their counts.

:func:`build_model` is the one place that turns a config's ``arch`` into a module; torch is imported
only when a model is built, so configs and counts stay cheap to use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

    from scalinglab.model.config import ModelConfig


def build_model(cfg: ModelConfig) -> nn.Module:
    """The module of the config's family: GPT, LSTM or UniversalTransformer, freshly initialised."""
    if cfg.arch == "lstm":
        from scalinglab.model.lstm import LSTM

        return LSTM(cfg)
    if cfg.arch == "universal":
        from scalinglab.model.universal import UniversalTransformer

        return UniversalTransformer(cfg)
    from scalinglab.model.gpt import GPT

    return GPT(cfg)
