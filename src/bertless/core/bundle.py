"""The bundle: `model.onnx` + `tokenizer.json` + `bundle.json`, the one unit every target serves.

Loading checks the files against the manifest so that a broken bundle fails at load time with a
sentence naming the file, never at the first request with a deep onnxruntime traceback.

How it checks, and what that costs a cold start (`load_bundle`): a bundle as exported is checked
file by file against the sha256 its manifest records (~50 ms for the 30 MB int8 MiniLM on these
machines, more on a function's fraction of a CPU). An artifact's bundle is checked that way once,
when packaging seals it (`seal_bundle`), and carries the seal: each file's size and CRC-32, bound
to this very manifest by the manifest's own sha256. A sealed bundle is then checked by size and
CRC-32 (about 4x cheaper than sha256, still every byte read), which catches every accidental
change: a truncated, extended, missing or swapped file, and any flipped bits (every error burst of
up to 32 bits for certain, any other random change but for a chance of 2^-32). It does not catch a
deliberate forgery, since CRC-32 is not a cryptographic hash and whoever can rewrite a file can
rewrite the seal: the sha256 of the whole zip, checked by packaging and by the platform at upload
(Lambda's CodeSha256), is what guards against that.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, field

from bertless.core.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST_NAME = "bundle.json"
MODEL_NAME = "model.onnx"
TOKENIZER_NAME = "tokenizer.json"
SEAL_NAME = "bundle.seal.json"  # written by packaging into an artifact's bundle (`seal_bundle`)
EMBEDDINGS_NAME = "embeddings.npy"  # a static student's table (`core/engine_static.py`)
SCALES_NAME = "embedding_scales.npy"  # its rows' scales, when the table is int8

Task = Literal["feature-extraction", "text-classification"]


class Parity(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How closely the ONNX model reproduces the PyTorch model, measured at export."""

    reference: Annotated[str, Meta(description="What the bundle was compared with: 'torch fp32'.")]
    metric: Annotated[
        str, Meta(description="'cosine' for embeddings, 'max_abs_diff' for probabilities.")
    ]
    min: float
    mean: float
    sentences: int


