"""The packaging report: what takes the space, every limit beside its figure, and the proof.

Users of other packagers most often find out at upload that a package is too large; this report
answers before upload, and its JSON (beside the zip) is what `deploy` reads to know the artifact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bertless.core.errors import BertlessError

SCHEMA_VERSION = 1
MB = 1024 * 1024
WARN_WITHIN = 0.10  # a figure within 10% of its limit is reported as a warning


class PackagingError(BertlessError):
    """A package that cannot be built; the message says why and what to do."""


class LimitError(PackagingError):
    """A package that breaks a platform limit: refused before anything is uploaded."""

    def __init__(self, message: str, check: LimitCheck) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class LimitCheck:
    """One limit checked: the artifact's figure beside the platform's, and where that was read."""

    name: str
    figure: float | str
    limit: float | str | None  # None: the provider documents no cap
    unit: str
    status: str  # "ok", "warning", "refused", "no cap", "object storage", "skipped"
    source: str
    read_on: str = ""
    note: str = ""


@dataclass(frozen=True)
class Component:
    """A part of the artifact (the bundle, one runtime package, the rest) and its share of bytes."""

    name: str
    files: int
    unzipped_bytes: int
    zipped_bytes: int


@dataclass
class Report:
    cloud: str
    file: str
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    entry_point: str
    python: str
    arch: str
    runtime: str
    glibc: str
    memory_mb: int
    peak_memory_mb: float
    upload: str  # "direct", or "object storage" when the zip is over the direct-upload limit
    bundle: dict[str, Any]
    checks: list[LimitCheck]
    space: list[Component]
    wheels: list[dict[str, str]]
    dropped: list[dict[str, Any]]
    downloaded: int
    proof: dict[str, Any] = field(default_factory=dict)
    # "included", "left out" (over the unzipped limit), "skipped" (no target CPython here) or
    # "not shipped" (the platform compiles its own); why, and the .pyc's cache tag, count, size
    bytecode: dict[str, Any] = field(default_factory=dict)
    # AWS with a layer: the layer zip beside this one (name, file, sha256, zipped and unzipped
    # bytes); `zipped_bytes` above is then the function zip's, `unzipped_bytes` both together
    layer: dict[str, Any] | None = None
    concurrency: int = 1  # requests at once the peak memory was measured with (`--concurrency`)
    schema_version: int = SCHEMA_VERSION

    @property
    def warnings(self) -> list[LimitCheck]:
        return [c for c in self.checks if c.status == "warning"]

    def write(self, path: Path) -> None:
        """Write the JSON deterministically: same artifact, same report bytes."""
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Report:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise PackagingError(
                f"{path} is not a packaging report ({error}); build again with `bertless package`."
            ) from None
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise PackagingError(
                f"{path} has report schema {raw.get('schema_version')}, not {SCHEMA_VERSION}; "
                "build again with this bertless."
            )
        raw["checks"] = [LimitCheck(**c) for c in raw["checks"]]
        raw["space"] = [Component(**c) for c in raw["space"]]
        return cls(**raw)


def classify(figure: float, limit: float | None) -> str:
    """ "ok", "warning" within 10% of the limit, "refused" over it, "no cap" without one."""
    if limit is None:
        return "no cap"
    if figure > limit:
        return "refused"
    return "warning" if figure >= limit * (1 - WARN_WITHIN) else "ok"


def megabytes(size: float) -> str:
    return f"{size / MB:,.1f} MB"


def warning_text(check: LimitCheck) -> str:
    """One line for a check within 10% of its limit."""
    return (
        f"{check.name} is {_show(check.figure, check.unit)}, within 10% of the "
        f"{_show(check.limit or 0, check.unit)} limit ({check.source})"
    )


def render(report: Report) -> list[Any]:
    """Rich tables for the terminal (the space, then the limits) and the bytecode line."""
    from rich.table import Table

    space = Table(title=f"{report.file}: what takes the space", title_justify="left")
    for column in ("part", "files", "unzipped", "zipped", "share"):
        space.add_column(column, justify="left" if column == "part" else "right")
    for part in report.space:
        share = part.unzipped_bytes / report.unzipped_bytes if report.unzipped_bytes else 0
        space.add_row(
            part.name,
            str(part.files),
            megabytes(part.unzipped_bytes),
            megabytes(part.zipped_bytes),
            f"{share:.0%}",
        )
    space.add_row(
        "total",
        str(sum(p.files for p in report.space)),
        megabytes(report.unzipped_bytes),
        megabytes(report.zipped_bytes),
        "",
        style="bold",
    )
    limits = Table(title=f"{report.cloud} limits, checked", title_justify="left")
    for column in ("limit", "figure", "platform", "status", "source"):
        limits.add_column(column, overflow="fold")
    colours = {"refused": "red", "warning": "yellow", "ok": "green"}
    for check in report.checks:
        colour = colours.get(check.status, "cyan")
        limits.add_row(
            check.name,
            _show(check.figure, check.unit),
            "no cap" if check.limit is None else _show(check.limit, check.unit),
            f"[{colour}]{check.status}[/]",
            check.source,
        )
    bytecode = report.bytecode
    lines = [f"bytecode {bytecode['status']}: {bytecode['reason']}"] if bytecode else []
    if report.layer:
        layer = report.layer
        lines.append(
            f"layer {layer['name']}: {layer['file']}, {megabytes(layer['zipped_bytes'])} zipped, "
            f"{megabytes(layer['unzipped_bytes'])} unzipped; the total above counts the function "
            "zip's zipped size only"
        )
    return [space, limits, *lines]


def _show(value: float | str, unit: str) -> str:
    if unit == "bytes" and isinstance(value, (int, float)):
        return megabytes(value)
    return f"{value:,} {unit}" if isinstance(value, (int, float)) else f"{value} {unit}".strip()
