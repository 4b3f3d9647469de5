"""Each platform limit checked against the artifact's figure, before anything is uploaded.

A check returns what it compared (a `LimitCheck` for the report) or raises `LimitError` with one
sentence: the limit, the figure, the source the limit was read from, and what to do instead.
Every figure comes from `limits.py`; package sizes only through `package_limits()`, which applies
the documented test override.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from bertless.core.bundle import Bundle
from bertless.core.config import Config
from bertless.packaging.elf import glibc_needed
from bertless.packaging.proof import measure_peak_memory
from bertless.packaging.report import WARN_WITHIN, LimitCheck, LimitError, classify, megabytes
from bertless.packaging.wheels import WheelTarget
from bertless.platforms import limits
from bertless.platforms.limits import Figure, Platform
from bertless.say import Say


def default_memory(platform: Platform, peak_mb: float) -> int:
    """The smallest setting that holds the measured peak with 10% to spare.

    Sized plans (Google's tiers, Azure's instance sizes) get the next documented size; Lambda
    gets the next 64 MB, though its CPU share grows with memory, so more can be faster.
    """
    need = max(platform.memory_min_mb.value, math.ceil(peak_mb / (1 - WARN_WITHIN)))
    scaling = platform.vcpus
    if scaling is not None and not scaling.proportional:
        sizes = [mb for mb, _ in scaling.points if mb >= need]
        if sizes:
            return sizes[0]
    return min(math.ceil(need / 64) * 64, platform.memory_max_mb.value)


def memory_setting(
    platform: Platform, bundle: Bundle, memory_mb: int | None, say: Say, concurrency: int = 1
) -> tuple[int, float, list[LimitCheck]]:
    """The memory setting (given, or the smallest that fits), the measured peak, their checks.

    The peak is measured with CONCURRENCY worst requests at once: an instance that takes that
    many needs the memory of all of them, not of one."""
    if memory_mb is not None:
        check_memory_range(platform, memory_mb)
    cpus = limits.vcpus_for_memory(platform.key, memory_mb) if memory_mb else 1
    at_once = f", {concurrency} requests at once" if concurrency > 1 else ""
    say(f"measuring the bundle's peak memory (largest batch at max length{at_once})")
    peak = measure_peak_memory(bundle.path, max(1, math.ceil(cpus)), concurrency)
    memory = memory_mb or default_memory(platform, peak)
    return memory, peak, check_peak_memory(platform, bundle, memory, peak)


def check_python(platform: Platform, python: str) -> LimitCheck:
    """A Python version the platform has no runtime for cannot be deployed at all."""
    offered = [r.python for r in platform.runtimes]
    source = platform.runtimes[0].source
    found = limits.runtime(platform.key, python)
    check = LimitCheck(
        "Python runtime",
        python,
        ", ".join(offered),
        "",
        "ok" if found else "refused",
        found.source if found else source,
        found.read_on if found else platform.runtimes[0].read_on,
        f"{found.identifier} on {found.os or 'Linux'}" if found else "",
    )
    if found is None:
        raise LimitError(
            f"{platform.name} does not run Python {python}: it offers Python "
            f"{', '.join(offered)} ({source}); pass --python with one of those.",
            check,
        )
    return check


def check_arch(platform: Platform, arch: str) -> LimitCheck:
    """Wheels are built per CPU; a platform without that CPU cannot load them."""
    figure = platform.architectures
    ok = arch in figure.value
    check = LimitCheck(
        "CPU architecture",
        arch,
        ", ".join(figure.value),
        "",
        "ok" if ok else "refused",
        figure.source,
        figure.read_on,
        figure.note,
    )
    if not ok:
        raise LimitError(
            f"{platform.name} runs {' and '.join(figure.value)} only, not {arch} "
            f"({figure.source}); pass --arch {figure.value[0]}.",
            check,
        )
    return check


def check_bundle_alone(platform: Platform, size: int) -> list[LimitCheck]:
    """Refused early, before any wheel is fetched, when the model alone is over the cap."""
    cap = limits.package_limits(platform.key).unzipped
    if cap is None:
        return []
    check = _size_figure("bundle alone, unzipped", size, cap)
    if check.status == "refused":
        raise LimitError(
            f"{platform.name} refuses this zip: the bundle alone unzips to {megabytes(size)}, over "
            f"the {megabytes(cap.value)} limit on a function's unzipped size ({cap.source}); "
            f"{_way_out(platform)}.",
            check,
        )
    return [check]


def check_size(
    platform: Platform, what: str, size: int, cap: Figure, name: str | None = None
) -> LimitCheck:
    """`what` is "zipped" or "unzipped": the size the figure caps."""
    check = _size_figure(name or f"{what} size", size, cap)
    if check.status == "refused":
        raise LimitError(
            f"{platform.name} refuses this zip: it is {megabytes(size)} {what}, over the "
            f"{megabytes(cap.value)} limit ({cap.source}); {_way_out(platform)}.",
            check,
        )
    return check


def check_zipped(platform: Platform, size: int) -> tuple[str, list[LimitCheck]]:
    """The upload path a zip of this size takes, and the zipped-size checks on the way.

    Over the direct-upload cap is no refusal where the platform takes bigger zips through object
    storage (Lambda via S3): the report says "object storage" and deploy goes that way.
    """
    caps = limits.package_limits(platform.key)  # applies the test override of the direct cap
    direct, stored = caps.zip_direct_upload, caps.via_object_storage
    if direct is None:
        return "direct", []
    check = _size_figure("zipped size, direct upload", size, direct)
    if check.status != "refused":
        return "direct", [check]
    if stored is None:
        return "direct", [check_size(platform, "zipped", size, direct)]
    moved = dataclasses.replace(
        check,
        status="object storage",
        note="over the direct-upload cap: deploy stages it in storage",
    )
    stored_check = check_size(platform, "zipped", size, stored, "zipped size, via object storage")
    return "object storage", [moved, stored_check]


def check_memory_range(platform: Platform, memory: int) -> None:
    """A memory setting the platform would refuse at deploy is refused here."""
    try:
        limits.check_memory(platform.key, memory)
    except limits.OutOfRangeError as error:
        low, high = platform.memory_min_mb, platform.memory_max_mb
        raise LimitError(
            f"{error} ({high.source}): pass --memory between {low.value} and {high.value}.",
            LimitCheck(
                "memory setting", memory, f"{low.value}-{high.value}", "MB", "refused", high.source
            ),
        ) from None


def check_peak_memory(
    platform: Platform, bundle: Bundle, memory: int, peak: float
) -> list[LimitCheck]:
    """The measured peak against the platform's maximum, then against the setting."""
    check_memory_range(platform, memory)
    ceiling = platform.memory_max_mb
    batch = Config.from_env(bundle.manifest).max_batch_size
    worst = f"{batch} texts of {bundle.manifest.max_length} tokens"
    note = f"peak RSS of a process serving its largest request ({worst})"
    top = LimitCheck(
        "peak memory vs platform maximum",
        round(peak),
        ceiling.value,
        "MB",
        classify(peak, ceiling.value),
        ceiling.source,
        ceiling.read_on,
        note,
    )
    if top.status == "refused":
        raise LimitError(
            f"{platform.name} cannot hold this bundle: its measured peak memory is {peak:,.0f} MB "
            f"({worst}), over the platform maximum of {ceiling.value:,} MB ({ceiling.source}); "
            "export it with --quantize int8 or lower BERTLESS_MAX_BATCH_SIZE.",
            top,
        )
    setting = LimitCheck(
        "peak memory vs --memory",
        round(peak),
        memory,
        "MB",
        classify(peak, memory),
        ceiling.source,
        ceiling.read_on,
        note,
    )
    if setting.status == "refused":
        raise LimitError(
            f"{platform.name} would run out of memory: the bundle's measured peak is "
            f"{peak:,.0f} MB ({worst}), over the --memory setting of {memory:,} MB "
            f"({ceiling.source}); pass --memory {default_memory(platform, peak)} or more, or "
            "export it with --quantize int8.",
            setting,
        )
    return [setting, top]


