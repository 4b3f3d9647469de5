"""OCI images without a daemon: layers as deterministic tarballs appended to a base image.

What `crane append`, ko and Jib do: an image is a manifest naming a config blob and layer blobs
(https://github.com/opencontainers/image-spec/blob/main/manifest.md); appending a layer adds its
gzipped tarball to the manifest and its uncompressed digest (`diff_id`) to the config's rootfs
(https://github.com/opencontainers/image-spec/blob/main/config.md). Nothing runs in the image to
build it, so no Docker daemon is needed, and with fixed times, owners and order in every tarball
and in gzip's header, the same inputs give the same image digest.

An image is written as an OCI image layout folder (`oci-layout`, `index.json`, `blobs/sha256/`:
https://github.com/opencontainers/image-spec/blob/main/image-layout.md), which skopeo, crane,
podman and umoci read; `registry.py` pushes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertless.packaging.report import PackagingError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFESTS = (MANIFEST, DOCKER_MANIFEST)
LAYERS = (LAYER, DOCKER_LAYER)


@dataclass(frozen=True)
class Blob:
    """Content addressed by its sha256, as a registry and an image layout store it."""

    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Image:
    """A config and its layers, in order; the manifest is derived, so the digest is too."""

    config: dict[str, Any]
    layers: tuple[Blob, ...]

    @property
    def config_blob(self) -> Blob:
        return Blob(CONFIG, _canonical(self.config))

    @property
    def manifest_blob(self) -> Blob:
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": self.config_blob.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }
        return Blob(MANIFEST, _canonical(manifest))

    @property
    def digest(self) -> str:
        return self.manifest_blob.digest

    def uncompressed_bytes(self) -> int:
        """The size of every layer unpacked: what Lambda's 10 GB image limit counts."""
        return sum(len(gzip.decompress(layer.data)) for layer in self.layers)


def tar_layer(files: Iterable[tuple[str, bytes | Path]]) -> tuple[Blob, str]:
    """A gzipped tarball of `(path in the image, content)`, and its diff_id.

    Entries are sorted, their parent folders listed first, owned by root with mode 0644 (0755
    for folders, and for a file given by a path that is executable: an interpreter in a base)
    and time 0; gzip carries no name and no time: the same files, the same bytes.
    """
    items = sorted((name.lstrip("/"), source) for name, source in files)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for name, source in items:
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    tar.addfile(_info(folder + "/", tarfile.DIRTYPE, 0o755, 0))
            data = source if isinstance(source, bytes) else source.read_bytes()
            executable = isinstance(source, Path) and source.stat().st_mode & 0o111
            mode = 0o755 if executable else 0o644
            tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    uncompressed = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(uncompressed).hexdigest()
    zipped = gzip.compress(uncompressed, compresslevel=6, mtime=0)
    return Blob(LAYER, zipped), diff_id


def append(
    base: Image,
    layers: Sequence[tuple[Blob, str]],
    cmd: Sequence[str] | None,
    env: dict[str, str],
    workdir: str,
) -> Image:
    """`base` with `layers` (each with its diff_id) on top, and the command and settings to run.

    `cmd` None keeps the base's own (Azure's base runs the Functions host, which finds the app).
    The base's environment is kept and `env` set over it; its history gains one entry per layer,
    with no creation time (the image spec makes it optional), so the digest does not move.
    """
    config = json.loads(json.dumps(base.config))
    run = config.setdefault("config", {})
    merged = dict(item.split("=", 1) for item in run.get("Env") or [])
    merged.update(env)
    run["Env"] = [f"{k}={v}" for k, v in merged.items()]
    if cmd is not None:
        run["Cmd"] = list(cmd)
    run["WorkingDir"] = workdir
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), *(diff_id for _, diff_id in layers)]
    history = config.setdefault("history", [])
    history += [{"created_by": "bertless package --format image"} for _ in layers]
    return Image(config, (*base.layers, *(blob for blob, _ in layers)))


def write_layout(image: Image, folder: Path, tag: str) -> None:
    """An OCI image layout folder holding `image` under `tag`; other blobs there are kept."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (*image.layers, image.config_blob, image.manifest_blob):
        path = blobs / blob.digest.removeprefix("sha256:")
        if not path.is_file():
            path.write_bytes(blob.data)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptor = image.manifest_blob.descriptor()
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [descriptor]}
    (folder / "index.json").write_bytes(_canonical(index))


def read_layout(folder: Path) -> Image:
    """The one image of an OCI image layout folder (as skopeo or umoci write it)."""
    try:
        index = json.loads((folder / "index.json").read_text())
        (entry,) = index["manifests"]
        manifest = json.loads(_blob(folder, entry["digest"]))
        config = json.loads(_blob(folder, manifest["config"]["digest"]))
        layers = tuple(
            Blob(layer["mediaType"], _blob(folder, layer["digest"])) for layer in manifest["layers"]
        )
    except (OSError, ValueError, KeyError) as error:
        raise PackagingError(
            f"{folder} is not an OCI image layout with one image ({error}); give --base as a "
            "registry reference or such a folder."
        ) from None
    return Image(config, layers)


def _blob(folder: Path, digest: str) -> bytes:
    return (folder / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
