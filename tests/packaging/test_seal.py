"""An artifact's bundle carries its seal, and a served artifact refuses a damaged model file.

The artifact runs as Lambda runs it (awslambdaric, a clean CPython 3.12, the local Runtime API
stand-in), so what is checked is what a function's first request would answer.
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path

import pytest

from bertless.bench.latency import function_url_event
from bertless.core.bundle import SEAL_NAME
from bertless.local.execution_environment import ExecutionEnvironment, artifact_launch
from bertless.packaging.layer import unpack


def first_answer(artifact, root: Path) -> dict:
    launch = artifact_launch(artifact, root)
    body = json.dumps({"inputs": ["a text"]}).encode()
    with ExecutionEnvironment(launch) as environment:
        environment.start()
        environment.wait_ready(120)
        invocation = environment.invoke(function_url_event("POST", "/embed", body), timeout=60)
    return invocation.json()


def test_the_artifacts_bundle_carries_a_seal_of_its_files(bench_aws_artifact, tmp_path):
    root = unpack(bench_aws_artifact.path, bench_aws_artifact.layer, tmp_path / "task")
    seal = json.loads((root / "bundle" / SEAL_NAME).read_text())
    for name, record in seal["files"].items():
        data = (root / "bundle" / name).read_bytes()
        assert record == {"size": len(data), "crc32": binascii.crc32(data)}


@pytest.mark.parametrize(
    ("damage", "sentence"),
    [
        ("flip", "model.onnx does not match the CRC-32 recorded when the bundle was packaged"),
        ("truncate", "when the bundle was packaged (bundle.seal.json): the file was truncated"),
    ],
)
def test_a_served_artifact_refuses_a_damaged_model_file(
    bench_aws_artifact, tmp_path, damage, sentence
):
    root = unpack(bench_aws_artifact.path, bench_aws_artifact.layer, tmp_path / "task")
    model = root / "bundle" / "model.onnx"
    data = bytearray(model.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-4096:]
    model.write_bytes(bytes(data))

    answer = first_answer(bench_aws_artifact, root)

    assert answer["statusCode"] == 503
    error = json.loads(answer["body"])["error"]
    assert error.startswith("the model failed to load: ") and sentence in error
