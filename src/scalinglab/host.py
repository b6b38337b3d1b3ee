"""Which machine this is, for caches of measured speed and for judging a claim's process: the host name
alone is not enough (sandboxes and cloud images often share one, e.g. ``vm``, across different CPUs and
pid spaces), so the CPU model and the cores this process may use go with it, a GPU's name when one is
measured, and the kernel's boot id and pid namespace when a pid is to be tested."""

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


@lru_cache(maxsize=1)
def pid_space() -> str:
    """The pid namespace this process lives in: the kernel's boot id and the namespace's inode on Linux, so two
    processes whose spaces are equal may test each other's pids; elsewhere the host name. The host name alone
    is not enough: containers and sandboxes on a shared filesystem often share one (``vm``) while each has
    its own pids, and a live claim from another machine must not be judged dead by a pid missing here."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()
