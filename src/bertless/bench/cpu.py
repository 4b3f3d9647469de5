"""A memory size's CPU share, emulated on this machine: a cgroup CFS quota and ORT's threads.

On a cloud, memory buys CPU: Lambda gives 1 vCPU at 1,769 MB and CPU in proportion between its
documented points, Cloud Run and Azure step by tier. A local run cannot change the hardware, so
it emulates the share a memory size buys, as closely as this machine allows:
- ONNX Runtime's intra-op threads are set to max(1, round(vCPUs)) through BERTLESS_THREADS,
  what bertless would pick if it saw the platform's quota; capped at this machine's cores;
- the CPU time of the serving processes is capped at the vCPU share by a cgroup CFS quota
  (cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`, in a child group made for the run), so that
  a 512 MB Lambda's 0.29 vCPU runs at 0.29 of a core here. A quota is a ceiling, not a
  reservation: on a busy machine the processes get less, and the report records the load.
  Without a writable cgroup the CPU is not throttled, and the report says so on every row.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from bertless.bench.report import Emulation
from bertless.platforms import limits

CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class CpuLimit:
    """A cgroup whose processes together get at most `cpus` CPUs of time (a CFS quota).

    Processes join it through `wrapper()`: a shell writes its own pid into the group and then
    execs the command, so the process is throttled from its first instruction.
    """

    def __init__(self, path: Path, version: str, cpus: float) -> None:
        self.path, self.version, self.cpus = path, version, cpus
        self.quota_us = max(1000, round(cpus * PERIOD_US))  # the kernel's floor is 1 ms
        if version == "v2":
            (path / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}\n")
        else:
            (path / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (path / "cpu.cfs_quota_us").write_text(f"{self.quota_us}\n")

    @classmethod
    def create(cls, cpus: float, root: Path = CGROUP) -> CpuLimit | None:
        """A new group under `root` (v2 with the cpu controller, else v1's cpu hierarchy), or
        None when neither can be written here (no root, a read-only or delegated hierarchy)."""
        name = f"bertless-bench-{uuid.uuid4().hex[:12]}"
        controllers = root / "cgroup.controllers"
        try:
            if controllers.is_file() and "cpu" in controllers.read_text().split():
                subtree = root / "cgroup.subtree_control"
                if "cpu" not in subtree.read_text().split():
                    subtree.write_text("+cpu\n")
                path, version = root / name, "v2"
            elif (root / "cpu" / "cpu.cfs_quota_us").is_file():
                path, version = root / "cpu" / name, "v1"
            else:
                return None
            path.mkdir()
        except OSError:
            return None
        try:
            return cls(path, version, cpus)
        except OSError:
            path.rmdir()
            return None

    def wrapper(self) -> tuple[str, ...]:
        procs = str(self.path / "cgroup.procs")
        return ("/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs)

    def describe(self) -> str:
        return f"cgroup {self.version} CFS quota {self.quota_us:,} us per {PERIOD_US:,} us"

    def close(self) -> None:
        """Remove the group once its processes are gone (the kernel refuses it before)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


def emulation(cloud: str, memory_mb: int, limit: CpuLimit | None) -> Emulation:
    """The CPU a memory size buys on `cloud`, and how this machine was made to give it."""
    vcpus = limits.vcpus_for_memory(cloud, memory_mb)
    cores = os.cpu_count() or 1
    threads = min(cores, max(1, round(vcpus)))
    platform = limits.get_platform(cloud).name
    how = f"{platform} gives {memory_mb} MB {vcpus:.2f} vCPU; here: {threads} ORT thread(s)"
    if limit is None:
        how += ", CPU not throttled (no writable cgroup): small sizes look faster than they are"
        return Emulation(memory_mb, vcpus, threads, None, how)
    how += f", {limit.describe()} ({limit.cpus:.2f} CPU)"
    if vcpus > cores:
        how += f", capped at this machine's {cores} cores"
    return Emulation(memory_mb, vcpus, threads, limit.cpus, how)


@contextlib.contextmanager
def cpu_share(limit: Callable[[], CpuLimit | None]) -> Iterator[CpuLimit | None]:
    """One CPU share (or None where no cgroup is writable) for the block, released after it."""
    cpu = limit()
    try:
        yield cpu
    finally:
        if cpu:
            cpu.close()
