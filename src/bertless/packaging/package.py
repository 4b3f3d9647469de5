"""`bertless package`: one bundle → one zip per cloud, refused before upload if it breaks a limit.

The order is cheapest refusal first: the runtime and CPU the platform offers, the bundle's own
size, its measured memory; then the wheels for the target, the staged files with their bytecode
and their size, the zip (sorted entries, fixed times and permissions: same inputs, same sha256),
its size, the proof in a clean interpreter, and last the report beside the zip. A zip that fails
a check or its proof is deleted, so nothing that would be refused can be uploaded by mistake.

Where the platform imports straight from the unpacked zip (Lambda's read-only /var/task, Azure's
mounted run-from-package folder), Python cannot write `__pycache__`, so every cold start would
compile every module it imports from source; the zip ships `.pyc` compiled by the target's own
CPython instead (for the default model, init falls from about 730 to 450 ms). Google installs the
runtime itself and gets only bertless's few modules from the zip: nothing to gain there.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bertless.core.bundle import MANIFEST_NAME, Bundle, load_bundle, sha256_file
from bertless.packaging.checks import (
    check_arch,
    check_bundle_alone,
    check_glibc,
    check_python,
    check_size,
    check_zipped,
    memory_setting,
)
from bertless.packaging.layouts import BUNDLE_DIR, LAYOUTS, Layout
from bertless.packaging.proof import Proof, find_interpreter, precompile, skip_reason
from bertless.packaging.proof import prove as run_proof
from bertless.packaging.report import (
    Component,
    PackagingError,
    Report,
    megabytes,
)
from bertless.packaging.wheels import (
    FALLBACK_GLIBC,
    Target,
    default_cache,
    install,
    resolve,
    runtime_closure,
    runtime_requirements,
    vendored_files,
)
from bertless.platforms import limits

Progress = Callable[[str], None]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build clock in the bytes
FILE_MODE = 0o100644  # a regular file, readable by the platform's user: Lambda needs no more
# Report groups: the runtime's big parts by name, a package's helpers under it, the rest together.
GROUPS = {
    "onnxruntime": "onnxruntime",
    "numpy": "numpy",
    "tokenizers": "tokenizers",
    "pydantic": "pydantic",
    "pydantic-core": "pydantic",
    "annotated-types": "pydantic",
    "typing-inspection": "pydantic",
    "typing-extensions": "pydantic",
}


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A built, checked and (where possible) proven zip, as `deploy` needs to know it."""

    cloud: str
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    entry_point: str
    python: str
    arch: str
    memory_mb: int
    report_path: Path


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str  # path in the zip
    source: Path | bytes
    part: str  # the report group

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size


def package(
    cloud: str,
    bundle: Path,
    out: Path,
    python: str = "3.12",
    arch: str = "x86_64",
    memory_mb: int | None = None,
    prove: bool = True,
    progress: Progress | None = None,
    *,
    wheel_cache: Path | None = None,
    refresh_wheels: bool = False,
) -> Artifact:
    """Build `cloud`'s zip of `bundle` in `out` with its report beside it; refuse what won't fit."""
    say = progress or (lambda _: None)
    if cloud not in LAYOUTS:
        raise PackagingError(f"unknown cloud {cloud!r}; choose one of {', '.join(LAYOUTS)}.")
    layout, platform = LAYOUTS[cloud], limits.get_platform(cloud)
    checks = [check_python(platform, python), check_arch(platform, arch)]
    runtime = limits.require_runtime(cloud, python)
    loaded = load_bundle(bundle)
    bundle_entries = _bundle_entries(loaded)
    checks += check_bundle_alone(platform, sum(e.size for e in bundle_entries))
    memory, peak, memory_checks = memory_setting(platform, loaded, memory_mb, say)
    checks += memory_checks

    cache = wheel_cache or default_cache()
    target = Target(python, arch, runtime.glibc or FALLBACK_GLIBC)
    requirements = runtime_requirements(layout.extra)
    resolution = resolve(requirements, target, cache, refresh_wheels, say)
    if layout.site_packages is None:  # the platform installs every pin, needed or not
        shipped, dropped = list(resolution.wheels), []
    else:
        shipped, dropped = runtime_closure(resolution.wheels, requirements, target)
        say(f"slimming: {len(shipped)} runtime packages kept, {len(dropped)} left out")
    vendored = list(vendored_files(shipped, cache))
    checks.append(check_glibc(platform, runtime, target, vendored))

    entries = _stage(layout, bundle_entries, vendored, [f"{w.name}=={w.version}" for w in shipped])
    caps = limits.package_limits(cloud)
    cap = caps.unzipped.value if caps.unzipped is not None else None
    entries, bytecode = add_bytecode(layout, entries, python, cap, say)
    unzipped = sum(e.size for e in entries)
    if caps.unzipped is not None:
        checks.append(check_size(platform, "unzipped", unzipped, caps.unzipped))

    out.mkdir(parents=True, exist_ok=True)
    name = _artifact_name(loaded, cloud, python, arch)
    say(f"writing {name} ({len(entries)} files, {megabytes(unzipped)} unzipped)")
    scratch = Path(tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".partial")[1])
    try:
        zipped_by_part = _write_zip(entries, scratch)
        upload, zip_checks = check_zipped(platform, scratch.stat().st_size)
        proof = _prove(layout, scratch, target, loaded, cache, prove, say)
        os.replace(scratch, out / name)
    finally:
        scratch.unlink(missing_ok=True)

    final = out / name
    report = Report(
        cloud=cloud,
        file=name,
        sha256=sha256_file(final),
        zipped_bytes=final.stat().st_size,
        unzipped_bytes=unzipped,
        entry_point=layout.entry_point,
        python=python,
        arch=arch,
        runtime=runtime.identifier,
        glibc=target.glibc,
        memory_mb=memory,
        peak_memory_mb=round(peak, 1),
        upload=upload,
        bundle={
            "model_id": loaded.manifest.model_id,
            "task": loaded.manifest.task,
            "precision": loaded.manifest.precision,
            "sha256": loaded.checksum,
            "bytes": sum(e.size for e in bundle_entries),
        },
        checks=[*checks, *zip_checks],
        space=_space(entries, zipped_by_part),
        wheels=[{"name": w.name, "version": w.version, "file": w.path.name} for w in shipped],
        dropped=[vars(d) for d in dropped],
        downloaded=resolution.downloaded,
        proof=proof.as_dict(),
        bytecode=bytecode,
    )
    report.write(final.with_suffix(".json"))
    return _artifact(report, final, final.with_suffix(".json"))


