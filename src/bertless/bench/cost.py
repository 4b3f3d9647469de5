"""What a request costs on each cloud, priced from the figures in `bertless.platforms.limits`.

The list prices look alike; the billing rules are what differ. Lambda bills configured memory for
the duration rounded up to 1 ms. Cloud Run functions bills vCPU-seconds and GiB-seconds in 100 ms
steps, and the vCPUs follow the memory setting. Azure Flex Consumption bills its whole instance's
memory for at least 1,000 ms. Azure Consumption bills the memory a function used, rounded up to
128 MB, for at least 100 ms. This module applies those rules to one measured duration so the clouds
can be read side by side. Free tiers are kept apart: they are shared by every function in an
account, so a benchmark of one function must not spend them silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from bertless.platforms import limits

if TYPE_CHECKING:
    from rich.table import Table

HOURS_PER_MONTH = 730  # 365 x 24 / 12, the month the AWS and Azure calculators use
CLOUDS = ("aws", "gcp", "azure", "azure-consumption")
DEFAULT_VM = "t4g.nano"
_MILLION = 1_000_000


@dataclass(frozen=True)
class CostBreakdown:
    """One request's billed units, and their price for a million such requests."""

    cloud: str
    platform: str
    arch: str
    duration_ms: float
    memory_mb: int
    billed_ms: int
    billed_memory_mb: int
    billed_vcpus: float | None
    gb_seconds: float
    vcpu_seconds: float
    compute_per_million: float
    requests_per_million: float
    note: str = ""

    @property
    def total_per_million(self) -> float:
        return self.compute_per_million + self.requests_per_million


@dataclass(frozen=True)
class MonthlyCost:
    """A month at a steady rate, with and without the account's free tier, beside a VM."""

    requests_per_month: int
    without_free_tier: float
    with_free_tier: float
    vm: str
    vm_monthly: float
    break_even_requests_per_month: float  # where the bill without free tier equals the VM's


@dataclass(frozen=True)
class CostRow:
    """A cloud's line in a report; `unavailable` says why a cloud cannot run the setting."""

    cloud: str
    breakdown: CostBreakdown | None = None
    monthly: MonthlyCost | None = None
    unavailable: str = ""


def cost_per_million(
    cloud: str, duration_ms: float, memory_mb: int, arch: str = "x86_64"
) -> CostBreakdown:
    """Price a million requests of `duration_ms` at `memory_mb` under the cloud's billing rules."""
    if duration_ms <= 0:
        raise ValueError(f"duration must be positive; got {duration_ms} ms")
    platform = limits.get_platform(cloud)
    pricing = _pricing(platform)
    billed_ms = _billed_ms(pricing, duration_ms)
    billed_mb = _billed_memory_mb(platform, pricing, memory_mb)
    vcpus = limits.vcpus_for_memory(cloud, memory_mb) if pricing.per_vcpu_second else None
    gb_seconds = billed_ms / 1000 * billed_mb / 1024
    vcpu_seconds = billed_ms / 1000 * vcpus if vcpus is not None else 0.0
    compute = gb_seconds * gb_second_price(platform, arch) + vcpu_seconds * vcpu_second_price(
        pricing
    )
    return CostBreakdown(
        cloud=cloud,
        platform=platform.name,
        arch=arch,
        duration_ms=duration_ms,
        memory_mb=memory_mb,
        billed_ms=billed_ms,
        billed_memory_mb=billed_mb,
        billed_vcpus=vcpus,
        gb_seconds=gb_seconds,
        vcpu_seconds=vcpu_seconds,
        compute_per_million=compute * _MILLION,
        requests_per_million=pricing.per_million_requests.value,
        note=_note(platform),
    )


def monthly_cost(
    cloud: str,
    duration_ms: float,
    memory_mb: int,
    requests_per_month: int,
    arch: str = "x86_64",
    vm: str = DEFAULT_VM,
) -> MonthlyCost:
    """A month of `requests_per_month` requests, with and without the free tier, beside a VM."""
    return _monthly(cost_per_million(cloud, duration_ms, memory_mb, arch), requests_per_month, vm)


def cost_report(
    duration_ms: float,
    memory_mb: int,
    arch: str = "x86_64",
    requests_per_month: int | None = None,
    vm: str = DEFAULT_VM,
) -> list[CostRow]:
    """Every cloud for one measurement; `arch` applies to AWS, the only cloud that prices it."""
    rows = []
    for cloud in CLOUDS:
        try:
            breakdown = cost_per_million(
                cloud, duration_ms, memory_mb, arch if cloud == "aws" else "x86_64"
            )
        except limits.OutOfRangeError as error:
            rows.append(CostRow(cloud, unavailable=str(error)))
            continue
        monthly = (
            None if requests_per_month is None else _monthly(breakdown, requests_per_month, vm)
        )
        rows.append(CostRow(cloud, breakdown, monthly))
    return rows


