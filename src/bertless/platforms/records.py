"""The records every platform fact is written in: a value, its unit, where it was read and when.

Providers change these figures without notice, so every figure is a record carrying the page it
was read from and the day it was read; a figure whose note says "unconfirmed" could not be checked
against the provider's own page and must be checked before anyone relies on it.

Conventions: sizes are bytes, with a provider's "MB" read as 2**20 bytes (Lambda's own error for
"250 MB" says 262144000 bytes); memory settings are MB (= MiB); prices are US dollars in the
cheapest region tier (AWS us-east-1, Google Tier 1, Azure East US).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

READ_ON = "2026-11-23"
READ_ON_WARM = "2026-11-29"  # the warm-start prices and runtime dates of issue 17
MiB = 1024 * 1024
GiB = 1024 * MiB


class UnknownPlatformError(LookupError):
    """A platform name that this module has no data for."""


class UnsupportedRuntimeError(LookupError):
    """A Python version that a platform does not offer."""


class OutOfRangeError(ValueError):
    """A setting (memory, architecture) that the platform does not accept."""


@dataclass(frozen=True, kw_only=True)
class Sourced:
    """Where a record was read: a figure without this is a guess."""

    source: str
    read_on: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Figure(Sourced, Generic[T]):
    """One limit or price. A value of None means the provider documents no cap."""

    value: T
    unit: str


@dataclass(frozen=True, kw_only=True)
class VcpuScaling(Sourced):
    """How much CPU a memory setting buys, as the documented (memory MB, vCPUs) points.

    proportional: CPU grows with memory between the points (Lambda). Otherwise a memory size gets
    the vCPUs of the next documented size up (Cloud Run tiers, Azure Flex instance sizes).
    """

    points: tuple[tuple[int, float], ...]
    proportional: bool


@dataclass(frozen=True, kw_only=True)
class Runtime(Sourced):
    """A managed Python runtime; its glibc decides which manylinux wheels can run there."""

    identifier: str
    python: str
    os: str | None = None
    glibc: str | None = None
    deprecated_on: str | None = None
    blocked_on: str | None = None  # no more creates (AWS) or deploys (Google decommission)


@dataclass(frozen=True, kw_only=True)
class PackageLimits:
    """Artifact size caps by upload path; a field left None is a path the platform lacks."""

    zip_direct_upload: Figure[int | None] | None = None
    unzipped: Figure[int | None] | None = None
    via_object_storage: Figure[int | None] | None = None
    container_image: Figure[int | None] | None = None
    layers_per_function: Figure[int] | None = None  # None: the platform has no layers


@dataclass(frozen=True, kw_only=True)
class WarmPricing:
    """What a cold start costs and what keeping instances warm costs.

    Warm capacity is provisioned concurrency on AWS, minimum instances on Google and always-ready
    instances on Azure Flex: each bills its memory (and on Google its CPU) for every second it is
    configured (`capacity_per_*`) and the requests it serves at `served_per_gb_second`. None there
    means Google's rule: capacity is billed at its idle rate only while idle, and the requests it
    serves at the on-demand price.
    """

    init_billed: Figure[bool]  # a cold start's start-up time is billed like a request's
    capacity_per_gb_second: Figure[float]
    capacity_name: str  # what the cloud calls it, for tables and sentences
    capacity_per_vcpu_second: Figure[float] | None = None
    served_per_gb_second: Figure[float] | None = None
    capacity_free_tier: bool = True  # whether the free tier applies beside warm capacity
    snapshot_cache_per_gb_second: Figure[float] | None = None  # SnapStart, per cached version
    snapshot_restore_per_gb: Figure[float] | None = None  # SnapStart, per restore
    max_concurrency: Figure[int] | None = None  # requests one instance may take at once
    idle_lifetime_s: Figure[float] | None = None  # an idle instance lives this long, then is gone
    startup_boost: Figure[float] | None = None  # vCPUs times this while starting, when asked


@dataclass(frozen=True, kw_only=True)
class Pricing:
    """On-demand prices and the rules that turn a request into billed units."""

    per_gb_second: Figure[float]  # memory; GiB-second on Google
    per_million_requests: Figure[float]
    billing_step_ms: Figure[int]
    min_billed_ms: Figure[int]
    free_requests: Figure[int]
    free_gb_seconds: Figure[int]
    per_gb_second_arm64: Figure[float] | None = None
    per_vcpu_second: Figure[float] | None = None
    free_vcpu_seconds: Figure[int] | None = None
    memory_rounding_mb: Figure[int] | None = None  # billed memory rounded up to this step
    bills_instance_memory: bool = False  # bills the instance size, not the setting
    warm: WarmPricing | None = None  # cold starts and capacity kept warm


@dataclass(frozen=True, kw_only=True)
class Platform:
    """One place a function can run, with every figure that decides whether and how it fits."""

    key: str
    name: str
    package: PackageLimits
    memory_min_mb: Figure[int]
    memory_max_mb: Figure[int]
    # None: any size in range, rounded up to an instance size where the plan bills instances
    memory_step_mb: Figure[int] | None
    vcpus: VcpuScaling | None
    timeout_s: Figure[int]
    request_bytes: Figure[int]
    response_bytes: Figure[int] | None
    runtimes: tuple[Runtime, ...]
    architectures: Figure[tuple[str, ...]]
    pricing: Pricing | None
    retires_on: Figure[str] | None = None


@dataclass(frozen=True, kw_only=True)
class VmPrice(Sourced):
    """An always-on machine to hold serverless prices against."""

    name: str
    region: str
    vcpus: int
    memory_mb: int
    usd_per_hour: float


def fig(value: T, unit: str, source: str, note: str = "", read_on: str = READ_ON) -> Figure[T]:
    """A figure read on `read_on`: by default READ_ON, the day most records here were checked."""
    return Figure(value=value, unit=unit, source=source, read_on=read_on, note=note)