def read_artifact(path: Path) -> Artifact:
    """The artifact a zip or its report describes; refused if either is missing or they differ."""
    path = Path(path)
    report_path = path if path.suffix == ".json" else path.with_suffix(".json")
    if not report_path.is_file():
        raise PackagingError(
            f"{report_path} is missing: build the artifact with `bertless package`, which writes "
            "the report beside the zip."
        )
    report = Report.read(report_path)
    zip_path = report_path.parent / report.file
    if not zip_path.is_file():
        raise PackagingError(f"{zip_path}, named by {report_path}, is missing; build it again.")
    if sha256_file(zip_path) != report.sha256:
        raise PackagingError(
            f"{zip_path} has changed since it was packaged (its sha256 differs from "
            f"{report_path.name}); build it again with `bertless package`."
        )
    return _artifact(report, zip_path, report_path)


# -- staging, zip, proof ---------------------------------------------------------------------


def _bundle_entries(bundle: Bundle) -> list[_Entry]:
    names = sorted({MANIFEST_NAME, *bundle.manifest.files})
    return [_Entry(f"{BUNDLE_DIR}/{n}", bundle.path / n, "bundle") for n in names]


def _stage(
    layout: Layout,
    bundle: list[_Entry],
    vendored: Sequence[tuple[str, Path, str]],
    pins: Sequence[str],
) -> list[_Entry]:
    entries = [_Entry(n, data, "bertless") for n, data in layout.generated(pins).items()]
    entries += [_Entry(n, path, "bertless") for n, path in layout.sources().items()]
    entries += bundle
    if layout.site_packages is not None:
        prefix = f"{layout.site_packages}/" if layout.site_packages else ""
        for name, path, dist in vendored:
            entries.append(_Entry(prefix + name, path, GROUPS.get(dist, "the rest")))
    seen: dict[str, _Entry] = {}
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
    entries: list[_Entry],
    python: str,
    unzipped_cap: int | None,
    say: Progress,
) -> tuple[list[_Entry], dict[str, Any]]:
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
        _Entry(_pyc_name(name, compiled.cache_tag), data, parts[name])
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


def _write_zip(entries: Sequence[_Entry], path: Path) -> dict[str, int]:
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


def _space(entries: Sequence[_Entry], zipped: dict[str, int]) -> list[Component]:
    files: dict[str, int] = defaultdict(int)
    sizes: dict[str, int] = defaultdict(int)
    for entry in entries:
        files[entry.part] += 1
        sizes[entry.part] += entry.size
    order = ["bundle", "onnxruntime", "numpy", "tokenizers", "pydantic", "bertless", "the rest"]
    return [Component(p, files[p], sizes[p], zipped.get(p, 0)) for p in order if p in files]


def _prove(
    layout: Layout,
    artifact: Path,
    target: Target,
    bundle: Bundle,
    cache: Path,
    wanted: bool,
    say: Progress,
) -> Proof:
    if not wanted:
        return Proof("skipped", "not asked for (--no-proof)")
    reason = skip_reason(target.python, target.arch, target.glibc)
    if reason:
        say(f"proof skipped: {reason}")
        return Proof("skipped", reason)
    say(f"proving the artifact in a clean CPython {target.python}")
    routes = _routes(bundle)
    installer = None
    if layout.site_packages is None:  # the platform installs requirements.txt; so does the proof
        installer = functools.partial(install, target=target, cache=cache)
    return run_proof(layout.cloud, artifact, layout.entry_point, target.python, routes, installer)


def _routes(bundle: Bundle) -> list[tuple[str, str]]:
    """Each route of the contract that the bundle's task answers with a 200."""
    from bertless.core.service import ROUTES

    task, labels = bundle.manifest.task, bundle.manifest.labels
    chosen = []
    for route in ROUTES:
        if route.tasks and task not in route.tasks:
            continue
        if route.path == "/rerank" and task == "text-classification" and len(labels) > 1:
            continue  # reranking needs a single-score classifier; the contract answers 424
        chosen.append((route.method, route.path))
    return chosen


def _artifact_name(bundle: Bundle, cloud: str, python: str, arch: str) -> str:
    model = re.sub(r"[^a-z0-9.]+", "-", bundle.manifest.model_id.rpartition("/")[2].lower())
    return f"{model.strip('-')}-{bundle.manifest.precision}-{cloud}-py{python}-{arch}.zip"


def _artifact(report: Report, path: Path, report_path: Path) -> Artifact:
    return Artifact(
        cloud=report.cloud,
        path=path,
        sha256=report.sha256,
        zipped_bytes=report.zipped_bytes,
        unzipped_bytes=report.unzipped_bytes,
        entry_point=report.entry_point,
        python=report.python,
        arch=report.arch,
        memory_mb=report.memory_mb,
        report_path=report_path,
    )