class Manifest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`bundle.json`: everything a runtime must know to turn texts into answers.

    A msgspec Struct, like the request bodies (core/schemas.py): reading one is a single C call
    (`msgspec.convert`) with no validator to build at a cold start. Like a dataclass,
    constructing one checks nothing: `read_manifest` checks what a bundle carries, and
    `write_manifest` checks what an export writes.
    """

    schema_version: int = SCHEMA_VERSION
    model_id: str
    architecture: Annotated[
        Literal["transformer", "static", "bilstm"],
        Meta(
            description="What the model is and so which engine runs it: a transformer encoder "
            "or a BiLSTM student (ONNX, onnxruntime), or a static embedding table (numpy only)."
        ),
    ] = "transformer"
    revision: str | None = None
    task: Task
    labels: Annotated[list[str], Meta(description="Output order of the logits.")] = field(
        default_factory=list
    )
    problem_type: Literal["single_label_classification", "multi_label_classification"] | None = None
    pooling: Literal["mean", "cls"] | None = None
    normalize: bool = False
    dimension: int | None = None
    matryoshka_dimensions: Annotated[
        list[int],
        Meta(
            description="Smaller dimensions the model was trained to be cut to (Matryoshka "
            "representation learning); a request's `dimensions` is honoured only for these."
        ),
    ] = field(default_factory=list)
    max_length: Annotated[int, Meta(gt=0)]
    pad_token_id: int = 0
    max_batch_size: Annotated[int, Meta(gt=0)] = 32
    auto_truncate: bool = False
    inputs: Annotated[list[str], Meta(description="ONNX input names, in the graph's order.")]
    output: Annotated[str, Meta(description="The ONNX output the runtime reads.")]
    precision: Literal["fp32", "int8"] = "fp32"
    files: Annotated[
        dict[str, str], Meta(description="sha256 of every file of the bundle but this one.")
    ]
    parity: Parity | None = None
    built_with: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bundle:
    """A checked bundle on disk (a plain dataclass: nothing in it needs validating)."""

    path: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_NAME

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_NAME

    @property
    def checksum(self) -> str:
        """One sha256 for the whole bundle: the hash of its manifest, which hashes every file."""
        return sha256_file(self.path / MANIFEST_NAME)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def crc32_file(path: Path) -> int:
    """The file's CRC-32 (zlib's), read in blocks: the seal's cheap check of every byte."""
    crc, block = 0, bytearray(1 << 20)
    view = memoryview(block)
    with path.open("rb", buffering=0) as handle:
        while read := handle.readinto(block):
            crc = zlib.crc32(view[:read], crc)
    return crc


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate `bundle.json` without touching the other files."""
    manifest_path = Path(path) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(
            f"{manifest_path} is missing: point at a directory made by `bertless export`."
        )
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(
            f"{manifest_path} is not valid JSON ({error}); re-export the bundle."
        ) from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path} has schema version {version}, newer than the {SCHEMA_VERSION} this "
            "bertless reads: upgrade bertless."
        )
    try:
        return msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as error:
        raise BundleError(f"{manifest_path} is not a valid manifest: {_problem(error)}.") from None


def _problem(error: msgspec.ValidationError) -> str:
    """msgspec's first problem as `field: what is wrong` ("Expected `int`, got `str` - at
    `$.max_length`" becomes "max_length: Expected `int`, got `str`"); `manifest:` when the
    problem is the whole object (an unknown or missing field)."""
    message, _, where = str(error).partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    return f"{where or 'manifest'}: {message}"


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read the manifest and check every file it lists exists and is the file exported: by its
    size and CRC-32 when the bundle carries a seal of this manifest, else by its sha256."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(
            f"{root} is not a directory: export a bundle there with `bertless export`."
        )
    manifest = read_manifest(root)
    model = EMBEDDINGS_NAME if manifest.architecture == "static" else MODEL_NAME
    for name in (model, TOKENIZER_NAME):
        if name not in manifest.files:
            raise BundleError(f"{root / MANIFEST_NAME} lists no checksum for {name}; re-export.")
    sealed = _read_seal(root, manifest) if verify else None
    for name, expected in manifest.files.items():
        file = root / name
        if not file.is_file():
            raise BundleError(f"{file} is missing from the bundle; re-export it or copy it back.")
        if not verify:
            continue
        if sealed is not None:
            _check_sealed(file, sealed[name])
        else:
            _check_sha256(file, expected)
    return Bundle(path=root, manifest=manifest)


def seal_bundle(path: str | Path) -> bytes:
    """The seal of the bundle at PATH (the bytes of its `SEAL_NAME`), made only after every file
    passed its sha256 here: packaging puts it in the artifact, so that each cold start checks
    sizes and CRC-32 instead of hashing the model again."""
    bundle = load_bundle(path, verify=False)
    root, manifest = bundle.path, bundle.manifest
    for name, expected in manifest.files.items():
        _check_sha256(root / name, expected)
    files = {
        name: {"size": (root / name).stat().st_size, "crc32": crc32_file(root / name)}
        for name in sorted(manifest.files)
    }
    seal = {"manifest_sha256": sha256_file(root / MANIFEST_NAME), "files": files}
    return (json.dumps(seal, indent=2, sort_keys=True) + "\n").encode()


def _read_seal(root: Path, manifest: Manifest) -> dict[str, dict[str, int]] | None:
    """Each file's sealed size and CRC-32, if the bundle has a readable seal of this manifest
    and every file; otherwise None, and the files are checked by their sha256."""
    try:
        seal = json.loads((root / SEAL_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(seal, dict) or seal.get("manifest_sha256") != sha256_file(
        root / MANIFEST_NAME
    ):
        return None
    files = seal.get("files")
    if not isinstance(files, dict) or set(files) != set(manifest.files):
        return None
    if not all(
        isinstance(record, dict) and all(type(record.get(key)) is int for key in ("size", "crc32"))
        for record in files.values()
    ):
        return None
    return files


def _check_sha256(file: Path, expected: str) -> None:
    if sha256_file(file) != expected:
        raise BundleError(
            f"{file} does not match the sha256 in {MANIFEST_NAME}: the file was changed or "
            "truncated after export; re-export the bundle."
        )


def _check_sealed(file: Path, record: dict[str, int]) -> None:
    size = file.stat().st_size
    if size != record["size"]:
        raise BundleError(
            f"{file} is {size:,} bytes but was {record['size']:,} when the bundle was packaged "
            f"({SEAL_NAME}): the file was truncated or changed; rebuild the artifact."
        )
    if crc32_file(file) != record["crc32"]:
        raise BundleError(
            f"{file} does not match the CRC-32 recorded when the bundle was packaged "
            f"({SEAL_NAME}): the file was changed; rebuild the artifact."
        )


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write `bundle.json` deterministically (sorted keys) so equal bundles hash equal; checked
    first as `read_manifest` will check it, so no export writes a bundle that cannot load."""
    fields = msgspec.to_builtins(manifest)
    try:
        msgspec.convert(fields, Manifest)
    except msgspec.ValidationError as error:
        raise BundleError(f"the manifest for {root} is not valid: {_problem(error)}.") from None
    text = json.dumps(fields, indent=2, sort_keys=True)
    (root / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
