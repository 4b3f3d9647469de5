"""`bertless package aws BUNDLE --format image`: the function as an OCI image, built with no daemon.

The files are the Lambda layered zip's, packaged and proven by `package()` first: its runtime
layer becomes the image's first layer (rarely changing, so a registry holds it already next time)
and its function zip the second (the entry file, `bertless.core`, the adapter and the bundle),
both under `/var/task`, Lambda's task root, where the zip's proof ran them. They are appended to
the base image (by default AWS's own Python base, whose entrypoint is the Lambda runtime
interface client) with `CMD ["lambda_function.handler"]`, as `crane append` would. Before anything
is pushed, every layer is unpacked into an empty root filesystem and the entry point in its task
root answers each route of the bundle's task in a clean CPython of the target version (this
machine's, not the base's own interpreter: a chroot into AWS's base is left undone). Written as an
OCI image layout folder, with the equivalent `Dockerfile` and its build context beside it for
docker, podman or buildah; pushed with `--push`.
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

from bertless.packaging import oci
from bertless.packaging.layer import LAYER_ROOT
from bertless.packaging.package import Artifact, package
from bertless.packaging.proof import Proof, prove
from bertless.packaging.registry import Reference, Registry
from bertless.packaging.report import LimitCheck, PackagingError, Report, classify
from bertless.platforms import limits
from bertless.say import Say

TASK_ROOT = "var/task"  # LAMBDA_TASK_ROOT in AWS's base images
DEFAULT_BASES = {"aws": "public.ecr.aws/lambda/python:{python}"}


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
    check: dict[str, object]
    proof: dict[str, object]  # the packaged halves' proof, before anything was pushed


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
) -> ImageBuild:
    """Package and prove the bundle, append its layers to `base`, write and maybe push it."""
    say = say or (lambda _: None)
    if cloud != "aws":
        raise PackagingError(
            f"--format image is built for aws so far; {cloud} takes its zip (bertless package "
            f"{cloud} BUNDLE)."
        )
    base = base or DEFAULT_BASES[cloud].format(python=python)
    user, password = credentials or (None, None)
    with tempfile.TemporaryDirectory(prefix="bertless-image-") as scratch:
        artifact = package(cloud, bundle, Path(scratch), python, arch, progress=say, image=True)
        proof = Report.read(artifact.report_path).proof
        say(f"reading the base image {base}")
        base_image = _base(base, arch, user, password)
        runtime, function = _layers(artifact)
        image = oci.append(
            base_image,
            [runtime, function],
            cmd=[artifact.entry_point],
            env={"LAMBDA_TASK_ROOT": "/" + TASK_ROOT},
            workdir="/" + TASK_ROOT,
        )
        if proof["status"] == "passed":
            say("proving the image in its unpacked root filesystem")
            proof = asdict(_prove_image(image, bundle, artifact.entry_point, python))
        name = artifact.path.stem.replace(".", "-")
        layout = out / f"{name}-image"
        oci.write_layout(image, layout, "latest")
        _write_dockerfile(artifact, out / f"{name}-docker", base)
    uncompressed = image.uncompressed_bytes()
    check = _size_check(cloud, uncompressed)
    pushed_to, pushed = None, 0
    if push:
        say(f"pushing {push}")
        registry = Registry(Reference.parse(push), user, password)
        registry.push(image)
        pushed_to, pushed = push, registry.pushed_bytes
    appended = [
        {"digest": blob.digest, "compressed": blob.size, "uncompressed": size}
        for blob, size in zip(image.layers[-2:], _sizes(image.layers[-2:]), strict=True)
    ]
    build = ImageBuild(
        image.digest,
        str(layout),
        "latest",
        base,
        appended,
        uncompressed,
        pushed_to,
        pushed,
        asdict(check),
        proof,
    )
    (out / f"{name}-image.json").write_text(json.dumps(asdict(build), indent=2) + "\n")
    return build


def _base(base: str, arch: str, user: str | None, password: str | None) -> oci.Image:
    """A base from an OCI image layout folder, or pulled from its registry."""
    if Path(base).is_dir():
        return oci.read_layout(Path(base))
    return Registry(Reference.parse(base), user, password).pull(arch)


def _layers(artifact: Artifact) -> tuple[tuple[oci.Blob, str], tuple[oci.Blob, str]]:
    """The runtime layer and the function layer, both under the task root."""
    assert artifact.layer is not None  # packaged with image=True: always in two halves

    def files(path: Path, strip: str) -> list[tuple[str, bytes]]:
        with zipfile.ZipFile(path) as archive:
            return [
                (f"{TASK_ROOT}/{info.filename.removeprefix(strip)}", archive.read(info))
                for info in archive.infolist()
            ]

    runtime = oci.tar_layer(files(artifact.layer.path, f"{LAYER_ROOT}/"))
    function = oci.tar_layer(files(artifact.path, ""))
    return runtime, function


def _prove_image(image: oci.Image, bundle: Path, entry_point: str, python: str) -> Proof:
    """Every layer unpacked in order into an empty root filesystem, then the entry point in its
    task root answers each route of the bundle's task in a clean CPython (`proof.prove`)."""
    from bertless.core.bundle import load_bundle
    from bertless.core.routes import served

    routes = [(route.method, route.path) for route in served(load_bundle(bundle).manifest)]
    with tempfile.TemporaryDirectory(prefix="bertless-rootfs-") as rootfs:
        for layer in image.layers:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
                tar.extractall(rootfs, filter="tar")
        return prove("aws", Path(rootfs) / TASK_ROOT, entry_point, python, routes)


def _write_dockerfile(artifact: Artifact, context: Path, base: str) -> None:
    """The same image for docker, podman or buildah: two COPY layers on the same base."""
    assert artifact.layer is not None
    for folder, path, strip in (
        ("runtime", artifact.layer.path, f"{LAYER_ROOT}/"),
        ("function", artifact.path, ""),
    ):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                target = context / folder / info.filename.removeprefix(strip)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
    (context / "Dockerfile").write_text(
        f"# written by `bertless package aws --format image`; same files as its OCI layout\n"
        f"FROM {base}\n"
        f"COPY runtime/ /{TASK_ROOT}/\n"
        f"COPY function/ /{TASK_ROOT}/\n"
        f'CMD ["{artifact.entry_point}"]\n'
    )


def _size_check(cloud: str, size: int) -> LimitCheck:
    cap = limits.package_limits(cloud).container_image
    assert cap is not None and cap.value
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
