"""Runtime wheels for the target platform: resolved for its Python, CPU and glibc, and cached.

A function runs on the cloud's Linux, not on the build machine, so every compiled library in an
artifact must come from a wheel built for the target's Python, CPU and glibc. pip resolves for the
target (`pip download --platform ... --only-binary=:all:`, as Chalice and the Serverless
Framework's Python plugin do), with platform tags no newer than the runtime's glibc: Lambda's
python3.11 (Amazon Linux 2, glibc 2.26) cannot load a manylinux_2_28 wheel and fails at import with
"GLIBC_2.27 not found" (qdrant/fastembed#314). Since a wheel's tag is a claim, every vendored
shared library is checked again from the ELF file itself (`elf.py`); what of the wheels an artifact
keeps is `slim.py`'s decision.

The resolution is cached as a lock of exact files with their sha256, so a second build asks no
index anything and the same inputs give the same bytes; `refresh=True` resolves again.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from bertless.core.bundle import sha256_file
from bertless.packaging.report import PackagingError
from bertless.say import Say

CACHE_ENV = "BERTLESS_WHEEL_CACHE"
# manylinux2014 (glibc 2.17) runs on every Linux the clouds offer; it is the tag set used when
# limits.py records no glibc for a runtime, so a wheel can be too old but never too new.
FALLBACK_GLIBC = "2.17"
_LEGACY_TAGS = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class WheelTarget:
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


def default_cache() -> Path:
    """`BERTLESS_WHEEL_CACHE`, else ~/.cache/bertless/wheels: shared by every build here."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "bertless" / "wheels"


def runtime_requirements(extra: str | None, architecture: str = "transformer") -> list[str]:
    """bertless's own runtime dependencies plus an adapter's extra, as its metadata declares.

    Read from the installed distribution so the artifact needs exactly what `pip install
    bertless[extra]` would, with no second list to drift. A static bundle is a numpy table
    (`core/engine_static.py`): its runtime leaves onnxruntime, and what only it pulls, out.
    """
    wanted = []
    for line in metadata.requires("bertless") or []:
        requirement = Requirement(line)
        if architecture == "static" and canonicalize_name(requirement.name) == "onnxruntime":
            continue
        marker = requirement.marker
        if marker is None or (extra and marker.evaluate({"extra": extra})):
            requirement.marker = None
            wanted.append(str(requirement))
    return sorted(set(wanted))


def resolve(
    requirements: Sequence[str],
    target: WheelTarget,
    cache: Path,
    refresh: bool = False,
    progress: Say | None = None,
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


def install(requirements: Path, folder: Path, target: WheelTarget, cache: Path) -> None:
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


def _download(
    requirements: Sequence[str], target: WheelTarget, cache: Path, say: Say
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


def _pip_failure(stderr: str, target: WheelTarget) -> str:
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
