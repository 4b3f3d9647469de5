"""The memory sweep: every target measured at every memory size, then priced at that size.

On a cloud, memory buys CPU. Here a size's CPU share is emulated (`bench.cpu`); a deployed
function gets its memory set for real (`bench.targets`). Each size is measured warm (and cold when
asked) and priced with the platform's data (`bench.cost`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertless.bench.coldstart import AwsFunction, ColdStart
from bertless.bench.cost import cost_report
from bertless.bench.latency import BenchError, measure, request_body, task_route
from bertless.bench.report import BenchReport, SizeRun, TargetReport
from bertless.bench.targets import AwsArtifactTarget, BenchTarget, BundleTarget, UrlTarget
from bertless.platforms import limits
from bertless.platforms.names import LAMBDA_ALIAS
from bertless.say import Say, silent


@dataclass(frozen=True)
class Settings:
    requests: int
    concurrency: int
    warmup: int
    cold_starts: int
    batch_size: int
    texts: Sequence[str]
    inputs: str  # where the texts came from
    requests_per_month: int
    arch: str

    def as_dict(self) -> dict[str, Any]:
        fields = ("requests", "concurrency", "warmup", "cold_starts", "batch_size", "inputs")
        return {
            **{name: getattr(self, name) for name in fields},
            "texts": len(self.texts),
            "requests_per_month": self.requests_per_month,
            "arch": self.arch,
        }


def run(
    targets: Sequence[BenchTarget],
    sizes: Sequence[int] | None,
    settings: Settings,
    say: Say = silent,
) -> BenchReport:
    """Measure and price every target at every size (its default size when none are given)."""
    report = BenchReport(settings.as_dict())
    try:
        for target in targets:
            info = target.info()
            route = task_route(info)
            body = request_body(route, settings.texts[: settings.batch_size])
            model = info.get("model_id", "?")
            result = TargetReport(target.label, target.kind, model, info["task"])
            report.targets.append(result)
            for memory in sizes or [target.default_memory()]:
                result.runs.append(_size(target, memory, route, body, settings, say))
            target.close()  # restore a function now: the next target may be the same one
    finally:
        for target in targets:
            target.close()
    report.machine["load_average_end"] = list(os.getloadavg())
    return report


def _size(
    target: BenchTarget, memory: int, route: str, body: bytes, settings: Settings, say: Say
) -> SizeRun:
    setting, limit = target.emulate(memory)
    cold: ColdStart | str = "not asked for (--cold-starts 0)"
    if settings.cold_starts > 0:
        say(f"{target.label} at {memory} MB: {settings.cold_starts} cold start(s)")
        cold = target.cold_starts(setting, limit, settings.cold_starts, route, body)
    say(f"{target.label} at {memory} MB: {settings.requests} requests")
    with target.serving(setting, limit, settings.concurrency) as endpoint:
        latency = measure(
            endpoint,
            route,
            settings.texts,
            settings.requests,
            settings.concurrency,
            settings.warmup,
            settings.batch_size,
        )
    billed = latency.billed_duration()
    duration, source = billed if billed else (None, "nothing: no request was answered")
    arch = getattr(getattr(target, "artifact", None), "arch", settings.arch)
    return SizeRun(
        emulation=setting,
        latency=latency,
        cold_start=cold if isinstance(cold, ColdStart) else None,
        cold_start_note="" if isinstance(cold, ColdStart) else cold,
        duration_ms=duration,
        duration_source=source,
        cost=cost_report(duration, memory, arch, settings.requests_per_month) if duration else [],
    )


def resolve_target(
    text: str,
    say: Say,
    api_key: str | None = None,
    sigv4_region: str | None = None,
    aws_function: str | None = None,
) -> BenchTarget:
    """A URL, a bundle directory, or an artifact (its zip or its report), from the argument."""
    if text.startswith(("http://", "https://")):
        function = None
        if aws_function:
            name, _, alias = aws_function.partition(":")
            function = AwsFunction(name, alias or LAMBDA_ALIAS, sigv4_region)
        return UrlTarget(text, api_key, sigv4_region, function)
    path = Path(text)
    if path.is_dir():
        if not (path / "bundle.json").is_file():
            raise BenchError(f"{path} is a directory without bundle.json: not a bundle.")
        return BundleTarget(path)
    if path.is_file() and path.suffix in (".zip", ".json"):
        return AwsArtifactTarget(path, say)
    raise BenchError(
        f"{text} is not a URL, a bundle directory or an artifact zip (or it does not exist)."
    )


def check_sizes(targets: Sequence[BenchTarget], sizes: Sequence[int] | None) -> None:
    """Refuse a sweep that cannot happen before any time is spent on it."""
    if not sizes:
        return
    for size in sizes:
        limits.check_memory("aws", size)
    for target in targets:
        if isinstance(target, UrlTarget) and target.function is None and len(sizes) > 1:
            raise BenchError(
                f"{target.label}: a URL's memory can only be changed with --aws-function NAME; "
                "pass one --memory size (the one it has) to price it."
            )
