"""A broken bundle fails at load with one sentence naming the file and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertless import Predictor
from bertless.core.bundle import load_bundle, sha256_file
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
