"""A month's bill with cold starts and warm capacity, for each cloud and each way to keep it warm.

`cost.py` prices one warm request. A month also pays for what happens between requests: the cold
starts (AWS bills the INIT phase of zip functions since 1 August 2025; Cloud Run bills container
start-up) and whatever is kept warm to avoid them (provisioned concurrency, SnapStart's snapshot
cache, minimum instances, always-ready instances). This module adds both to the per-request
price, for a steady rate of requests, and finds where each option costs as much as a VM.

The model, stated once so every figure can be checked by hand:
- Requests arrive at a steady rate (or, with a daily profile, at each hour's rate for the cold
  starts, coldrate.py). By Little's law `R x d / month` requests are in flight on
  average; an instance that takes `concurrency` requests at once shares its billed time among
  min(in flight, concurrency) of them, never fewer than one.
- `N` warm instances serve the share N / (instances busy on average) of the requests, all of it
  when they suffice; those requests have no cold start. The rest run on demand, and a share
  `cold_start_rate` of them pays a cold start of `cold_start_ms`; with a daily profile the cold
  starts are derived instead from the profile and the platform's idle lifetime (coldrate.py).
- SnapStart replaces each cold start's billed INIT by a restore (per GB of memory) and caches one
  published version's snapshot all month.
- Free tiers are left out: they are shared by every function of an account, and provisioned
  concurrency and always-ready instances get none.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from bertless.bench.coldrate import ColdStarts, month_of_cold_starts
from bertless.bench.cost import (
    DEFAULT_VM,
    HOURS_PER_MONTH,
    cost_per_million,
    gb_second_price,
    vcpu_second_price,
)
from bertless.platforms import limits
from bertless.platforms.records import WarmPricing

SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
WARM_CLOUDS = ("aws", "gcp", "azure")
ON_DEMAND, SNAPSTART, WARM, BOOST = "on demand", "SnapStart", "warm", "startup CPU boost"
_MILLION = 1_000_000
_MOST_REQUESTS = 10.0**13  # where the break-even search gives up
_MOST_VCPUS = 8.0  # Cloud Run's largest instance, which the boost does not pass
DEFAULT_COLD_START_RATE = 0.01
"""The share of requests that meet a cold start unless told: AWS's INIT billing post puts cold
starts "under 1% of invocations" in production (limits.AWS's warm pricing, init_billed)."""


@dataclass(frozen=True)
class Traffic:
    """What a month asks of a function, and what it measured to take."""

    requests_per_month: float
    duration_ms: float  # a warm request, measured (q50)
    cold_start_ms: float  # the start-up before the first answer, measured
    cold_start_rate: float  # the share of on-demand requests that meet a cold start
    memory_mb: int
    concurrency: int = 1  # requests one instance takes at once (Cloud Run, Azure Flex)
    profile: tuple[float, ...] | None = None  # requests in each hour of a typical day: derive
    boosted_cold_start_ms: float | None = None  # the start-up with startup CPU boost, measured


@dataclass(frozen=True)
class Option:
    """A way to run: on demand, SnapStart (AWS), or `instances` kept warm."""

    kind: str
    instances: int = 0


@dataclass(frozen=True)
class OptionCost:
    """A month of `traffic` on one cloud with one option, in its parts."""

    cloud: str
    platform: str
    option: str  # as the cloud calls it: "provisioned concurrency 2"
    requests_part: float  # request fees and the warm requests' compute
    cold_starts_part: float
    warm_capacity_part: float
    cold_starts: float  # how many a month
    break_even_requests_per_month: float | None  # None: cheaper than the VM at any traffic
    note: str = ""
    derived: ColdStarts | None = None  # the cold starts and instances a daily profile gives

    @property
    def total(self) -> float:
        return self.requests_part + self.cold_starts_part + self.warm_capacity_part


def options_for(cloud: str, warm_instances: int, cpu_boost: bool = False) -> list[Option]:
    """The options a cloud offers: on demand, SnapStart on AWS, startup CPU boost on Cloud Run
    when asked, and `warm_instances` kept warm."""
    found = [Option(ON_DEMAND)]
    if cloud == "aws":
        found.append(Option(SNAPSTART))
    if cpu_boost and cloud == "gcp":
        found.append(Option(BOOST))
    if warm_instances > 0:
        found.append(Option(WARM, warm_instances))
    return found


def option_cost(
    cloud: str,
    option: Option,
    traffic: Traffic,
    arch: str = "x86_64",
    vm: str = DEFAULT_VM,
) -> OptionCost:
    """Price a month of `traffic` on `cloud` run as `option`, with its break-even against `vm`."""
    found = month(cloud, option, traffic, arch)
    vm_monthly = limits.get_vm(vm).usd_per_hour * HOURS_PER_MONTH

    def total_at(requests: float) -> float:
        return month(cloud, option, replace(traffic, requests_per_month=requests), arch).total

    return replace(found, break_even_requests_per_month=_break_even(total_at, vm_monthly))


def warm_report(
    traffic: Traffic,
    warm_instances: int = 1,
    arch: str = "x86_64",
    vm: str = DEFAULT_VM,
    cpu_boost: bool = False,
) -> list[OptionCost | str]:
    """Every cloud and option for `traffic`; a sentence in place of an option a cloud refuses."""
    rows: list[OptionCost | str] = []
    for cloud in WARM_CLOUDS:
        for option in options_for(cloud, warm_instances, cpu_boost):
            try:
                rows.append(option_cost(cloud, option, traffic_for(cloud, traffic), arch, vm))
            except limits.OutOfRangeError as error:
                rows.append(f"{limits.get_platform(cloud).name}, {option.kind}: {error}")
    return rows


def traffic_for(cloud: str, traffic: Traffic) -> Traffic:
    """`traffic` as `cloud` takes it: a cloud that serves one request per instance (Lambda)
    gets concurrency 1, so one --concurrency can price Cloud Run and Azure Flex beside it."""
    pricing = limits.get_platform(cloud).pricing
    warm = pricing.warm if pricing else None
    if warm is not None and warm.max_concurrency is not None and warm.max_concurrency.value == 1:
        return replace(traffic, concurrency=1)
    return traffic


def month(cloud: str, option: Option, traffic: Traffic, arch: str = "x86_64") -> OptionCost:
    """A month of `traffic` on `cloud` run as `option`, in its parts; no break-even searched."""
    _check(traffic)
    platform = limits.get_platform(cloud)
    pricing, warm = _warm_pricing(platform, option, traffic, arch)
    one = cost_per_million(cloud, traffic.duration_ms, traffic.memory_mb, arch)
    notes = []
    gb = one.billed_memory_mb / 1024  # GiB on Google: its MB are MiB
    vcpus = one.billed_vcpus or 0.0
    if one.billed_vcpus is not None and traffic.concurrency > 1 and vcpus < 1:
        notes.append(f"concurrency above 1 needs 1 vCPU: billed 1, not {vcpus:g}")
        vcpus = 1.0
    gb_price = gb_second_price(platform, arch)
    vcpu_price = vcpu_second_price(pricing)
    served_price = warm.served_per_gb_second.value if warm.served_per_gb_second else gb_price

    requests = traffic.requests_per_month
    in_flight = requests * traffic.duration_ms / 1000 / SECONDS_PER_MONTH
    sharing = min(max(in_flight, 1.0), traffic.concurrency)
    billed_s = one.billed_ms / 1000 / sharing  # an instance's billed time per request
    busy_instances = requests * billed_s / SECONDS_PER_MONTH
    served_warm = 0.0  # the share of requests warm instances serve
    if option.kind == WARM:
        served_warm = min(1.0, option.instances / busy_instances) if busy_instances else 1.0
    on_demand = requests * (1 - served_warm)
    cold_starts = on_demand * traffic.cold_start_rate
    derived = None
    if traffic.profile is not None:
        derived = _derived(platform, warm, option, traffic)
        cold_starts = derived.per_month
    requests_part = (
        on_demand * billed_s * (gb * gb_price + vcpus * vcpu_price)
        + requests * served_warm * billed_s * (gb * served_price + vcpus * vcpu_price)
        + requests * pricing.per_million_requests.value / _MILLION
    )

    label, cold_part, capacity = ON_DEMAND, 0.0, 0.0
    if option.kind == SNAPSTART and warm.snapshot_cache_per_gb_second:
        label = SNAPSTART
        restore = warm.snapshot_restore_per_gb.value if warm.snapshot_restore_per_gb else 0.0
        cold_part = cold_starts * gb * restore
        capacity = gb * SECONDS_PER_MONTH * warm.snapshot_cache_per_gb_second.value
        notes.append("one published version cached all month; each restore billed per GB")
    elif option.kind == BOOST and warm.startup_boost is not None:
        label = f"{ON_DEMAND}, {BOOST}"
        start_ms = traffic.boosted_cold_start_ms
        if start_ms is None:
            start_ms = traffic.cold_start_ms
            notes.append("start-up as long as without the boost: give the boosted one measured")
        boosted = min(vcpus * warm.startup_boost.value, _MOST_VCPUS)
        init_s = _billed_ms(pricing, start_ms) / 1000
        cold_part = cold_starts * init_s * (gb * gb_price + boosted * vcpu_price)
        notes.append(f"start-up billed at {boosted:g} vCPUs (unconfirmed)")
    elif warm.init_billed.value:
        init_s = _billed_ms(pricing, traffic.cold_start_ms) / 1000
        cold_part = cold_starts * init_s * (gb * gb_price + vcpus * vcpu_price)
    else:
        notes.append("start-up not billed (unconfirmed)")
    if option.kind == WARM:
        label = f"{warm.capacity_name} {option.instances}"
        seconds = option.instances * SECONDS_PER_MONTH
        if warm.served_per_gb_second is None:  # billed while idle; busy time is billed as served
            seconds = max(0.0, seconds - requests * served_warm * billed_s)
        cpu = warm.capacity_per_vcpu_second.value if warm.capacity_per_vcpu_second else 0.0
        capacity = seconds * (gb * warm.capacity_per_gb_second.value + vcpus * cpu)
    if traffic.concurrency > 1:
        label += f", concurrency {traffic.concurrency}"
    return OptionCost(
        cloud=cloud,
        platform=platform.name,
        option=label,
        requests_part=requests_part,
        cold_starts_part=cold_part,
        warm_capacity_part=capacity,
        cold_starts=cold_starts,
        break_even_requests_per_month=None,
        note="; ".join(notes),
        derived=derived,
    )


def _derived(
    platform: limits.Platform, warm: WarmPricing, option: Option, traffic: Traffic
) -> ColdStarts:
    """The cold starts `traffic`'s daily profile gives on `platform`, its warm instances kept."""
    if warm.idle_lifetime_s is None or traffic.profile is None:
        raise limits.OutOfRangeError(
            f"no idle lifetime is recorded for {platform.name}: give --cold-start-rate instead "
            "of a traffic profile"
        )
    return month_of_cold_starts(
        traffic.profile,
        traffic.requests_per_month,
        traffic.duration_ms / 1000,
        traffic.concurrency,
        warm.idle_lifetime_s.value,
        option.instances if option.kind == WARM else 0,
    )


def _warm_pricing(
    platform: limits.Platform, option: Option, traffic: Traffic, arch: str
) -> tuple[limits.Pricing, WarmPricing]:
    """The platform's prices, or the sentence saying why this option cannot be priced there."""
    pricing = platform.pricing
    if pricing is None or pricing.warm is None:
        raise limits.OutOfRangeError(
            f"no cold-start or warm prices are recorded for {platform.name}"
        )
    warm = pricing.warm
    if option.kind == SNAPSTART and warm.snapshot_cache_per_gb_second is None:
        raise limits.OutOfRangeError(f"{platform.name} offers no SnapStart")
    if option.kind == BOOST and warm.startup_boost is None:
        raise limits.OutOfRangeError(f"{platform.name} offers no startup CPU boost")
    if option.kind in (SNAPSTART, WARM) and arch != "x86_64":
        name = SNAPSTART if option.kind == SNAPSTART else warm.capacity_name
        raise limits.OutOfRangeError(f"{name} is priced here for x86_64 only, not {arch}")
    most = warm.max_concurrency.value if warm.max_concurrency else 1
    if traffic.concurrency > most:
        raise limits.OutOfRangeError(
            f"{platform.name} takes at most {most} request(s) per instance at once; "
            f"got concurrency {traffic.concurrency}"
        )
    return pricing, warm


def _check(traffic: Traffic) -> None:
    if traffic.requests_per_month < 0:
        raise ValueError(f"requests per month cannot be negative; got {traffic.requests_per_month}")
    if traffic.cold_start_ms < 0:
        raise ValueError(f"a cold start cannot take {traffic.cold_start_ms} ms")
    if not 0 <= traffic.cold_start_rate <= 1:
        raise ValueError(
            f"the cold-start rate is a share from 0 to 1; got {traffic.cold_start_rate}"
        )
    if traffic.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1; got {traffic.concurrency}")


def _billed_ms(pricing: limits.Pricing, duration_ms: float) -> int:
    """A start-up's billed time: the cloud's step, without the per-request minimum."""
    step = pricing.billing_step_ms.value
    return math.ceil(round(duration_ms / step, 9)) * step


def _break_even(total_at: Callable[[float], float], vm_monthly: float) -> float | None:
    """Requests a month where the bill reaches the VM's: 0 if it starts above, None if never."""
    if total_at(0) >= vm_monthly:
        return 0.0
    low, high = 0.0, _MOST_REQUESTS
    if total_at(high) < vm_monthly:
        return None
    for _ in range(200):  # the bill never falls as requests grow: halve the interval
        middle = (low + high) / 2
        low, high = (middle, high) if total_at(middle) < vm_monthly else (low, middle)
        if high - low < 1:
            break
    return high


def cold_start_words(traffic: Traffic) -> str:
    """Which requests meet a cold start, in words for a title."""
    if traffic.profile is None:
        return f"{traffic.cold_start_rate:.2%} of on-demand requests"
    return "the requests a daily profile leaves cold"
