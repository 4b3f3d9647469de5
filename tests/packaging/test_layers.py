"""`bertless package aws --layers`: the runtime in a content-named Lambda layer.

The int8 default model split in two (`packaged(..., layers=True)`, Python 3.11, the Python this
machine has): both zips upload directly, and the proof runs the function with the layer where
Lambda puts it (/opt/python). Split without being asked when one zip would be over the 50 MB
direct upload: the int8 model for Python 3.12 (tests/packaging/test_package.py).
"""

from __future__ import annotations

import zipfile

import pytest

from bertless.packaging.layouts import LAYOUTS
from bertless.packaging.package import package, read_artifact
from bertless.packaging.proof import prove
from bertless.packaging.report import PackagingError, Report

PYTHON = "3.11"
MiB = 1024 * 1024
DIRECT_UPLOAD = 50 * MiB  # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
UNZIPPED = 262_144_000  # the same page: function and all its layers, extracted


def infos(path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        return archive.infolist()


def test_int8_split_in_two_both_zips_upload_directly(packaged):
    artifact = packaged("aws", "int8", layers=True)
    report = Report.read(artifact.report_path)

    assert artifact.layer is not None and report.upload == "direct"
    assert artifact.zipped_bytes == artifact.path.stat().st_size < DIRECT_UPLOAD
    assert artifact.layer.zipped_bytes == artifact.layer.path.stat().st_size < DIRECT_UPLOAD
    assert artifact.layer.path.parent == artifact.path.parent
    # the unzipped limit binds the function and its layers together
    function, layer = infos(artifact.path), infos(artifact.layer.path)
    assert artifact.unzipped_bytes == sum(i.file_size for i in function + layer) < UNZIPPED
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["zipped size, direct upload"] == "ok"
    assert statuses["layer zipped size, direct upload"] == "ok"
    assert statuses["unzipped size"] in ("ok", "warning")
    (count,) = [c for c in report.checks if c.name == "layers"]
    assert (count.figure, count.limit, count.status) == (1, 5, "ok")
    assert count.source == "https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html"


def test_the_function_zip_holds_bertless_and_the_bundle_and_the_layer_the_runtime(packaged):
    artifact = packaged("aws", "int8", layers=True)
    function = [i.filename for i in infos(artifact.path)]
    layer = [i.filename for i in infos(artifact.layer.path)]

    assert {name.partition("/")[0] for name in function} == {
        "lambda_function.py",
        "__pycache__",  # the entry file's bytecode
        "bertless",
        "bundle",
    }
    assert all(name.startswith("python/") for name in layer)
    tops = {name.split("/")[1] for name in layer}
    assert {"onnxruntime", "numpy", "tokenizers", "msgspec"} <= tops
    assert not tops & {"bertless", "bundle", "torch", "transformers", "pydantic", "pydantic_core"}
    # the layer's bytecode sits beside its sources, under python/ as Lambda will import them
    assert "python/numpy/__pycache__/__init__.cpython-311.pyc" in layer


def test_the_proof_imports_the_runtime_from_the_layer_and_fails_without_it(packaged):
    artifact = packaged("aws", "int8", layers=True)
    report = Report.read(artifact.report_path)
    assert report.proof["status"] == "passed", report.proof["reason"]
    assert {"onnxruntime", "numpy", "tokenizers"} <= set(report.proof["modules"])
    assert report.proof["precompiled"] == report.proof["imported_sources"] > 100

    routes = [("GET", "/health"), ("POST", "/embed")]
    with pytest.raises(PackagingError, match="failed its proof"):
        prove("aws", artifact.path, LAYOUTS["aws"].entry_point, PYTHON, routes)


def test_a_layer_is_named_by_its_content_so_another_bundle_finds_the_same_one(
    packaged, classifier_bundle, tmp_path
):
    first = packaged("aws", "int8", layers=True)
    other = package("aws", classifier_bundle, tmp_path, python=PYTHON, prove=False, layers=True)

    assert other.layer is not None and other.sha256 != first.sha256
    assert other.layer.name == first.layer.name
    assert other.layer.path.read_bytes() == first.layer.path.read_bytes()
    assert first.layer.name.startswith(f"bertless-runtime-py311-x86_64-{first.layer.sha256[:16]}")


def test_read_artifact_finds_the_layer_and_refuses_a_changed_one(packaged, tmp_path):
    artifact = packaged("aws", "int8", layers=True)
    assert read_artifact(artifact.report_path) == artifact

    for path in (artifact.path, artifact.report_path, artifact.layer.path):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    with (tmp_path / artifact.layer.path.name).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(PackagingError, match="has changed since it was packaged"):
        read_artifact(tmp_path / artifact.path.name)
    (tmp_path / artifact.layer.path.name).unlink()
    with pytest.raises(PackagingError, match="is missing; build it again"):
        read_artifact(tmp_path / artifact.path.name)


def test_layers_are_refused_for_clouds_without_them(minilm_int8_bundle, tmp_path):
    with pytest.raises(PackagingError, match=r"^--layers is for AWS Lambda only; gcp has no"):
        package("gcp", minilm_int8_bundle, tmp_path, python=PYTHON, layers=True)
