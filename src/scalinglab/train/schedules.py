"""What happens at which step of a run: the learning rate over the budget, and when to evaluate.

Every schedule spans exactly the run's steps, so each (N, D) point is trained with a decay matched to
its own budget (Hoffmann App B; spec §6 item 5), after a warmup kept short (Porian et al. 2024).
"""

from __future__ import annotations

import math

from scalinglab.train.config import ScheduleConfig


def warmup_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    """Warmup length in steps: ``warmup_steps`` when set, else ``warmup_fraction`` of the run."""
    steps = cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_fraction * total_steps)
    return min(steps, total_steps)


def decay_start(cfg: ScheduleConfig, total_steps: int) -> int:
    """First step (0-based) of a 'wsd' run's decay: until there it is a constant-LR run (a cooldown branch's start)."""
    decay = max(1, round(cfg.decay_fraction * total_steps))
    return max(warmup_steps(cfg, total_steps), total_steps - decay)


def lr_at(step: int, total_steps: int, peak: float, cfg: ScheduleConfig) -> float:
    """Learning rate of update ``step`` (0-based) in a run of ``total_steps`` updates.

    Linear warmup from peak/W to peak over W steps, then 'cosine' decays to the floor
    (min_lr_ratio * peak) exactly at the last step; 'wsd' holds the peak and decays linearly to the
    floor over the final decay_fraction of the run (Hägele et al. 2024); 'constant' holds the peak.
    """
    w = warmup_steps(cfg, total_steps)
    if step < w:
        return peak * (step + 1) / w
    floor = cfg.min_lr_ratio * peak
    last = total_steps - 1
    if cfg.kind == "cosine":
        progress = (step - w) / max(1, last - w)  # 0 right after warmup, 1 at the last step
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.kind == "wsd":
        start = decay_start(cfg, total_steps)  # the decay begins here and reaches the floor at the last step
        if step < start:
            return peak
        progress = (step - start + 1) / (last - start + 1)
        return peak + (floor - peak) * progress
    return peak


def eval_steps(total_steps: int, points: int) -> list[int]:
    """About ``points`` log-spaced steps in [1, total_steps] (1-based), always ending at the last step.

    Log spacing resolves the early, fast part of the learning curve that L(N, S) fits need (Kaplan §5).
    """
    if points == 1 or total_steps == 1:
        return [total_steps]
    ratio = math.log(total_steps) / (points - 1)
    steps = {round(math.exp(i * ratio)) for i in range(points)}
    return sorted(steps | {total_steps})
