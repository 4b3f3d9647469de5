"""Runtime wheels for the target platform: resolved, cached, slimmed and checked against its glibc.

A function runs on the cloud's Linux, not on the build machine, so every compiled library in an
artifact must come from a wheel built for the target's Python, CPU and glibc. pip resolves for the
target (`pip download --platform ... --only-binary=:all:`, as Chalice and the Serverless
Framework's Python plugin do), with platform tags no newer than the runtime's glibc: Lambda's
python3.11 (Amazon Linux 2, glibc 2.26) cannot load a manylinux_2_28 wheel and fails at import with
"GLIBC_2.27 not found" (qdrant/fastembed#314). Every vendored shared library's GLIBC symbol
versions are then read from the ELF file itself and checked, since a wheel's tag is a claim.

The resolution is cached as a lock of exact files with their sha256, so a second build asks no
index anything and the same inputs give the same bytes; `refresh=True` resolves again.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from bertless.core.bundle import sha256_file
from bertless.packaging.report import PackagingError

Progress = Callable[[str], None]

CACHE_ENV = "BERTLESS_WHEEL_CACHE"
# manylinux2014 (glibc 2.17) runs on every Linux the clouds offer; it is the tag set used when
# limits.py records no glibc for a runtime, so a wheel can be too old but never too new.
FALLBACK_GLIBC = "2.17"
_LEGACY_TAGS = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    """Where the wheels must run: a CPython version, a CPU and the newest glibc there."""

    python: str
    arch: str  # "x86_64" or "arm64", as the clouds name them
    glibc: str

    @property
    def machine(self) -> str:
        """The CPU as wheel tags and `uname -m` name it."""
        return "aarch64" if self.arch == "arm64" else "x86_64"

    def platform_tags(self) -> list[str]:
        """Every manylinux tag the target accepts, newest first.

        pip takes `--platform manylinux_2_26_x86_64` literally and would refuse a
        manylinux_2_17 wheel, so each older glibc and the legacy aliases are listed explicitly.
        """
        major, minor = (int(part) for part in self.glibc.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        for floor, alias in _LEGACY_TAGS.items():
            if minor >= floor and (self.machine == "x86_64" or floor == 17):
                tags.append(f"{alias}_{self.machine}")
        return tags

    def markers(self, extra: str = "") -> dict[str, str]:
        """The environment markers of the target, to evaluate a wheel's Requires-Dist there."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
            "extra": extra,
        }


@dataclass(frozen=True)
class Wheel:
    name: str  # canonical: "huggingface-hub"
    version: str
    path: Path
    sha256: str

    def requires(self) -> list[Requirement]:
        with zipfile.ZipFile(self.path) as archive:
            info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            message = email.parser.BytesParser().parsebytes(archive.read(info))
        return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


@dataclass(frozen=True)
class Resolution:
    wheels: tuple[Wheel, ...]
    downloaded: int  # files pip fetched for this build; 0 when the lock was reused
    lock: Path


@dataclass(frozen=True)
class Pairing:
    """A version pair the resolver cannot see in metadata but that fails at import."""

    when: str
    require: str
    source: str


PAIRINGS = (
    # onnxruntime before 1.19 was compiled against NumPy 1.x and refuses NumPy 2 at import; its
    # metadata does not say so, and Amazon Linux 2's glibc caps onnxruntime at 1.16.3.
    Pairing("onnxruntime<1.19", "numpy<2", "https://github.com/microsoft/onnxruntime/issues/21063"),
)

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
    "pydantic": ("pydantic/v1/", "pydantic/mypy.py"),  # the v1 compatibility API, a mypy plugin
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


