"""`bertless package`: one bundle → one zip per cloud, refused before upload if it breaks a limit.

The order is cheapest refusal first: the runtime and CPU the platform offers, the bundle's own
size, its measured memory; then the wheels for the target, the staged files with their bytecode
and their size, the zip (sorted entries, fixed times and permissions: same inputs, same sha256),
its size, the proof in a clean interpreter, and last the report beside the zip. A zip that fails
a check or its proof is deleted, so nothing that would be refused can be uploaded by mistake.

On AWS a zip over the direct-upload limit is split in two when both halves then upload directly
(or always, with `layers=True`): the runtime packages go into a content-named Lambda layer zip
beside the function zip (`layer.py`), so no S3 bucket is needed and a second model reuses the
layer. When the function zip alone would still go through S3, one zip is simpler and stays.

The staging, bytecode and zip writing are `stage.py`'s; the checks `checks.py`'s; the proof
`proof.py`'s. This module puts them in order and writes the report.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from bertless.core.bundle import Bundle, load_bundle, sha256_file
from bertless.packaging import stage
from bertless.packaging.checks import (
    check_arch,
    check_bundle_alone,
    check_glibc,
    check_python,
    check_size,
    check_zipped,
    memory_setting,
)
from bertless.packaging.layer import LayerZip, describe, split
from bertless.packaging.layouts import LAYOUTS, Layout
from bertless.packaging.proof import Proof, skip_reason
from bertless.packaging.proof import prove as run_proof
from bertless.packaging.report import (
    LimitCheck,
    LimitError,
    PackagingError,
    Report,
    classify,
    megabytes,
)
from bertless.packaging.slim import runtime_closure, vendored_files
from bertless.packaging.wheels import (
    FALLBACK_GLIBC,
    WheelTarget,
    default_cache,
    install,
    resolve,
    runtime_requirements,
)
from bertless.platforms import limits
from bertless.say import Say


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
    layer: LayerZip | None = None  # AWS: the runtime, in a Lambda layer zip beside this one
    peak_memory_mb: float | None = None  # measured with `concurrency` worst requests at once
    concurrency: int = 1  # requests at once an instance was packaged (and measured) for
    image_uri: str | None = None  # an image pushed by digest (`image.read_image`): deploy it


def package(
    cloud: str,
    bundle: Path,
    out: Path,
    python: str = "3.12",
    arch: str = "x86_64",
    memory_mb: int | None = None,
    prove: bool = True,
    progress: Say | None = None,
    *,
    wheel_cache: Path | None = None,
    refresh_wheels: bool = False,
    layers: bool = False,
    concurrency: int = 1,
    image: bool = False,
) -> Artifact:
    """Build `cloud`'s zip of `bundle` in `out` with its report beside it; refuse what won't fit.

    `layers` (AWS only) puts the runtime in a Lambda layer zip even when one zip would upload
    directly; without it, the split happens only when one zip would not. `concurrency` (GCP,
    Azure) is how many requests an instance takes at once: its memory is measured for them all.
    `image` builds the files for `image.py`'s layers (on AWS in the two halves, elsewhere one
    zip that `image.py` splits): no zip is uploaded, so the zip size limits do not apply (an
    image's own is checked on the image), and nothing is refused for them.
    """
    say = progress or (lambda _: None)
    if cloud not in LAYOUTS:
        raise PackagingError(f"unknown cloud {cloud!r}; choose one of {', '.join(LAYOUTS)}.")
    if concurrency < 1:
        raise PackagingError(
            f"--concurrency is how many requests an instance takes at once: 1 or more, not "
            f"{concurrency}."
        )
    if concurrency > 1 and cloud == "aws":
        raise PackagingError(
            "--concurrency is for gcp and azure: a Lambda instance takes one request at a time."
        )
    if layers and cloud != "aws":
        raise PackagingError(f"--layers is for AWS Lambda only; {cloud} has no layers.")
    layout, platform = LAYOUTS[cloud], limits.get_platform(cloud)
    checks = [check_python(platform, python), check_arch(platform, arch)]
    runtime = limits.require_runtime(cloud, python)
    loaded = load_bundle(bundle)
    bundle_entries = stage.bundle_entries(loaded)
    if not image:
        checks += check_bundle_alone(platform, sum(e.size for e in bundle_entries))
    memory, peak, memory_checks = memory_setting(platform, loaded, memory_mb, say, concurrency)
    checks += memory_checks

    cache = wheel_cache or default_cache()
    target = WheelTarget(python, arch, runtime.glibc or FALLBACK_GLIBC)
    requirements = runtime_requirements(layout.extra, loaded.manifest.architecture)
    resolution = resolve(requirements, target, cache, refresh_wheels, say)
    if layout.site_packages is None:  # the platform installs every pin, needed or not
        shipped, dropped = list(resolution.wheels), []
    else:
        shipped, dropped = runtime_closure(resolution.wheels, requirements, target)
        say(f"slimming: {len(shipped)} runtime packages kept, {len(dropped)} left out")
    vendored = list(vendored_files(shipped, cache))
    checks.append(check_glibc(platform, runtime, target, vendored))

    entries = stage.stage(
        layout, bundle_entries, vendored, [f"{w.name}=={w.version}" for w in shipped]
    )
    caps = limits.package_limits(cloud)
    cap = caps.unzipped.value if caps.unzipped is not None and not image else None
    entries, bytecode = stage.add_bytecode(layout, entries, python, cap, say)
    unzipped = sum(e.size for e in entries)
    if caps.unzipped is not None and not image:
        checks.append(check_size(platform, "unzipped", unzipped, caps.unzipped))

    out.mkdir(parents=True, exist_ok=True)
    name = _artifact_name(loaded, cloud, python, arch)
    say(f"writing {name} ({len(entries)} files, {megabytes(unzipped)} unzipped)")
    scratch = Path(tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".partial")[1])
    scratch.chmod(0o644)  # mkstemp's 0600 would otherwise be the artifact's, unlike its layer's
    split_scratch, layer_scratch = scratch.with_suffix(".function"), scratch.with_suffix(".layer")
    layer = None
    try:
        if image and cloud == "aws":  # the halves become the image's layers: no zip cap
            function_entries, layer_entries = split(entries)
            zipped_by_part = stage.write_zip(function_entries, scratch)
            zipped_by_part.update(stage.write_zip(layer_entries, layer_scratch))
            layer = describe(layer_scratch, layer_entries, python, arch)
            upload, zip_checks = "image", []
        elif image:  # one zip, split by `image.py` into the platform's layers: no zip cap
            zipped_by_part = stage.write_zip(entries, scratch)
            upload, zip_checks = "image", []
        else:
            zipped_by_part = stage.write_zip(entries, scratch)
            upload, zip_checks = check_zipped(platform, scratch.stat().st_size)
        if not image and cloud == "aws" and (layers or upload != "direct"):
            say("splitting the runtime into a Lambda layer")
            *halves, direct = _write_split(
                platform, entries, split_scratch, layer_scratch, python, arch, required=layers
            )
            if layers or direct:
                layer, zipped_by_part, upload, zip_checks = halves
                os.replace(split_scratch, scratch)
            else:
                say("the function zip alone would still go through S3: one zip stays")
        proof = _prove(layout, scratch, target, loaded, cache, prove, say, layer)
        if layer is not None:
            layer = dataclasses.replace(layer, path=out / f"{layer.name}.zip")
            os.replace(layer_scratch, layer.path)
        os.replace(scratch, out / name)
    finally:
        for path in (scratch, split_scratch, layer_scratch):
            path.unlink(missing_ok=True)

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
        concurrency=concurrency,
        upload=upload,
        bundle={
            "model_id": loaded.manifest.model_id,
            "task": loaded.manifest.task,
            "precision": loaded.manifest.precision,
            "sha256": loaded.checksum,
            "bytes": sum(e.size for e in bundle_entries),
        },
        checks=[*checks, *zip_checks],
        space=stage.space(entries, zipped_by_part),
        wheels=[{"name": w.name, "version": w.version, "file": w.path.name} for w in shipped],
        dropped=[vars(d) for d in dropped],
        downloaded=resolution.downloaded,
        proof=proof.as_dict(),
        bytecode=bytecode,
        layer=_layer_record(layer),
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
    zips = [(zip_path, report.sha256)]
    if report.layer is not None:
        zips.append((report_path.parent / report.layer["file"], report.layer["sha256"]))
    for path_, sha256 in zips:
        if not path_.is_file():
            raise PackagingError(f"{path_}, named by {report_path}, is missing; build it again.")
        if sha256_file(path_) != sha256:
            raise PackagingError(
                f"{path_} has changed since it was packaged (its sha256 differs from "
                f"{report_path.name}); build it again with `bertless package`."
            )
    return _artifact(report, zip_path, report_path)


def _write_split(
    platform: limits.Platform,
    entries: list[stage.Entry],
    function_path: Path,
    layer_path: Path,
    python: str,
    arch: str,
    required: bool,
) -> tuple[LayerZip, dict[str, int], str, list[LimitCheck], bool]:
    """Write the function zip at `function_path` and the layer zip at `layer_path`.

    Returns the layer, zipped bytes by report group, the function zip's upload path, the
    zipped-size checks of both zips, and whether both upload directly. bertless publishes a
    layer from its bytes, never through S3: a layer too big for that is refused when `required`
    (--layers), and otherwise leaves the one zip in place.
    """
    function_entries, layer_entries = split(entries)
    zipped = stage.write_zip(function_entries, function_path)
    zipped.update(stage.write_zip(layer_entries, layer_path))
    upload, checks = check_zipped(platform, function_path.stat().st_size)
    checks.append(_layer_count(platform))
    layer = describe(layer_path, layer_entries, python, arch)
    direct = limits.package_limits(platform.key).zip_direct_upload
    assert direct is not None  # Lambda has one
    name = "layer zipped size, direct upload"
    try:
        layer_check = check_size(platform, "zipped", layer.zipped_bytes, direct, name)
    except LimitError as error:
        if required:
            raise
        return layer, zipped, upload, [*checks, error.check], False
    return layer, zipped, upload, [*checks, layer_check], upload == "direct"


def _layer_count(platform: limits.Platform) -> LimitCheck:
    """bertless attaches one layer; the platform's cap on layers per function, for the report."""
    cap = platform.package.layers_per_function
    assert cap is not None  # only AWS splits, and Lambda has layers
    return LimitCheck(
        "layers", 1, cap.value, "layers", classify(1, cap.value), cap.source, cap.read_on, cap.note
    )


def _layer_record(layer: LayerZip | None) -> dict[str, Any] | None:
    """The report's record of the layer zip, which lies beside the function zip."""
    if layer is None:
        return None
    return {
        "name": layer.name,
        "file": layer.path.name,
        "sha256": layer.sha256,
        "zipped_bytes": layer.zipped_bytes,
        "unzipped_bytes": layer.unzipped_bytes,
    }


def _prove(
    layout: Layout,
    artifact: Path,
    target: WheelTarget,
    bundle: Bundle,
    cache: Path,
    wanted: bool,
    say: Say,
    layer: LayerZip | None = None,
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
    layer_path = layer.path if layer is not None else None
    return run_proof(
        layout.cloud, artifact, layout.entry_point, target.python, routes, installer, layer_path
    )


def _routes(bundle: Bundle) -> list[tuple[str, str]]:
    """Each route of the contract that the bundle's task answers with a 200."""
    from bertless.core.routes import served

    return [(route.method, route.path) for route in served(bundle.manifest)]


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
        layer=_read_layer(report, report_path),
        peak_memory_mb=report.peak_memory_mb,
        concurrency=report.concurrency,
    )


def _read_layer(report: Report, report_path: Path) -> LayerZip | None:
    record = report.layer
    if record is None:
        return None
    return LayerZip(
        name=record["name"],
        path=report_path.parent / record["file"],
        sha256=record["sha256"],
        zipped_bytes=record["zipped_bytes"],
        unzipped_bytes=record["unzipped_bytes"],
    )
