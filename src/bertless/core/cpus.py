"""How many CPUs this process may really use, which is rarely `os.cpu_count()` in a function."""

from __future__ import annotations

import os
from pathlib import Path


def available_cpus() -> int:
    """CPUs this process may really use: affinity, then the cgroup quota a function runs under.

    Lambda and Cloud Run give CPU in proportion to memory through cgroup quotas, while
    `os.cpu_count()` reports the host's cores; too many threads then only contend.
    """
    override = os.environ.get("BERTLESS_THREADS")
    if override and override.isdigit() and int(override) > 0:
        return int(override)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, round(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)
