"""The month with cold starts and warm capacity as a table and as JSON (`bertless cost`).

The numbers come from `warm.py`; this module only says them, with the assumptions and sources
a reader needs under the table.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bertless.bench.cost import HOURS_PER_MONTH
from bertless.bench.warm import (
    DEFAULT_COLD_START_RATE,
    WARM_CLOUDS,
    OptionCost,
    Traffic,
    cold_start_words,
)
from bertless.platforms import limits

if TYPE_CHECKING:
    from rich.table import Table

_MILLION = 1_000_000


def render_warm_table(rows: list[OptionCost | str], traffic: Traffic, vm: str) -> Table:
    """The month per cloud and option as a rich table (rich imported here, as in cost.py)."""
    from rich.table import Table

    vm_monthly = limits.get_vm(vm).usd_per_hour * HOURS_PER_MONTH
    table = Table(
        title=f"A month of {traffic.requests_per_month:,.0f} requests: {traffic.duration_ms:g} ms "
        f"warm, {traffic.cold_start_ms:g} ms cold start for {cold_start_words(traffic)}, "
        f"{traffic.memory_mb} MB (no free tier)"
    )
    for header in ("cloud", "option"):
        table.add_column(header)
    headers = ["month", "per million", "cold starts", "warm capacity", "VM break-even"]
    if traffic.profile is not None:
        headers[3:3] = ["cold share", "instances mean / peak"]
    for header in headers:
        table.add_column(header, justify="right")
    notes = []
    for row in rows:
        if isinstance(row, str):
            notes.append(row)
            continue
        per_million = (
            row.total / traffic.requests_per_month * _MILLION if traffic.requests_per_month else 0
        )
        cells = [
            row.platform,
            row.option,
            _usd(row.total),
            _usd(per_million),
            _usd(row.cold_starts_part),
            _usd(row.warm_capacity_part),
            _requests(row.break_even_requests_per_month),
        ]
        if row.derived is not None:
            instances = f"{row.derived.mean_instances:.2f} / {row.derived.peak_instances:.2f}"
            cells[5:5] = [f"{row.derived.share:.3%}", instances]
        table.add_row(*cells)
        if row.note:
            notes.append(f"{row.platform}, {row.option}: {row.note}")
    if traffic.profile is not None:
        notes.extend(derivation_notes())
    elif traffic.cold_start_rate == DEFAULT_COLD_START_RATE:
        source = limits.AWS.pricing.warm.init_billed.source  # type: ignore[union-attr]
        notes.append(f"assumed: 1% of on-demand requests meet a cold start ({source})")
    notes.append(f"VM: {vm} at {_usd(vm_monthly)} a month")
    table.caption = "\n".join(notes)
    return table


def warm_to_json(rows: list[OptionCost | str], traffic: Traffic) -> dict[str, Any]:
    """The month per cloud and option as plain data, with the pages its prices were read from."""
    options: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, str):
            options.append({"unavailable": row})
            continue
        pricing = limits.get_platform(row.cloud).pricing
        sources = sorted({record.source for record in limits.records(pricing)})
        options.append({**asdict(row), "total": row.total, "price_sources": sources})
    return {"traffic": asdict(traffic), "free_tier": False, "options": options}


def derivation_notes() -> list[str]:
    """The assumption behind derived cold starts, and each cloud's idle lifetime with its source."""
    notes = [
        "derived: Poisson arrivals at each hour's rate, each request on the oldest instance with "
        "a free slot, an instance gone after its idle lifetime (bertless.bench.coldrate)"
    ]
    for cloud in WARM_CLOUDS:
        pricing = limits.get_platform(cloud).pricing
        lifetime = pricing.warm.idle_lifetime_s if pricing and pricing.warm else None
        if lifetime is not None:
            doubt = " (unconfirmed)" if "unconfirmed" in lifetime.note else ""
            notes.append(
                f"{limits.get_platform(cloud).name}: idle lifetime {lifetime.value / 60:g} min"
                f"{doubt}, {lifetime.source}"
            )
    return notes


def _requests(count: float | None) -> str:
    if count is None:
        return "always cheaper"
    if count == 0:
        return "never cheaper"
    return f"{count:,.0f}"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
