"""A static bundle's artifact leaves onnxruntime out and still answers every route of its task,
proven in a clean interpreter from the unzipped artifact."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from tokenizers import Tokenizer

from bertless.core.bundle import read_manifest
from bertless.models.distill import Teacher
from bertless.models.static import write_bundle
from bertless.packaging.package import package
from bertless.packaging.report import Report

PYTHON = "3.11"  # the Python this machine has, so the proof runs
ONNX_ONLY = ("onnxruntime", "coloredlogs", "flatbuffers", "protobuf", "sympy", "mpmath")


@pytest.fixture(scope="module")
def static_bundle(tmp_path_factory, minilm_bundle):
    """A random 32-dimension table over MiniLM's tokenizer, int8 as a distilled one ships."""
    out = tmp_path_factory.mktemp("static")
    tokenizer = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(True), 32))
    teacher = Teacher(minilm_bundle, None, read_manifest(minilm_bundle))
    write_bundle(table.astype(np.float32), teacher, out, quantize="int8")
    return out


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_a_static_artifact_has_no_onnxruntime_and_answers(tmp_path, static_bundle, cloud):
    artifact = package(cloud, static_bundle, tmp_path, python=PYTHON)
    report = Report.read(artifact.report_path)
    assert report.proof["status"] == "passed", report.proof["reason"]
    assert all(r["status"] == 200 for r in report.proof["requests"])
    assert "/embed" in {r["path"] for r in report.proof["requests"]}
    assert {"bertless", "numpy", "tokenizers"} <= set(report.proof["modules"])
    assert "onnxruntime" not in report.proof["modules"]
    shipped = {w["name"] for w in report.wheels}
    assert shipped.isdisjoint(ONNX_ONLY), shipped
    with zipfile.ZipFile(artifact.path) as archive:
        files = archive.namelist()
    assert not [f for f in files if "onnxruntime" in f]
    if cloud == "gcp":  # the platform installs requirements.txt: it must not ask for onnxruntime
        with zipfile.ZipFile(artifact.path) as archive:
            assert "onnxruntime" not in archive.read("requirements.txt").decode()
