"""The files of an artifact, staged in order, with their bytecode, and written as a repeatable zip.

Each file is an `Entry`: its path in the zip, its bytes or the file that holds them, and the group
the report counts it under. The zip has sorted entries, fixed times and permissions, so the same
inputs give the same sha256, whatever machine builds it.

Where the platform imports straight from the unpacked zip (Lambda's read-only /var/task, Azure's
mounted run-from-package folder), Python cannot write `__pycache__`, so every cold start would
compile every module it imports from source; the zip ships `.pyc` compiled by the target's own
CPython instead (for the default model, init falls from about 730 to 450 ms). Google installs the
runtime itself and gets only bertless's few modules from the zip: nothing to gain there.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shutil
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bertless.core.bundle import MANIFEST_NAME, SEAL_NAME, Bundle, seal_bundle
from bertless.packaging.layouts import BUNDLE_DIR, Layout
from bertless.packaging.proof import find_interpreter, precompile
from bertless.packaging.report import Component, PackagingError, megabytes

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build clock in the bytes
FILE_MODE = 0o100644  # a regular file, readable by the platform's user: Lambda needs no more
# Report groups: the runtime's big parts by name, a package's helpers under it, the rest together.
GROUPS = {
    "onnxruntime": "onnxruntime",
    "numpy": "numpy",
    "tokenizers": "tokenizers",
    "msgspec": "msgspec",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of the artifact: where it goes, what it holds, and what the report counts it as."""

    name: str  # path in the zip
    source: Path | bytes
    part: str  # the report group

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size


def bundle_entries(bundle: Bundle) -> list[Entry]:
    """The bundle's manifest, the files it lists and their seal, under `bundle/`: nothing else
    in its folder. Sealing checks every file's sha256 once, here, so that the function's cold
    starts need only check sizes and CRC-32 (core.bundle)."""
    names = sorted({MANIFEST_NAME, *bundle.manifest.files})
    entries = [Entry(f"{BUNDLE_DIR}/{n}", bundle.path / n, "bundle") for n in names]
    return [*entries, Entry(f"{BUNDLE_DIR}/{SEAL_NAME}", seal_bundle(bundle.path), "bundle")]


def stage(
    layout: Layout,
    bundle: list[Entry],
    vendored: Sequence[tuple[str, Path, str]],
    pins: Sequence[str],
) -> list[Entry]:
    """Every file of the artifact, sorted by name; two parts writing one path is refused."""
    entries = [Entry(n, data, "bertless") for n, data in layout.generated(pins).items()]
    entries += [Entry(n, path, "bertless") for n, path in layout.sources().items()]
    entries += bundle
    if layout.site_packages is not None:
        prefix = f"{layout.site_packages}/" if layout.site_packages else ""
        for name, path, dist in vendored:
            entries.append(Entry(prefix + name, path, GROUPS.get(dist, "the rest")))
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.name in seen:
            raise PackagingError(
                f"two parts of the artifact both write {entry.name} ({seen[entry.name].part} and "
                f"{entry.part}); this is a packaging bug: report it."
            )
        seen[entry.name] = entry
    return sorted(entries, key=lambda e: e.name)


def add_bytecode(
    layout: Layout,
    entries: list[Entry],
    python: str,
    unzipped_cap: int | None,
    say: Callable[[str], None],
) -> tuple[list[Entry], dict[str, Any]]:
    """`entries` with a `.pyc` beside each `.py`, where the platform imports from the zip, and
    what was done for the report; left out when it would cross the unzipped size limit."""
    if layout.site_packages is None:
        return entries, {
            "status": "not shipped",
            "reason": (
                "the platform installs the runtime packages (and their bytecode) from "
                "requirements.txt; the zip holds only bertless's own few modules"
            ),
        }
    interpreter = find_interpreter(python)
    if interpreter is None:
        reason = (
            f"no CPython {python} on this machine (PATH or pyenv) to compile with; every cold "
            "start compiles the modules it imports"
        )
        say(f"bytecode skipped: {reason}")
        return entries, {"status": "skipped", "reason": reason}
    say(f"compiling bytecode with CPython {python}")
    sources = [e for e in entries if e.name.endswith(".py")]
    compiled = precompile(interpreter, [(e.name, e.source) for e in sources])
    parts = {e.name: e.part for e in sources}
    pycs = [
        Entry(_pyc_name(name, compiled.cache_tag), data, parts[name])
        for name, data in compiled.compiled.items()
    ]
    unzipped, extra = sum(e.size for e in entries), sum(e.size for e in pycs)
    record = {"cache_tag": compiled.cache_tag, "files": len(pycs), "bytes": extra}
    if compiled.failed:
        record["not_compiled"] = list(compiled.failed)
    if not bytecode_fits(unzipped, extra, unzipped_cap):
        reason = (
            f"left out: {len(pycs)} .pyc ({megabytes(extra)}) would take the artifact from "
            f"{megabytes(unzipped)} over the {megabytes(unzipped_cap or 0)} unzipped limit; "
            "every cold start compiles the modules it imports"
        )
        say(f"bytecode {reason}")
        return entries, {**record, "status": "left out", "reason": reason}
    reason = (
        f"{len(pycs)} modules precompiled by CPython {python} ({compiled.cache_tag}, "
        f"unchecked-hash), {megabytes(extra)}"
    )
    if compiled.failed:
        reason += f"; {len(compiled.failed)} files it cannot compile left as source"
    return sorted([*entries, *pycs], key=lambda e: e.name), {
        **record,
        "status": "included",
        "reason": reason,
    }


def bytecode_fits(unzipped: int, bytecode: int, cap: int | None) -> bool:
    """Whether `bytecode` more bytes keep the artifact within its unzipped limit."""
    return cap is None or unzipped + bytecode <= cap


def _pyc_name(name: str, cache_tag: str) -> str:
    folder, file = posixpath.split(name)
    return posixpath.join(folder, "__pycache__", f"{file[:-3]}.{cache_tag}.pyc")


def write_zip(entries: Sequence[Entry], path: Path) -> dict[str, int]:
    """Write entries in order with fixed times and modes; return zipped bytes by report group."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, ZIP_TIME)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, whatever machine builds it
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(entry.source, bytes):
                archive.writestr(info, entry.source)
            else:
                with entry.source.open("rb") as source, archive.open(info, "w") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    by_part: dict[str, int] = defaultdict(int)
    parts = {e.name: e.part for e in entries}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            by_part[parts[info.filename]] += info.compress_size
    return dict(by_part)


def space(entries: Sequence[Entry], zipped: dict[str, int]) -> list[Component]:
    """The report's table of what takes the space: files, bytes and zipped bytes per group."""
    files: dict[str, int] = defaultdict(int)
    sizes: dict[str, int] = defaultdict(int)
    for entry in entries:
        files[entry.part] += 1
        sizes[entry.part] += entry.size
    order = ["bundle", "onnxruntime", "numpy", "tokenizers", "msgspec", "bertless", "the rest"]
    return [Component(p, files[p], sizes[p], zipped.get(p, 0)) for p in order if p in files]