def render_cost_table(report: list[CostRow]) -> Table:
    """The report as a rich table; rich is imported here so the module works without it."""
    from rich.table import Table

    first = next((row.breakdown for row in report if row.breakdown), None)
    title = f"{first.duration_ms:g} ms at {first.memory_mb} MB" if first else "Cost"
    with_monthly = any(row.monthly for row in report)
    table = Table(title=f"Cost per million requests, {title}")
    table.add_column("cloud")
    headers = ["billed per request", "compute", "requests", "total"]
    if with_monthly:
        headers += ["month, no free tier", "month, free tier", "always-on VM"]
    for header in headers:
        table.add_column(header, justify="right")
    notes = []
    for row in report:
        b = row.breakdown
        if b is None:
            table.add_row(limits.get_platform(row.cloud).name, f"n/a: {row.unavailable}")
            continue
        cpu = f" x {b.billed_vcpus:g} vCPU" if b.billed_vcpus is not None else ""
        cells = [
            b.platform,
            f"{b.billed_ms} ms x {b.billed_memory_mb} MB{cpu}",
            _usd(b.compute_per_million),
            _usd(b.requests_per_million),
            _usd(b.total_per_million),
        ]
        if row.monthly:
            m = row.monthly
            vm = f"{_usd(m.vm_monthly)} ({m.vm})"
            cells += [_usd(m.without_free_tier), _usd(m.with_free_tier), vm]
        table.add_row(*cells)
        if b.note:
            notes.append(f"{b.platform}: {b.note}")
    table.caption = "\n".join(notes)
    return table


def report_to_json(report: list[CostRow]) -> dict[str, Any]:
    """The report as plain data, with the pages each cloud's prices were read from."""
    return {"rows": [_row_to_json(row) for row in report]}


def _row_to_json(row: CostRow) -> dict[str, Any]:
    if row.breakdown is None:
        return {"cloud": row.cloud, "unavailable": row.unavailable}
    pricing = _pricing(limits.get_platform(row.cloud))
    return {
        **asdict(row.breakdown),
        "total_per_million": row.breakdown.total_per_million,
        "monthly": asdict(row.monthly) if row.monthly else None,
        "price_sources": sorted({record.source for record in limits.records(pricing)}),
    }


def _monthly(breakdown: CostBreakdown, requests: int, vm_name: str) -> MonthlyCost:
    if requests < 0:
        raise ValueError(f"requests per month cannot be negative; got {requests}")
    platform = limits.get_platform(breakdown.cloud)
    pricing = _pricing(platform)
    vm = limits.get_vm(vm_name)
    with_free_tier = (
        _beyond(requests * breakdown.gb_seconds, pricing.free_gb_seconds)
        * gb_second_price(platform, breakdown.arch)
        + _beyond(requests * breakdown.vcpu_seconds, pricing.free_vcpu_seconds)
        * vcpu_second_price(pricing)
        + _beyond(requests, pricing.free_requests) * pricing.per_million_requests.value / _MILLION
    )
    vm_monthly = vm.usd_per_hour * HOURS_PER_MONTH
    return MonthlyCost(
        requests_per_month=requests,
        without_free_tier=requests * breakdown.total_per_million / _MILLION,
        with_free_tier=with_free_tier,
        vm=vm.name,
        vm_monthly=vm_monthly,
        break_even_requests_per_month=vm_monthly / breakdown.total_per_million * _MILLION,
    )


def _pricing(platform: limits.Platform) -> limits.Pricing:
    if platform.pricing is None:
        raise limits.OutOfRangeError(f"no prices are recorded for {platform.name}")
    return platform.pricing


def _billed_ms(pricing: limits.Pricing, duration_ms: float) -> int:
    step = pricing.billing_step_ms.value
    longest = max(duration_ms, pricing.min_billed_ms.value)
    # Rounded to 9 places first so float noise (100.00000000001) does not bill an extra step.
    return math.ceil(round(longest / step, 9)) * step


def _billed_memory_mb(platform: limits.Platform, pricing: limits.Pricing, memory_mb: int) -> int:
    limits.check_memory(platform.key, memory_mb)
    if pricing.bills_instance_memory:
        return limits.instance_memory_mb(platform.key, memory_mb)
    if pricing.memory_rounding_mb is not None:
        step = pricing.memory_rounding_mb.value
        return math.ceil(memory_mb / step) * step
    return memory_mb


def gb_second_price(platform: limits.Platform, arch: str) -> float:
    """The on-demand price of a GB-second (GiB on Google) on `arch`, or why there is none."""
    pricing = _pricing(platform)
    if arch not in platform.architectures.value:
        offered = ", ".join(platform.architectures.value)
        raise limits.OutOfRangeError(f"{platform.name} runs {offered}, not {arch}")
    if arch != "arm64":
        return pricing.per_gb_second.value
    if pricing.per_gb_second_arm64 is None:
        raise limits.OutOfRangeError(f"no arm64 price is recorded for {platform.name}")
    return pricing.per_gb_second_arm64.value


def vcpu_second_price(pricing: limits.Pricing) -> float:
    """The price of a vCPU-second where CPU is billed apart from memory (Google), else 0."""
    return pricing.per_vcpu_second.value if pricing.per_vcpu_second else 0.0


def _beyond(used: float, free: limits.Figure[int] | None) -> float:
    return max(0.0, used - (free.value if free else 0))


def _note(platform: limits.Platform) -> str:
    pricing = _pricing(platform)
    notes = []
    if pricing.bills_instance_memory:
        notes.append(
            f"bills the whole instance for at least {pricing.min_billed_ms.value} ms per active "
            "period: this is the price of requests arriving one at a time; concurrent requests "
            "on one instance share it"
        )
    if pricing.memory_rounding_mb is not None:
        notes.append("bills the memory the function used: pass the measured peak")
    if platform.retires_on is not None:
        notes.append(f"retires {platform.retires_on.value}")
    return "; ".join(notes)


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