def default_cache() -> Path:
    """`BERTLESS_WHEEL_CACHE`, else ~/.cache/bertless/wheels: shared by every build here."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "bertless" / "wheels"


def runtime_requirements(extra: str | None) -> list[str]:
    """bertless's own runtime dependencies plus an adapter's extra, as its metadata declares.

    Read from the installed distribution so the artifact needs exactly what `pip install
    bertless[extra]` would, with no second list to drift.
    """
    wanted = []
    for line in metadata.requires("bertless") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or (extra and marker.evaluate({"extra": extra})):
            requirement.marker = None
            wanted.append(str(requirement))
    return sorted(set(wanted))


def resolve(
    requirements: Sequence[str],
    target: Target,
    cache: Path,
    refresh: bool = False,
    progress: Progress | None = None,
) -> Resolution:
    """The wheels pip picks for `requirements` on `target`, from the lock when one exists."""
    say = progress or (lambda _: None)
    key = json.dumps({"requirements": sorted(requirements), "target": asdict(target)})
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    lock = cache / "locks" / f"py{target.python}-{target.machine}-glibc{target.glibc}-{digest}.json"
    if lock.is_file() and not refresh:
        wheels = _read_lock(lock, cache)
        if wheels is not None:
            say(f"wheels: {len(wheels)} from the cache ({lock.name})")
            return Resolution(wheels, 0, lock)
    extra: list[str] = []
    while True:
        wheels, downloaded = _download([*requirements, *extra], target, cache, say)
        needed = [p.require for p in PAIRINGS if _pairing_broken(p, wheels)]
        if not needed or set(needed) <= set(extra):
            break
        extra = sorted({*extra, *needed})
        say(f"re-resolving with {', '.join(extra)} (a pairing the metadata does not declare)")
    lock.parent.mkdir(parents=True, exist_ok=True)
    record = {"requirements": sorted(requirements), "target": asdict(target), "constraints": extra}
    record["wheels"] = [{"file": w.path.name, "sha256": w.sha256} for w in wheels]
    _atomic_write(lock, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return Resolution(wheels, downloaded, lock)


def runtime_closure(
    wheels: Sequence[Wheel], roots: Iterable[str], target: Target
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


def install(requirements: Path, folder: Path, target: Target, cache: Path) -> None:
    """pip-install a requirements file into `folder` from the cache alone, for the target.

    This is what a platform that installs `requirements.txt` itself (Google) will do at deploy; the
    proof does it first, offline, so a pin that does not resolve fails here.
    """
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links"]
    command += [str(cache / "files"), "--target", str(folder), "--only-binary=:all:"]
    command += ["--implementation", "cp", "--python-version", target.python, "--no-compile"]
    command += [arg for tag in target.platform_tags() for arg in ("--platform", tag)]
    command += ["--disable-pip-version-check", "--quiet", "-r", str(requirements)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PackagingError(f"{requirements.name} does not install from the wheel cache: {tail}")


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


def glibc_needed(path: Path) -> tuple[int, ...] | None:
    """The newest GLIBC_x.y symbol version an ELF file needs, from its .gnu.version_r section.

    None when the file is no ELF file or needs no versioned glibc symbol. Read here with `struct`
    rather than `readelf`, which a build machine may lack and whose output is for people.
    """
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _newest_glibc(data)


def _newest_glibc(data: mmap.mmap) -> tuple[int, ...] | None:
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELFCLASS64
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        section = order + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        section = order + "IIIIIIIIII"
    headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    newest: tuple[int, ...] | None = None
    for header in headers:
        if header[1] != 0x6FFFFFFE:  # SHT_GNU_verneed
            continue
        offset, link, count = header[4], header[6], header[7]
        strings = headers[link][4]
        for _ in range(count):
            _, aux_count, _, aux, following = struct.unpack_from(order + "HHIII", data, offset)
            at = offset + aux
            for _ in range(aux_count):
                _, _, _, name_at, next_aux = struct.unpack_from(order + "IHHII", data, at)
                name = data[strings + name_at : data.find(b"\0", strings + name_at)].decode()
                match = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", name)
                if match:
                    version = tuple(int(p) for p in match.group(1).split("."))
                    newest = max(newest or version, version)
                at += next_aux
            offset += following
    return newest


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


def _download(
    requirements: Sequence[str], target: Target, cache: Path, say: Progress
) -> tuple[tuple[Wheel, ...], int]:
    tags = target.platform_tags()
    say(f"resolving wheels for CPython {target.python}, {tags[0]} (glibc {target.glibc})")
    files = cache / "files"
    files.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:"]
        command += ["--implementation", "cp", "--python-version", target.python]
        command += [arg for tag in tags for arg in ("--platform", tag)]
        command += ["--dest", scratch, "--progress-bar", "off", "--disable-pip-version-check"]
        done = subprocess.run([*command, *requirements], capture_output=True, text=True)
        if done.returncode:
            raise PackagingError(_pip_failure(done.stderr, target))
        fetched = sorted(Path(scratch).glob("*.whl"))
        for file in fetched:
            destination = files / file.name
            if not destination.exists():
                os.replace(file, destination)
        wheels = tuple(_wheel(files / f.name) for f in fetched)
    say(f"wheels: {len(wheels)} resolved, {len(fetched)} fetched by pip")
    return wheels, len(fetched)


def _pip_failure(stderr: str, target: Target) -> str:
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        return (
            f"No wheel of {missing.group(1)} runs on CPython {target.python} {target.machine} "
            f"with glibc {target.glibc} (manylinux_{target.glibc.replace('.', '_')} or older): "
            "pick a Python version whose runtime has a newer glibc, or relax the requirement."
        )
    last = [line for line in stderr.strip().splitlines() if line.strip()][-1:]
    return f"pip could not download the runtime wheels: {last[0] if last else 'no message'}."


def _pairing_broken(pairing: Pairing, wheels: Sequence[Wheel]) -> bool:
    when, require = Requirement(pairing.when), Requirement(pairing.require)
    versions = {w.name: w.version for w in wheels}
    trigger = versions.get(canonicalize_name(when.name))
    present = versions.get(canonicalize_name(require.name))
    if trigger is None or present is None or trigger not in when.specifier:
        return False
    return present not in require.specifier


def _read_lock(lock: Path, cache: Path) -> tuple[Wheel, ...] | None:
    """The locked wheels, or None if any file is gone or changed (then resolve again)."""
    wheels = []
    for entry in json.loads(lock.read_text())["wheels"]:
        path = cache / "files" / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return None
        wheels.append(_wheel(path))
    return tuple(wheels)


def _wheel(path: Path) -> Wheel:
    name, version, _, _ = parse_wheel_filename(path.name)
    return Wheel(name=str(name), version=str(version), path=path, sha256=sha256_file(path))


def _atomic_write(path: Path, text: str) -> None:
    scratch = path.with_suffix(".tmp")
    scratch.write_text(text)
    os.replace(scratch, path)
