"""What an artifact keeps of its runtime wheels: the packages serving imports, less their tools.

A wheel brings what its package declares, and a package declares what its tools need: tokenizers
pulls in huggingface-hub to download tokenizers, onnxruntime pulls in protobuf and sympy for its
model tools. The function imports none of them, and every megabyte is paid at each cold start, so
the closure below follows requirements from bertless's own, skipping the edges listed as unused,
and the files of each kept wheel lose their build-time tools, test harnesses, headers and stale
bytecode. The proof in a clean interpreter is what shows that nothing it needed was dropped.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bertless.packaging.wheels import Wheel, WheelTarget

UNUSED_EDGES: dict[tuple[str, str], str] = {
    ("tokenizers", "huggingface-hub"): (
        "tokenizers needs it only to download a tokenizer; a bundle ships tokenizer.json"
    ),
    ("onnxruntime", "coloredlogs"): "used by onnxruntime's model tools, not by inference",
    ("onnxruntime", "flatbuffers"): "used by onnxruntime's ORT-format tools, not by inference",
    ("onnxruntime", "protobuf"): "used by onnxruntime's model tools, not by inference",
    ("onnxruntime", "sympy"): "used by onnxruntime's symbolic shape inference tool",
    ("onnxruntime", "packaging"): "used by onnxruntime's tools, not by inference",
}
"""Dependencies a package declares but the serving path never imports; the proof checks this."""

UNUSED_PATHS: dict[str, tuple[str, ...]] = {
    "onnxruntime": (
        "onnxruntime/transformers/",
        "onnxruntime/tools/",
        "onnxruntime/quantization/",
        "onnxruntime/datasets/",
        "onnxruntime/backend/",
        # the C API library (35 MB in 1.32) for other programs; the Python binding does not link
        # it (no NEEDED entry) and no Python module of the package loads it
        "onnxruntime/capi/libonnxruntime.so",
    ),
    "numpy": (
        "numpy/f2py/",
        "numpy/distutils/",
        "numpy/_pyinstaller/",
        "numpy/array_api/",
        "numpy/core/lib/",  # static libraries for building C extensions
        "numpy/_core/lib/",
        "numpy/random/lib/",
        "numpy/core/_simd.",  # the SIMD test harness (3.4 MB), imported by numpy's tests only
        "numpy/_core/_simd.",
    ),
}
"""Path prefixes of build-time tools and test harnesses inside runtime wheels."""

_DROP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".pxd", ".pyx", ".h", ".hpp", ".c", ".cpp", ".a")
_DROP_DIRS = {"__pycache__", "tests", "test", "include"}
# In .dist-info: what importlib.metadata and entry points read, and the licences; not RECORD,
# which stops matching once files are slimmed away, nor build noise (WHEEL, INSTALLER, sboms).
_KEEP_DIST_INFO = re.compile(
    r"METADATA|entry_points\.txt|top_level\.txt|(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*|licenses/.*"
)


@dataclass(frozen=True)
class Dropped:
    name: str
    version: str
    reason: str
    unpacked_bytes: int


def runtime_closure(
    wheels: Sequence[Wheel], roots: Iterable[str], target: WheelTarget
) -> tuple[list[Wheel], list[Dropped]]:
    """The wheels the serving path imports: reachable from `roots` without `UNUSED_EDGES`."""
    by_name = {w.name: w for w in wheels}
    parents: dict[str, set[str]] = {}
    keep: set[str] = set()
    queue = [(Requirement(r), "") for r in roots]
    while queue:
        requirement, parent = queue.pop()
        name = canonicalize_name(requirement.name)
        if (parent, name) in UNUSED_EDGES or name not in by_name:
            parents.setdefault(name, set()).add(parent)
            continue
        if name in keep:
            continue
        keep.add(name)
        for child in by_name[name].requires():
            extras = requirement.extras or {""}
            if child.marker is None or any(
                child.marker.evaluate(target.markers(e)) for e in extras
            ):
                queue.append((child, name))
    dropped = []
    for wheel in wheels:
        if wheel.name in keep:
            continue
        reasons = [UNUSED_EDGES[(p, wheel.name)] for p in sorted(parents.get(wheel.name, ()))]
        reason = reasons[0] if reasons else "needed only by packages left out"
        with zipfile.ZipFile(wheel.path) as archive:
            size = sum(i.file_size for i in archive.infolist())
        dropped.append(Dropped(wheel.name, wheel.version, reason, size))
    return [w for w in wheels if w.name in keep], dropped


def vendored_files(wheels: Sequence[Wheel], cache: Path) -> Iterator[tuple[str, Path, str]]:
    """(path in site-packages, file on disk, distribution) for each file the runtime keeps."""
    for wheel in wheels:
        root = unpack(wheel, cache)
        unused = UNUSED_PATHS.get(wheel.name, ())
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = file.relative_to(root).as_posix()
            if not relative.startswith(unused) and _kept(relative):
                yield relative, file, wheel.name


def unpack(wheel: Wheel, cache: Path) -> Path:
    """The wheel installed into its own folder (once, in the cache), as pip would lay it out."""
    target = cache / "unpacked" / wheel.path.name.removesuffix(".whl")
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    with zipfile.ZipFile(wheel.path) as archive:
        for info in archive.infolist():
            name = _installed_name(info.filename)
            if name is None or info.is_dir():
                continue
            destination = scratch / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)
    try:
        scratch.rename(target)
    except OSError:  # another build unpacked it first
        shutil.rmtree(scratch)
    return target


def _kept(relative: str) -> bool:
    parts = relative.split("/")
    if parts[0].endswith(".dist-info"):
        return bool(_KEEP_DIST_INFO.fullmatch("/".join(parts[1:]))) and "sboms" not in parts
    if relative.endswith(_DROP_SUFFIXES) or parts[-1] == "conftest.py":
        return False
    return not _DROP_DIRS.intersection(parts[:-1])


def _installed_name(name: str) -> str | None:
    """Where pip puts an archive member: `.data/purelib|platlib` go to the root, the rest away."""
    first, _, rest = name.partition("/")
    if not first.endswith(".data"):
        return name
    scheme, _, inner = rest.partition("/")
    return inner if scheme in ("purelib", "platlib") and inner else None
