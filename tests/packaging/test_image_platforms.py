"""`--format image` for Cloud Run and Azure Functions: built on stand-in bases, proven over HTTP.

The bases are `image_bases.py`'s stand-ins (this machine's CPython laid out as `python:X.Y-slim`
lays it out; for Azure, a stand-in Functions host as entrypoint), since no registry outside this
machine is reachable. The proof is the image's own process, run chrooted in the root filesystem
umoci unpacks from the layout, answering each route over HTTP on the port the platform's variable
names; the image is then pushed to Debian's docker-registry and read back by skopeo.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from image_bases import azure_base, python_base
from test_image import registry, skopeo_digest  # noqa: F401  (the registry fixture)

from bertless.packaging import image_run, oci
from bertless.packaging.image import build_image
from bertless.packaging.report import PackagingError
from bertless.platforms.images import AZURE_IMAGE, GCP_IMAGE

PYTHON = "3.11"

pytestmark = pytest.mark.skipif(
    image_run.unavailable() is not None, reason=str(image_run.unavailable())
)


@pytest.fixture(scope="module")
def built(minilm_int8_bundle, registry, tmp_path_factory):  # noqa: F811
    """Each cloud's image of the int8 default, on its stand-in base, pushed."""
    builds = {}
    for cloud, base in (("gcp", python_base(PYTHON)), ("azure", azure_base(PYTHON))):
        out = tmp_path_factory.mktemp(f"image-{cloud}")
        oci.write_layout(base, out / "base", "latest")
        builds[cloud] = build_image(
            cloud,
            minilm_int8_bundle,
            out,
            base=str(out / "base"),
            push=f"{registry}/minilm-{cloud}:1",
            python=PYTHON,
        )
    return builds


def names(blob: oci.Blob) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


def proven_over_http(build, routes: int = 8) -> None:
    proof = build.proof
    assert proof["status"] == "passed", proof["reason"]
    assert "over HTTP" in proof["reason"] and "umoci" in proof["reason"]
    assert len(proof["requests"]) == routes  # the feature-extraction task's routes
    assert {r["via"] for r in proof["requests"]} == {"HTTP, in the image"}
    assert {r["status"] for r in proof["requests"]} == {200}


def test_a_cloud_run_image_serves_functions_framework_on_port_and_is_pushed(built, registry):  # noqa: F811
    build = built["gcp"]
    proven_over_http(build)
    assert build.proof["interpreter"].startswith("python -m functions_framework --target=handle")
    assert skopeo_digest(f"{registry}/minilm-gcp:1") == build.digest
    image = oci.read_layout(Path(build.layout))
    run = image.config["config"]
    # Cloud Run's contract: the command serves on $PORT (the proof set it); files in /workspace
    assert run["Cmd"] == list(GCP_IMAGE.cmd) and run["WorkingDir"] == "/workspace"
    assert "PYTHONPATH=/workspace" in run["Env"]
    runtime, function = names(image.layers[-2]), names(image.layers[-1])
    # requirements.txt installed into the runtime layer, as Google would at deploy
    assert "workspace/functions_framework/__init__.py" in runtime
    assert "workspace/onnxruntime/__init__.py" in runtime
    assert {"workspace/main.py", "workspace/bundle/model.onnx"} <= set(function)
    assert not [n for n in runtime if n.startswith(("workspace/bundle/", "workspace/bertless/"))]
    dockerfile = Path(build.layout).parent / "all-minilm-l6-v2-int8-gcp-py3-11-x86_64-docker"
    text = (dockerfile / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "functions_framework"' in text
    assert "COPY runtime/ /workspace/" in text and "ENV PYTHONPATH=/workspace" in text
    assert build.check is None  # Cloud Run documents no image size cap


def test_an_azure_image_keeps_the_bases_host_and_serves_from_wwwroot(built, registry):  # noqa: F811
    build = built["azure"]
    proven_over_http(build)
    assert build.proof["interpreter"] == "python /azure-functions-host/standin_host.py"
    assert skopeo_digest(f"{registry}/minilm-azure:1") == build.digest
    image = oci.read_layout(Path(build.layout))
    run = image.config["config"]
    assert "Cmd" not in run  # the base's entrypoint, the Functions host, serves the app
    assert run["Entrypoint"] == ["python", "/azure-functions-host/standin_host.py"]
    assert {f"{k}={v}" for k, v in AZURE_IMAGE.env.items()} <= set(run["Env"])
    runtime, function = names(image.layers[-2]), names(image.layers[-1])
    site = "home/site/wwwroot/.python_packages/lib/site-packages/"
    assert f"{site}onnxruntime/__init__.py" in runtime
    assert {n for n in runtime if not n.startswith(site)} == set()
    assert {"home/site/wwwroot/function_app.py", "home/site/wwwroot/host.json"} <= set(function)


def test_the_image_proof_fails_when_the_runtime_layer_is_left_out(built, tmp_path):
    image = oci.read_layout(Path(built["gcp"].layout))
    config = json.loads(json.dumps(image.config))
    del config["rootfs"]["diff_ids"][-2]  # umoci checks each layer against its diff_id
    oci.write_layout(oci.Image(config, (*image.layers[:-2], image.layers[-1])), tmp_path / "x", "t")
    broken = "exited with 1 before it served: .*No module named functions_framework"
    with pytest.raises(PackagingError, match=broken):
        image_run.serve_and_ask(tmp_path / "x", "t", GCP_IMAGE, [("GET", "/health")], "gcp")


def test_an_image_without_the_program_its_command_names_is_refused(tmp_path):
    """A --base without the interpreter the image's command runs (a wrong or a bare base) was
    Popen's FileNotFoundError, as a traceback from `bertless package`."""
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    layer = oci.tar_layer([("etc/marker", b"no python in here\n")])
    bare = oci.append(
        oci.Image(config, ()), [layer], cmd=["python", "-m", "app"], env={}, workdir="/"
    )
    oci.write_layout(bare, tmp_path / "x", "t")
    refused = r"the gcp image cannot start `python -m app`: No such file or directory: 'python'"
    with pytest.raises(PackagingError, match=refused):
        image_run.serve_and_ask(tmp_path / "x", "t", GCP_IMAGE, [("GET", "/health")], "gcp")
