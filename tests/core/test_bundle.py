"""A broken bundle fails at load with one sentence naming the file and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertless import Predictor
from bertless.core.bundle import (
    Manifest,
    load_bundle,
    read_manifest,
    sha256_file,
    write_manifest,
)
from bertless.core.errors import BundleError


@pytest.fixture
def copy(minilm_bundle, tmp_path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(minilm_bundle, target)
    return target


def edit_manifest(bundle: Path, **changes) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest.update(changes)
    (bundle / "bundle.json").write_text(json.dumps(manifest))


def test_a_good_bundle_loads_and_lists_every_file(minilm_bundle):
    bundle = load_bundle(minilm_bundle)
    assert set(bundle.manifest.files) == {"model.onnx", "tokenizer.json"}
    assert bundle.manifest.files["model.onnx"] == sha256_file(minilm_bundle / "model.onnx")


def test_missing_model_file_is_named(copy):
    (copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match=r"model.onnx is missing from the bundle; re-export"):
        Predictor.load(copy)


def test_missing_manifest_is_named(copy):
    (copy / "bundle.json").unlink()
    with pytest.raises(BundleError, match=r"bundle.json is missing: point at a directory made by"):
        Predictor.load(copy)


def test_changed_file_fails_its_checksum(copy):
    with (copy / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(
        BundleError, match=r"tokenizer.json does not match the sha256 in bundle.json"
    ):
        Predictor.load(copy)


def test_manifest_from_a_newer_schema_asks_for_an_upgrade(copy):
    edit_manifest(copy, schema_version=99)
    with pytest.raises(
        BundleError, match=r"schema version 99, newer than the 1 .* upgrade bertless"
    ):
        Predictor.load(copy)


def test_manifest_with_a_wrong_field_names_it(copy):
    edit_manifest(copy, max_length="long")
    with pytest.raises(BundleError, match=r"not a valid manifest: max_length"):
        Predictor.load(copy)


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"max_length": 0}, r"not a valid manifest: max_length: Expected `int` >= 1\."),
        ({"colour": "red"}, r"not a valid manifest: manifest: .*unknown field `colour`\."),
        ({"task": "translation"}, r"not a valid manifest: task: Invalid enum value 'translation'"),
        ({"parity": {"min": 1}}, r"not a valid manifest: parity: .*missing required field"),
        ({"inputs": ["input_ids", 7]}, r"not a valid manifest: inputs\[1\]: Expected `str`"),
    ],
)
def test_each_kind_of_bad_manifest_is_one_sentence_naming_the_field(copy, changes, sentence):
    edit_manifest(copy, **changes)
    with pytest.raises(BundleError, match=sentence):
        Predictor.load(copy)


OLD_MANIFESTS = Path(__file__).parent / "old_manifests"


@pytest.mark.parametrize("name", sorted(p.name for p in OLD_MANIFESTS.glob("*.json")))
def test_a_manifest_written_when_it_was_a_pydantic_model_reads_and_writes_back_unchanged(
    name, tmp_path
):
    """bundle.json files written by bertless before the manifest became a msgspec Struct (one
    per architecture, from real exports): every field reads as written, and writing the manifest
    back gives the same bytes, so an old bundle's sha256 and its artifact's seal still hold."""
    old = (OLD_MANIFESTS / name).read_bytes()
    (tmp_path / "bundle.json").write_bytes(old)
    manifest = read_manifest(tmp_path)
    expected = json.loads(old)
    assert manifest.files == expected["files"]
    assert manifest.architecture == expected["architecture"]
    if expected["parity"] is not None:
        assert manifest.parity.min == expected["parity"]["min"]
    out = tmp_path / "again"
    out.mkdir()
    write_manifest(out, manifest)
    assert (out / "bundle.json").read_bytes() == old


def test_an_export_cannot_write_a_manifest_that_would_not_load(tmp_path):
    manifest = Manifest(
        model_id="m", task="feature-extraction", max_length=0, inputs=[], output="x", files={}
    )
    with pytest.raises(BundleError, match=r"manifest for .* is not valid: max_length: Expected"):
        write_manifest(tmp_path, manifest)
    assert not (tmp_path / "bundle.json").exists()


def test_graph_inputs_that_disagree_with_the_manifest_are_named(copy):
    edit_manifest(copy, inputs=["input_ids", "attention_mask"])
    with pytest.raises(BundleError, match=r"takes inputs .* but bundle.json says"):
        Predictor.load(copy)


def test_unknown_output_is_named(copy):
    edit_manifest(copy, output="pooler_output")
    with pytest.raises(BundleError, match=r"has no output 'pooler_output'"):
        Predictor.load(copy)


def test_not_a_directory(tmp_path):
    with pytest.raises(BundleError, match=r"is not a directory: export a bundle there"):
        Predictor.load(tmp_path / "nowhere")
