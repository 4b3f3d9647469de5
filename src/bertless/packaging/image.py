"""`bertless package CLOUD BUNDLE --format image`: the function as an OCI image, with no daemon.

The files are the artifact's, packaged and proven by `package()` first, in two layers under the
platform's app folder (`platforms/images.py`: Lambda's /var/task, /workspace on Cloud Run,
Azure's /home/site/wwwroot): first the runtime packages, rarely changing, so a registry holds
that layer already next time (on AWS the Lambda layer half, on Azure the zip's
`.python_packages`, on Google the `requirements.txt` installed here, as the platform would);
then the function (the entry file, `bertless.core`, the adapter and the bundle). They are
appended to the platform's base image with its command and settings, as `crane append` would.

Before anything is pushed the image is proven. Lambda's: every layer unpacked into an empty root
filesystem and the entry point in its task root answering each route of the bundle's task in a
clean CPython of the target version (this machine's, not the base's, whose runtime interface
client talks to the Runtime API). Cloud Run's and Azure's: the image's own process, run in its
root filesystem as umoci unpacks it, answers each route over HTTP (`image_run.py`); where that
cannot run here (no root, no umoci) the unpacked app folder is proven as Lambda's is. Written as
an OCI image layout folder, with the equivalent `Dockerfile` and its build context beside it
for docker, podman or buildah; pushed with `--push`.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bertless.packaging import image_run, oci
from bertless.packaging.layer import LAYER_ROOT
from bertless.packaging.layouts import LAYOUTS
from bertless.packaging.package import Artifact, package
from bertless.packaging.proof import Proof, prove
from bertless.packaging.registry import Reference, Registry
from bertless.packaging.registry_login import login
from bertless.packaging.report import LimitCheck, PackagingError, Report, classify
from bertless.packaging.wheels import FALLBACK_GLIBC, WheelTarget, default_cache, install
from bertless.platforms import limits
from bertless.platforms.images import IMAGES, ImageConvention
from bertless.say import Say

TAG = "latest"  # the tag inside the layout folder

Files = list[tuple[str, bytes | Path]]  # (path in the image, content)


@dataclass(frozen=True)
class ImageBuild:
    """What was built and where it went, as the report beside the layout folder says it."""

    digest: str
    layout: str
    tag: str
    base: str
    layers: list[dict[str, int | str]]  # the appended layers: digest, compressed, uncompressed
    uncompressed_bytes: int  # all layers, the base's included
    pushed_to: str | None
    pushed_bytes: int
    check: dict[str, object] | None  # None: the platform documents no image size cap
    proof: dict[str, object]  # the packaged halves' proof, before anything was pushed
    artifact: dict[str, Any]  # the packaged files' report: runtime, memory measured, checks
    mounted: tuple[str, ...] = ()  # blobs mounted from another repository (--mount-from), not sent


def build_image(
    cloud: str,
    bundle: Path,
    out: Path,
    base: str | None = None,
    push: str | None = None,
    python: str = "3.12",
    arch: str = "x86_64",
    say: Say | None = None,
    credentials: tuple[str, str] | None = None,
    registry_login: str | None = None,
    mount_from: tuple[str, ...] = (),
) -> ImageBuild:
    """Package and prove the bundle, append its layers to `base`, write and maybe push it.

    `credentials` (user, password) read the base and, with the `password` login, push.
    `registry_login` is how to log in to the registry pushed to (`registry_login.LOGINS`; by
    default from its host); `mount_from` names repositories of that registry whose blobs are
    mounted rather than sent.
    """
    say = say or (lambda _: None)
    if cloud not in IMAGES:
        raise PackagingError(f"unknown cloud {cloud!r}; choose one of {', '.join(IMAGES)}.")
    convention = IMAGES[cloud]
    base = base or convention.base.format(python=python)
    user, password = credentials or (None, None)
    with tempfile.TemporaryDirectory(prefix="bertless-image-") as scratch:
        artifact = package(cloud, bundle, Path(scratch), python, arch, progress=say, image=True)
        packaged = Report.read(artifact.report_path)
        proof = packaged.proof
        say(f"reading the base image {base}")
        base_image = _base(base, arch, user, password)
        runtime, function = _halves(artifact, Path(scratch) / "installed")
        root = convention.app_root.lstrip("/")
        image = oci.append(
            base_image,
            [oci.tar_layer(_under(root, runtime)), oci.tar_layer(_under(root, function))],
            cmd=convention.cmd,
            env=convention.env,
            workdir=convention.app_root,
        )
        name = artifact.path.stem.replace(".", "-")
        layout = out / f"{name}-image"
        oci.write_layout(image, layout, TAG)
        if proof["status"] == "passed":
            say("proving the image in its unpacked root filesystem")
            proof = asdict(_prove_image(cloud, image, layout, bundle, python))
        _write_dockerfile(out / f"{name}-docker", base, convention, runtime, function)
    uncompressed = image.uncompressed_bytes()
    check = _size_check(cloud, uncompressed)
    pushed_to, pushed, mounted = None, 0, ()
    if push:
        say(f"pushing {push}")
        reference = Reference.parse(push)
        given = login(reference, registry_login, user, password)
        registry = Registry(reference, given.user, given.password, given.refresh_token)
        registry.push(image, mount_from)
        pushed_to, pushed, mounted = push, registry.pushed_bytes, tuple(registry.mounted)
    appended = [
        {"digest": blob.digest, "compressed": blob.size, "uncompressed": size}
        for blob, size in zip(image.layers[-2:], _sizes(image.layers[-2:]), strict=True)
    ]
    build = ImageBuild(
        image.digest,
        str(layout),
        TAG,
        base,
        appended,
        uncompressed,
        pushed_to,
        pushed,
        asdict(check) if check else None,
        proof,
        asdict(packaged),
        mounted,
    )
    (out / f"{name}-image.json").write_text(json.dumps(asdict(build), indent=2) + "\n")
    return build


def read_image(path: Path) -> Artifact:
    """The pushed image an image report (`*-image.json`) describes, as `deploy` takes it: by
    digest (`HOST/NAME@sha256:…`), so what runs is what was proven, whatever the tag says now."""
    try:
        report = json.loads(Path(path).read_text())
        packaged, digest = report["artifact"], report["digest"]
    except (OSError, ValueError, KeyError) as error:
        raise PackagingError(
            f"{path} is not an image report of `bertless package --format image` ({error})."
        ) from None
    if not report.get("pushed_to"):
        raise PackagingError(
            f"{path} describes an image that was never pushed; build it again with --push "
            "REPOSITORY, a registry the platform pulls from."
        )
    reference = Reference.parse(report["pushed_to"])
    return Artifact(
        cloud=packaged["cloud"],
        path=Path(path),
        sha256=digest.removeprefix("sha256:"),
        zipped_bytes=0,  # nothing travels with the deploy: the platform pulls the image
        unzipped_bytes=report["uncompressed_bytes"],
        entry_point=packaged["entry_point"],
        python=packaged["python"],
        arch=packaged["arch"],
        memory_mb=packaged["memory_mb"],
        report_path=Path(path),
        peak_memory_mb=packaged.get("peak_memory_mb"),
        concurrency=packaged.get("concurrency", 1),
        image_uri=f"{reference.host}/{reference.name}@{digest}",
    )


def _base(base: str, arch: str, user: str | None, password: str | None) -> oci.Image:
    """A base from an OCI image layout folder, or pulled from its registry."""
    if Path(base).is_dir():
        return oci.read_layout(Path(base))
    return Registry(Reference.parse(base), user, password).pull(arch)


def _halves(artifact: Artifact, installed: Path) -> tuple[Files, Files]:
    """The runtime's files and the function's, by path under the app folder.

    AWS: the Lambda layer zip's files (out of its `python/`) and the function zip's. Azure: the
    zip's `.python_packages/` and the rest. Google: its `requirements.txt` installed from the
    wheel cache into `installed` (what Cloud Functions would do at deploy), and the whole zip.
    """
    function = _zip_files(artifact.path, "")
    if artifact.layer is not None:
        return _zip_files(artifact.layer.path, f"{LAYER_ROOT}/"), function
    site_packages = LAYOUTS[artifact.cloud].site_packages
    if site_packages:  # Azure: the vendored packages, under `.python_packages/`
        prefix = site_packages.split("/")[0] + "/"
        runtime = [file for file in function if file[0].startswith(prefix)]
        return runtime, [file for file in function if not file[0].startswith(prefix)]
    runtime_record = limits.require_runtime(artifact.cloud, artifact.python)
    target = WheelTarget(artifact.python, artifact.arch, runtime_record.glibc or FALLBACK_GLIBC)
    requirements = installed.parent / "requirements.txt"
    with zipfile.ZipFile(artifact.path) as archive:
        requirements.write_bytes(archive.read("requirements.txt"))
    install(requirements, installed, target, default_cache())
    runtime = [
        (path.relative_to(installed).as_posix(), path)
        for path in sorted(installed.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return runtime, function


def _zip_files(path: Path, strip: str) -> Files:
    with zipfile.ZipFile(path) as archive:
        return [
            (info.filename.removeprefix(strip), archive.read(info)) for info in archive.infolist()
        ]


def _under(root: str, files: Files) -> Files:
    return [(f"{root}/{name}", data) for name, data in files]


def _prove_image(cloud: str, image: oci.Image, layout: Path, bundle: Path, python: str) -> Proof:
    """Cloud Run and Azure: the image's own process answers over HTTP (`image_run`). Lambda, or
    where that cannot run here: every layer unpacked in order into an empty root filesystem, then
    the entry point in the app folder answers each route in a clean CPython (`proof.prove`)."""
    from bertless.core.bundle import load_bundle
    from bertless.core.routes import served

    convention = IMAGES[cloud]
    routes = [(route.method, route.path) for route in served(load_bundle(bundle).manifest)]
    if convention.port_env is not None and image_run.unavailable() is None:
        return image_run.serve_and_ask(layout, TAG, convention, routes, cloud)
    with tempfile.TemporaryDirectory(prefix="bertless-rootfs-") as rootfs:
        for layer in image.layers:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
                tar.extractall(rootfs, filter="tar")
        app = Path(rootfs) / convention.app_root.lstrip("/")
        return prove(cloud, app, LAYOUTS[cloud].entry_point, python, routes)


def _write_dockerfile(
    context: Path, base: str, convention: ImageConvention, runtime: Files, function: Files
) -> None:
    """The same image for docker, podman or buildah: two COPY layers on the same base."""
    for folder, files in (("runtime", runtime), ("function", function)):
        for name, data in files:
            target = context / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data if isinstance(data, bytes) else data.read_bytes())
    root = convention.app_root
    lines = [
        "# written by `bertless package --format image`; same files as its OCI layout",
        f"FROM {base}",
        *(f"ENV {key}={value}" for key, value in convention.env.items()),
        f"COPY runtime/ {root}/",
        f"COPY function/ {root}/",
        f"WORKDIR {root}",
    ]
    if convention.cmd is not None:
        lines.append(f"CMD {json.dumps(list(convention.cmd))}")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")


def _size_check(cloud: str, size: int) -> LimitCheck | None:
    """The platform's cap on an image's unpacked size, where it documents one (Lambda)."""
    cap = limits.package_limits(cloud).container_image
    if cap is None or cap.value is None:
        return None
    check = LimitCheck(
        "image size, uncompressed",
        size,
        cap.value,
        "bytes",
        classify(size, cap.value),
        cap.source,
        cap.read_on,
        cap.note,
    )
    if check.status == "refused":
        raise PackagingError(
            f"the image unpacks to {size:,} bytes, over Lambda's {cap.value:,}-byte image limit "
            f"({cap.source}); export the bundle with --quantize int8."
        )
    return check


def _sizes(layers: tuple[oci.Blob, ...]) -> list[int]:
    return [len(gzip.decompress(layer.data)) for layer in layers]
