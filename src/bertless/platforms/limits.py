"""Each platform's limits, runtimes and prices, looked up by name: the one way code reads them.

The figures themselves live one module per cloud (`aws.py`, `gcp.py`, `azure.py`), each a record
with its source and the day it was read (`records.py`). Change a figure by editing its record
there, never by writing a literal elsewhere: packaging, deploy and the cost model read everything
through this module.

Override for tests: the AWS direct-upload zip limit can be lowered with the environment variable
BERTLESS_AWS_DIRECT_UPLOAD_LIMIT_BYTES (a positive integer), so a test can trip the limit with a
small artifact. Only `package_limits()` applies it; read package limits through that function.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from bertless.platforms.aws import AWS, AWS_QUOTAS, VMS
from bertless.platforms.azure import AZURE, AZURE_CONSUMPTION
from bertless.platforms.gcp import GCP, GCP_GEN1
from bertless.platforms.records import (
    Figure,
    MiB,
    OutOfRangeError,
    PackageLimits,
    Platform,
    Pricing,
    Runtime,
    Sourced,
    UnknownPlatformError,
    UnsupportedRuntimeError,
    VcpuScaling,
    VmPrice,
)

__all__ = [
    "AWS",
    "AWS_DIRECT_UPLOAD_ENV",
    "AWS_QUOTAS",
    "AZURE",
    "AZURE_CONSUMPTION",
    "GCP",
    "GCP_GEN1",
    "OTHER_PLANS",
    "PLATFORMS",
    "VMS",
    "Figure",
    "MiB",
    "OutOfRangeError",
    "PackageLimits",
    "Platform",
    "Pricing",
    "Runtime",
    "Sourced",
    "UnknownPlatformError",
    "UnsupportedRuntimeError",
    "VmPrice",
    "check_memory",
    "get_platform",
    "get_vm",
    "instance_memory_mb",
    "package_limits",
    "records",
    "require_runtime",
    "runtime",
    "vcpus_for_memory",
]

AWS_DIRECT_UPLOAD_ENV = "BERTLESS_AWS_DIRECT_UPLOAD_LIMIT_BYTES"

# --- Registry ---------------------------------------------------------------------------------
PLATFORMS: dict[str, Platform] = {"aws": AWS, "gcp": GCP, "azure": AZURE}
"""The platforms bertless deploys to."""

OTHER_PLANS: dict[str, Platform] = {"gcp-gen1": GCP_GEN1, "azure-consumption": AZURE_CONSUMPTION}
"""Older plans that differ materially; kept to compare against and to explain errors."""


def get_platform(name: str) -> Platform:
    """Look a platform up by key, naming the known keys when the name is wrong."""
    known = PLATFORMS | OTHER_PLANS
    if name not in known:
        raise UnknownPlatformError(
            f"unknown platform {name!r}; known platforms: {', '.join(sorted(known))}"
        )
    return known[name]


def get_vm(name: str) -> VmPrice:
    if name not in VMS:
        raise UnknownPlatformError(f"unknown VM {name!r}; known VMs: {', '.join(sorted(VMS))}")
    return VMS[name]


def runtime(platform: str, python: str = "3.12") -> Runtime | None:
    """The platform's runtime for a Python version ("3.12"), or None if it offers none."""
    return next((r for r in get_platform(platform).runtimes if r.python == python), None)


def require_runtime(platform: str, python: str = "3.12") -> Runtime:
    """Like `runtime`, for callers that cannot go on without one."""
    found = runtime(platform, python)
    if found is None:
        offered = ", ".join(r.python for r in get_platform(platform).runtimes)
        raise UnsupportedRuntimeError(
            f"{platform} offers no Python {python} runtime; it offers Python {offered}"
        )
    return found


def check_memory(platform: str, memory_mb: int) -> None:
    """Refuse a memory setting the platform would refuse, with the accepted range."""
    p = get_platform(platform)
    low, high = p.memory_min_mb.value, p.memory_max_mb.value
    if not low <= memory_mb <= high:
        raise OutOfRangeError(f"{p.name} memory must be {low} to {high} MB; got {memory_mb} MB")
    if p.memory_step_mb is not None and (memory_mb - low) % p.memory_step_mb.value:
        raise OutOfRangeError(
            f"{p.name} memory goes in {p.memory_step_mb.value} MB steps; got {memory_mb} MB"
        )


def instance_memory_mb(platform: str, memory_mb: int) -> int:
    """The smallest documented size that holds `memory_mb`: what a sized plan runs and bills."""
    check_memory(platform, memory_mb)
    scaling = _scaling(platform)
    return next(mb for mb, _ in scaling.points if mb >= memory_mb)


def vcpus_for_memory(platform: str, memory_mb: int) -> float:
    """The vCPUs (or CPU share) a memory setting gets; it sizes thread pools and GCP bills it."""
    check_memory(platform, memory_mb)
    scaling = _scaling(platform)
    if not scaling.proportional:
        return next(cpus for mb, cpus in scaling.points if mb >= memory_mb)
    (mb0, cpu0), *rest = scaling.points
    if memory_mb <= mb0:
        return memory_mb * cpu0 / mb0
    for mb1, cpu1 in rest:
        if memory_mb <= mb1:
            return cpu0 + (memory_mb - mb0) * (cpu1 - cpu0) / (mb1 - mb0)
        mb0, cpu0 = mb1, cpu1
    raise OutOfRangeError(f"{platform}: no vCPU figure documented for {memory_mb} MB")


def package_limits(platform: str) -> PackageLimits:
    """The platform's package caps, with the documented test override applied on AWS."""
    limits = get_platform(platform).package
    raw = os.environ.get(AWS_DIRECT_UPLOAD_ENV)
    if platform != "aws" or raw is None:
        return limits
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{AWS_DIRECT_UPLOAD_ENV} must be a positive number of bytes; got {raw!r}")
    overridden = dataclasses.replace(
        limits.zip_direct_upload, value=int(raw), note=f"overridden by {AWS_DIRECT_UPLOAD_ENV}"
    )
    return dataclasses.replace(limits, zip_direct_upload=overridden)


def records(*roots: object) -> Iterator[Sourced]:
    """Every sourced record under `roots` (default: all data here), so they can be audited."""
    for item in roots or (*PLATFORMS.values(), *OTHER_PLANS.values(), *VMS.values()):
        yield from _walk(item)


def _walk(item: object) -> Iterator[Sourced]:
    if isinstance(item, Sourced):
        yield item
    if isinstance(item, tuple):
        for element in item:
            yield from _walk(element)
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for field in dataclasses.fields(item):
            yield from _walk(getattr(item, field.name))


def _scaling(platform: str) -> VcpuScaling:
    scaling = get_platform(platform).vcpus
    if scaling is None:
        raise OutOfRangeError(f"{platform}: the provider documents no vCPU share per memory size")
    return scaling
