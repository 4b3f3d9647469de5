"""What `bertless bench` found: one record per target and memory size, as JSON and as tables.

The JSON carries everything the tables show and more (every cold-start run, the cost model's
billed units and the pages its prices came from, the machine's load), so a result can be checked
and compared later without running the benchmark again.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertless.bench.coldstart import ColdStart
from bertless.bench.cost import CLOUDS, CostRow, report_to_json
from bertless.bench.latency import LatencyResult

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class Emulation:
    """How a memory size's CPU was given to the target, and what the platform would give."""

    memory_mb: int
    vcpus: float | None  # the platform's CPU share at this memory; None when not emulated
    threads: int | None  # ORT intra-op threads set through BERTLESS_THREADS
    cpu_limit: float | None  # CPUs the local throttle allowed; None when not throttled
    how: str


@dataclass
class SizeRun:
    """One memory size of one target."""

    emulation: Emulation
    latency: LatencyResult
    cold_start: ColdStart | None
    cold_start_note: str
    duration_ms: float | None  # the duration priced: the q50 the platform would bill
    duration_source: str  # where that q50 was read, or why there is none
    cost: list[CostRow]

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mb": self.emulation.memory_mb,
            "emulation": asdict(self.emulation),
            "latency": self.latency.as_dict(),
            "cold_start": self.cold_start.as_dict() if self.cold_start else None,
            "cold_start_note": self.cold_start_note,
            "cost": {
                "duration_ms": self.duration_ms,
                "duration_source": self.duration_source,
                **report_to_json(self.cost),
            },
        }


@dataclass
class TargetReport:
    target: str
    kind: str  # "url", "bundle" or "aws artifact"
    model_id: str
    task: str
    runs: list[SizeRun] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "model_id": self.model_id,
            "task": self.task,
            "runs": [run.as_dict() for run in self.runs],
        }


@dataclass
class BenchReport:
    settings: dict[str, Any]
    targets: list[TargetReport] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=lambda: machine())

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": self.machine,
            "settings": self.settings,
            "targets": [target.as_dict() for target in self.targets],
        }

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n")


def machine() -> dict[str, Any]:
    """The machine the numbers came from: a shared, loaded machine makes every figure slower."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def render(report: BenchReport) -> list[Table]:
    """Per target: a latency table, a cost table, and a cold-start table where there were any."""
    tables = []
    for target in report.targets:
        tables += [_latency_table(target), _cost_table(target, report)]
        cold = [run for run in target.runs if run.cold_start and run.cold_start.runs]
        if cold:
            tables.append(_cold_table(target, cold))
    return tables


def _latency_table(target: TargetReport) -> Table:
    from rich.table import Table

    table = Table(title=f"Warm latency: {target.target} ({target.kind}, {target.model_id})")
    for header in ["memory", "vCPU", "q50 ms", "q95 ms", "q99 ms", "max ms", "server q50"]:
        table.add_column(header, justify="right")
    table.add_column("req/s", justify="right")
    table.add_column("errors")
    notes = []
    for run in target.runs:
        latency, emulation = run.latency, run.emulation
        client, server = latency.client_ms, latency.server_ms
        table.add_row(
            f"{emulation.memory_mb} MB",
            "as deployed" if emulation.vcpus is None else f"{emulation.vcpus:.2f}",
            *(_ms(getattr(client, q) if client else None) for q in ("q50", "q95", "q99", "max")),
            _ms(server.q50 if server else None),
            f"{latency.requests_per_s:.1f}",
            ", ".join(f"{status}: {n}" for status, n in latency.errors.items()) or "none",
        )
        notes.append(emulation.how)
        if latency.error_sample:
            notes.append(f"an error answer: {latency.error_sample[:160]}")
    table.caption = "\n".join(dict.fromkeys(notes))
    return table


def _cost_table(target: TargetReport, report: BenchReport) -> Table:
    from rich.table import Table

    per_month = report.settings.get("requests_per_month")
    table = Table(
        title=f"Cost at the measured q50: per million requests, and a month of {per_month:,} "
        "(with the free tier)"
    )
    table.add_column("memory", justify="right")
    table.add_column("priced q50", justify="right")
    for cloud in CLOUDS:
        table.add_column(cloud, justify="right")
    notes = []
    for run in target.runs:
        by_cloud = {row.cloud: row for row in run.cost}
        table.add_row(
            f"{run.emulation.memory_mb} MB",
            _ms(run.duration_ms),
            *(_cost(by_cloud.get(cloud)) for cloud in CLOUDS),
        )
        notes.append(f"priced on the {run.duration_source} q50")
    table.caption = "\n".join(dict.fromkeys(notes))
    return table


def _cold_table(target: TargetReport, runs: list[SizeRun]) -> Table:
    from rich.table import Table

    phases = [*runs[0].cold_start.phases, "total"]
    table = Table(title=f"Cold start, median of {len(runs[0].cold_start.runs)} ({target.target})")
    table.add_column("memory", justify="right")
    for phase in phases:
        table.add_column(f"{phase} ms", justify="right")
    for run in runs:
        median = run.cold_start.median()
        table.add_row(f"{run.emulation.memory_mb} MB", *(_ms(median[p]) for p in phases))
    table.caption = runs[0].cold_start.method
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cost(row: CostRow | None) -> str:
    if row is None or row.breakdown is None:
        return "n/a"
    text = f"${row.breakdown.total_per_million:,.2f}"
    if row.monthly:
        text += f"\n${row.monthly.without_free_tier:,.2f} (${row.monthly.with_free_tier:,.2f})"
    return text