def check_glibc(
    platform: Platform,
    runtime: limits.Runtime,
    target: WheelTarget,
    vendored: Sequence[tuple[str, Path, str]],
) -> LimitCheck:
    """Every compiled library's GLIBC symbol versions against the runtime's glibc.

    A wheel's manylinux tag is a promise; the symbol versions in the ELF file are what the loader
    checks, and a newer one fails at import on the platform ("GLIBC_2.27 not found").
    """
    limit = tuple(int(p) for p in target.glibc.split("."))
    needs = [(glibc_needed(path), f"{name} ({dist})") for name, path, dist in vendored]
    needs = [(version, where) for version, where in needs if version]
    worst, where = max(needs, default=((0,), "none"))
    found = ".".join(map(str, worst)) if needs else "none"
    source = runtime.source if runtime.glibc else "https://peps.python.org/pep-0599/"
    note = f"newest need: {where}" if needs else "no compiled library needs a versioned glibc"
    if not runtime.glibc:
        note += f"; limits.py records no glibc for {runtime.identifier}: assumed manylinux2014"
    check = LimitCheck(
        "glibc symbols of compiled libraries",
        found,
        target.glibc,
        "",
        "refused" if worst > limit else "ok",
        source,
        runtime.read_on,
        note,
    )
    if worst > limit:
        raise LimitError(
            f"{platform.name} {runtime.identifier} cannot load {where}: it needs GLIBC_{found}, "
            f"newer than the runtime's glibc {target.glibc} ({source}); report the wheel, or "
            "pick a Python whose runtime has a newer glibc.",
            check,
        )
    return check


def _size_figure(name: str, size: int, cap: Figure) -> LimitCheck:
    return LimitCheck(
        name, size, cap.value, "bytes", classify(size, cap.value), cap.source, cap.read_on, cap.note
    )


def _way_out(platform: Platform) -> str:
    image = limits.package_limits(platform.key).container_image
    advice = "export the bundle with `bertless export --quantize int8`"
    if image is not None and image.value:
        size = f"up to {image.value / 2**30:.0f} GB"
        if platform.key == "aws":  # the one cloud `--format image` builds for so far
            command = "`bertless package aws BUNDLE --format image`"
            advice += f" or build a container image ({size}): {command}"
        else:
            advice += f" or deploy it as a container image ({size})"
    return advice
