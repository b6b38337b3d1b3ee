"""Which machine this is, for caches of measured speed: the host name alone is not enough (sandboxes and
cloud images often share one, e.g. ``vm``, across different CPUs), so the CPU model and the cores this
process may use go with it, and a GPU's name when one is measured."""

from __future__ import annotations

import os
import platform
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (its affinity, e.g. under taskset or a SLURM allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict[str, str | int]:
    """Host name, CPU model and usable cores: a cache key for what was measured on this machine."""
    return {"host": socket.gethostname(), "cpu": cpu_model(), "cores": usable_cores()}
