"""`--format image`: an OCI image built with no daemon, pushed to a real registry, read back.

The registry is Debian's `docker-registry` (the CNCF distribution server) on 127.0.0.1, started
here twice: open, and behind htpasswd (Basic) auth. The base image is built here, small (no
registry outside this machine is reachable), and pushed there first.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_fixtures import _serve

from bertless.local.server import free_port
from bertless.packaging import oci
from bertless.packaging.image import build_image
from bertless.packaging.registry import Reference, Registry
from bertless.packaging.report import PackagingError

PYTHON = "3.11"
USER, PASSWORD = "bertless", "test-only-password"


def start_registry(folder: Path, htpasswd: Path | None = None) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is missing: run scripts/ci-services.sh"
    port = free_port()
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: bertless-tests\n    path: {htpasswd}\n"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    url = f"http://127.0.0.1:{port}"
    for _ in _serve([binary, "serve", str(config)], url + "/v2/", folder / "log", "registry"):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    yield from start_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("private-registry")
    htpasswd = folder / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), USER, PASSWORD], check=True)
    yield from start_registry(folder, htpasswd)


def base_image() -> oci.Image:
    """A small base: one layer with a marker file and an environment to be kept."""
    empty = oci.Image(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin", "BASE=kept"]},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        (),
    )
    layer = oci.tar_layer([("etc/base-marker", b"the test base\n")])
    return oci.append(empty, [layer], cmd=["true"], env={}, workdir="/")


def skopeo_digest(reference: str, *auth: str) -> str:
    found = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *auth, f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(found.stdout)["Digest"]


@pytest.fixture(scope="module")
def pushed(registry, minilm_int8_bundle, tmp_path_factory):
    Registry(Reference.parse(f"{registry}/base:1")).push(base_image())
    out = tmp_path_factory.mktemp("image")
    build = build_image(
        "aws",
        minilm_int8_bundle,
        out,
        base=f"{registry}/base:1",
        push=f"{registry}/minilm:1",
        python=PYTHON,
    )
    return build, out


def test_the_image_is_pushed_and_skopeo_reads_back_the_same_digest(pushed, registry):
    build, _ = pushed
    assert skopeo_digest(f"{registry}/minilm:1") == build.digest
    assert build.pushed_to == f"{registry}/minilm:1"
    # the base's one layer was in the registry already: only the two appended layers and the
    # config travelled
    compressed = sum(int(layer["compressed"]) for layer in build.layers)
    assert compressed < build.pushed_bytes < compressed + 10_000


def test_the_layout_holds_the_base_then_runtime_then_function_under_the_task_root(pushed):
    build, _ = pushed
    image = oci.read_layout(Path(build.layout))
    assert image.digest == build.digest and len(image.layers) == 3

    def names(blob: oci.Blob) -> list[str]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as tar:
            return [m.name for m in tar.getmembers() if m.isfile()]

    assert names(image.layers[0]) == ["etc/base-marker"]
    runtime, function = names(image.layers[1]), names(image.layers[2])
    assert "var/task/onnxruntime/__init__.py" in runtime
    assert "var/task/lambda_function.py" in function and "var/task/bundle/model.onnx" in function
    assert not [n for n in runtime if n.startswith(("var/task/bundle/", "var/task/bertless/"))]
    run = image.config["config"]
    assert run["Cmd"] == ["lambda_function.handler"] and run["WorkingDir"] == "/var/task"
    assert {"PATH=/usr/bin", "BASE=kept", "LAMBDA_TASK_ROOT=/var/task"} <= set(run["Env"])
    assert len(image.config["rootfs"]["diff_ids"]) == 3
    # the Dockerfile beside it builds the same files on the same base
    dockerfile = Path(build.layout).parent / Path(build.layout).name.replace("-image", "-docker")
    text = (dockerfile / "Dockerfile").read_text()
    assert f"FROM {registry_of(build)}/base:1" in text and "COPY function/ /var/task/" in text
    assert (dockerfile / "function" / "lambda_function.py").is_file()


def registry_of(build) -> str:
    return build.base.rsplit("/", 1)[0]


def test_same_inputs_same_digest_and_a_changed_bundle_pushes_only_its_own_layer(
    pushed, registry, classifier_bundle, minilm_int8_bundle, tmp_path
):
    first, _ = pushed
    again = build_image(
        "aws",
        minilm_int8_bundle,
        tmp_path / "again",
        base=f"{registry}/base:1",
        push=f"{registry}/minilm:1",
        python=PYTHON,
    )
    assert again.digest == first.digest and again.pushed_bytes == 0

    other = build_image(
        "aws",
        classifier_bundle,
        tmp_path / "other",
        base=f"{registry}/base:1",
        push=f"{registry}/minilm:2",  # a new version in the same repository
        python=PYTHON,
    )
    assert other.digest != first.digest
    assert other.layers[0]["digest"] == first.layers[0]["digest"]  # the runtime layer: reused
    function = int(other.layers[1]["compressed"])
    assert function < other.pushed_bytes < function + 10_000  # its layer and its config only
    assert skopeo_digest(f"{registry}/minilm:2") == other.digest


def test_a_registry_behind_htpasswd_takes_the_push_with_credentials_only(private_registry):
    image = base_image()
    with pytest.raises(PackagingError, match="asks for a user and password"):
        Registry(Reference.parse(f"{private_registry}/base:1")).push(image)

    registry = Registry(Reference.parse(f"{private_registry}/base:1"), USER, PASSWORD)
    digest = registry.push(image)
    creds = f"--creds={USER}:{PASSWORD}"
    assert skopeo_digest(f"{private_registry}/base:1", creds) == digest == image.digest


def test_bad_references_are_one_sentence():
    with pytest.raises(PackagingError, match=r"^'minilm' is not an image reference"):
        Reference.parse("minilm")
    assert Reference.parse("localhost:5000/team/minilm").base_url == (
        "http://localhost:5000/v2/team/minilm"
    )
    assert Reference.parse("public.ecr.aws/lambda/python:3.12").base_url.startswith("https://")


def test_the_cli_builds_on_a_base_from_a_layout_folder_with_its_variables(
    minilm_int8_bundle, tmp_path, monkeypatch, capsys
):
    import argparse

    from bertless.cli.package import add_parser

    base = base_image()
    oci.write_layout(base, tmp_path / "base", "latest")
    monkeypatch.setenv("BERTLESS_FORMAT", "image")
    monkeypatch.setenv("BERTLESS_IMAGE_BASE", str(tmp_path / "base"))
    top = argparse.ArgumentParser(prog="bertless")
    add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(
        ["package", "aws", str(minilm_int8_bundle), "--python", PYTHON, "--out", str(tmp_path)]
    )

    assert args.run(args) == 0
    (layout,) = tmp_path.glob("*-image")
    image = oci.read_layout(layout)
    assert image.layers[0].digest == base.layers[0].digest and len(image.layers) == 3
    assert f"image {image.digest}" in capsys.readouterr().out


@pytest.fixture(scope="module")
def bert_base_fp32(tmp_path_factory, minilm_path) -> Path:
    """A BERT-base-sized encoder (768 hidden, 12 layers) with random weights, exported fp32
    (435 MB, over Lambda's 250 MB zip limit): about 75 s here."""
    import torch
    from transformers import BertConfig, BertModel

    from bertless.models.export import export

    root = tmp_path_factory.mktemp("bert-base")
    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(root / "checkpoint")
    shutil.copyfile(minilm_path / "vocab.txt", root / "checkpoint" / "vocab.txt")
    (root / "checkpoint" / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    export(root / "checkpoint", root / "fp32", task="feature-extraction", max_length=128)
    return root / "fp32"


def test_bert_base_fp32_refused_as_a_zip_is_built_and_proven_as_an_image(bert_base_fp32, tmp_path):
    oci.write_layout(base_image(), tmp_path / "base", "latest")

    build = build_image("aws", bert_base_fp32, tmp_path, base=str(tmp_path / "base"), python=PYTHON)

    image = oci.read_layout(Path(build.layout))
    model = (bert_base_fp32 / "model.onnx").stat().st_size
    assert model > 250 * 2**20  # what a zip could not hold
    assert build.uncompressed_bytes > model and build.check["status"] == "ok"
    assert build.check["limit"] == 10 * 2**30  # Lambda's image limit, uncompressed
    assert build.uncompressed_bytes == sum(len(gzip.decompress(b.data)) for b in image.layers)
    report = json.loads((tmp_path / f"{Path(build.layout).name}.json").read_text())
    assert report["digest"] == image.digest
    assert build.proof["status"] == "passed", build.proof["reason"]


def test_the_image_is_proven_in_its_unpacked_root_and_fails_without_the_runtime_layer(
    pushed, minilm_int8_bundle
):
    from bertless.packaging.image import _prove_image

    build, _ = pushed
    assert build.proof["status"] == "passed", build.proof["reason"]
    assert {"onnxruntime", "numpy", "tokenizers"} <= set(build.proof["modules"])
    image = oci.read_layout(Path(build.layout))
    without_runtime = oci.Image(image.config, (image.layers[0], image.layers[2]))
    with pytest.raises(PackagingError, match="failed its proof"):
        _prove_image("aws", without_runtime, Path(build.layout), minilm_int8_bundle, PYTHON)
