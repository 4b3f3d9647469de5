"""A corrupted model file is refused, sealed or not; a sealed bundle is not hashed again at load.

The seal's figures are checked against values computed here independently (binascii's CRC-32 of
the whole file, hashlib's sha256 of the manifest, the file's length).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bertless import Predictor
from bertless.core import bundle as bundle_module
from bertless.core.bundle import SEAL_NAME, load_bundle, seal_bundle
from bertless.core.errors import BundleError
from bertless.core.service import Request, Service


@pytest.fixture
def copy(minilm_bundle, tmp_path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(minilm_bundle, target)
    return target


@pytest.fixture
def sealed(copy) -> Path:
    (copy / SEAL_NAME).write_bytes(seal_bundle(copy))
    return copy


def flip_bytes(file: Path) -> None:
    """Invert 3 bytes in the middle of FILE, leaving its size alone (bit rot, not truncation)."""
    data = bytearray(file.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 3):
        data[i] ^= 0xFF
    file.write_bytes(bytes(data))


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 4096])


def test_the_seal_records_each_files_size_and_crc32_and_the_manifests_sha256(copy):
    seal = json.loads(seal_bundle(copy))

    manifest = (copy / "bundle.json").read_bytes()
    assert seal["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert set(seal["files"]) == {"model.onnx", "tokenizer.json"}
    for name, record in seal["files"].items():
        data = (copy / name).read_bytes()
        assert record == {"size": len(data), "crc32": binascii.crc32(data)}


@pytest.mark.parametrize("damage", [flip_bytes, truncate])
def test_an_unsealed_bundle_refuses_a_damaged_model_by_its_sha256(copy, damage):
    damage(copy / "model.onnx")
    with pytest.raises(BundleError, match=r"model.onnx does not match the sha256 in bundle.json"):
        Predictor.load(copy)


def test_a_sealed_bundle_refuses_flipped_bytes_by_their_crc32(sealed):
    flip_bytes(sealed / "model.onnx")
    with pytest.raises(
        BundleError,
        match=r"model.onnx does not match the CRC-32 recorded when the bundle was packaged "
        r"\(bundle.seal.json\): the file was changed; rebuild the artifact\.",
    ):
        Predictor.load(sealed)


def test_a_sealed_bundle_refuses_a_truncated_model_by_its_size(sealed):
    size = (sealed / "model.onnx").stat().st_size
    truncate(sealed / "model.onnx")
    with pytest.raises(
        BundleError,
        match=rf"model.onnx is {size - 4096:,} bytes but was {size:,} when the bundle was "
        r"packaged \(bundle.seal.json\): the file was truncated or changed",
    ):
        Predictor.load(sealed)


def test_a_service_on_a_damaged_sealed_bundle_answers_503_with_the_sentence(sealed):
    flip_bytes(sealed / "model.onnx")
    service = Service.from_bundle(sealed)
    body = json.dumps({"inputs": "a text"}).encode()

    response = service.handle(Request("POST", "/embed", {"Content-Type": "application/json"}, body))

    assert response.status == 503
    assert "model.onnx does not match the CRC-32" in response.json()["error"]


def hashed_files(monkeypatch) -> list[str]:
    """The names of the files `load_bundle` hashes with sha256 from now on."""
    hashed: list[str] = []
    real = bundle_module.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(bundle_module, "sha256_file", counting)
    return hashed


def test_a_sealed_bundle_hashes_only_its_manifest_at_load(sealed, monkeypatch):
    hashed = hashed_files(monkeypatch)
    load_bundle(sealed)
    assert hashed == ["bundle.json"]


def test_a_seal_of_another_manifest_is_ignored_and_every_file_hashed(sealed, monkeypatch):
    manifest = json.loads((sealed / "bundle.json").read_text())
    manifest["auto_truncate"] = not manifest["auto_truncate"]
    (sealed / "bundle.json").write_text(json.dumps(manifest))
    hashed = hashed_files(monkeypatch)

    load_bundle(sealed)

    assert sorted(hashed) == ["bundle.json", "model.onnx", "tokenizer.json"]


@pytest.mark.parametrize("seal", [b"not json", b"[]", b'{"manifest_sha256": 1}'])
def test_an_unreadable_seal_falls_back_to_sha256(copy, seal):
    (copy / SEAL_NAME).write_bytes(seal)
    flip_bytes(copy / "model.onnx")
    with pytest.raises(BundleError, match=r"model.onnx does not match the sha256"):
        load_bundle(copy)


def test_a_bundle_that_fails_its_sha256_is_never_sealed(copy):
    flip_bytes(copy / "tokenizer.json")
    with pytest.raises(BundleError, match=r"tokenizer.json does not match the sha256"):
        seal_bundle(copy)
