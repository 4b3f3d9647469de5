"""Lambda layers: the runtime packages in one zip, the function's own files in another.

The int8 default model's single zip for Python 3.12 is about 55 MB, over Lambda's 50 MB
direct-upload limit, so a user would need an S3 bucket just to deploy it. Split in two, each zip
uploads directly: the layer holds what the function imports from site-packages (onnxruntime,
numpy, tokenizers, msgspec), the function zip the entry file, `bertless.core`, the adapter and
the bundle. Lambda extracts a layer into /opt and puts /opt/python on a Python function's `sys.path`
(https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html), so the layer's files sit
under `python/`. The 250 MB unzipped limit binds function and layers together; `package` checks
it on the sum before splitting.

The layer's name carries the hash of its content, so a second model, or a new version of the same
one, finds the layer already published and uploads only its function zip.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bertless.core.bundle import sha256_file
from bertless.packaging.stage import Entry

LAYER_ROOT = "python"
"""The folder in a layer zip that Lambda's Python runtimes put on `sys.path` (as /opt/python)."""

FUNCTION_PARTS = ("bertless", "bundle")
"""The report groups that stay in the function zip; every other group is the runtime's."""


@dataclass(frozen=True)
class LayerZip:
    """A built layer zip, as `deploy` needs to know it."""

    name: str  # the layer's name on Lambda: content-addressed
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int


def split(entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """The function zip's entries and the layer zip's (moved under `python/`), each sorted."""
    function = [e for e in entries if e.part in FUNCTION_PARTS]
    layer = [
        Entry(f"{LAYER_ROOT}/{e.name}", e.source, e.part)
        for e in entries
        if e.part not in FUNCTION_PARTS
    ]
    return sorted(function, key=lambda e: e.name), sorted(layer, key=lambda e: e.name)


def layer_name(sha256: str, python: str, arch: str) -> str:
    """`bertless-runtime-py312-x86_64-<first 16 hex of the zip's sha256>`.

    Lambda layer names take letters, digits, hyphens and underscores, up to 140 characters
    (https://docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html); 64 bits of the
    hash tell layers apart, and the full hash goes in each version's description.
    """
    return f"bertless-runtime-py{python.replace('.', '')}-{arch}-{sha256[:16]}"


def description(sha256: str) -> str:
    """What a published version's description says, so a planner can recognise the content."""
    return f"bertless runtime layer, zip sha256 {sha256}"


def describe(path: Path, entries: Sequence[Entry], python: str, arch: str) -> LayerZip:
    """The `LayerZip` of a layer zip just written from `entries`."""
    digest = sha256_file(path)
    return LayerZip(
        name=layer_name(digest, python, arch),
        path=path,
        sha256=digest,
        zipped_bytes=path.stat().st_size,
        unzipped_bytes=sum(e.size for e in entries),
    )


def unpack(function_zip: Path, layer: LayerZip | None, root: Path) -> Path:
    """A function zip extracted at `root` with its layer's `python/` files beside its own.

    Lambda would put the layer at /opt/python, after /var/task on `sys.path`; the two never hold
    the same module (`split` sends each file to one of them), so one folder imports the same
    code, and what runs the artifact locally (bench, the cold-start benchmark) needs no second
    path.
    """
    with zipfile.ZipFile(function_zip) as archive:
        archive.extractall(root)
    if layer is not None:
        with zipfile.ZipFile(layer.path) as archive:
            inside = [name for name in archive.namelist() if name.startswith(f"{LAYER_ROOT}/")]
            for name in inside:
                target = root / name.removeprefix(f"{LAYER_ROOT}/")
                if name.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(name) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
    return root
