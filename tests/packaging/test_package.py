"""`bertless package`: a zip per cloud, refused before upload when it breaks a limit, proven first.

Artifacts are built once per session (the `packaged` fixture) with `--python 3.11`, the Python this
machine has, so every proof runs in a clean interpreter; wheels come from the wheel cache.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import onnxruntime
import pytest
from packaging.utils import parse_wheel_filename

from bertless.cli.package import add_parser, run
from bertless.packaging.checks import check_glibc, check_zipped
from bertless.packaging.elf import glibc_needed
from bertless.packaging.layouts import LAYOUTS
from bertless.packaging.package import package, read_artifact
from bertless.packaging.proof import find_interpreter
from bertless.packaging.report import LimitError, PackagingError, Report
from bertless.packaging.stage import Entry, add_bytecode, bytecode_fits
from bertless.packaging.wheels import WheelTarget
from bertless.platforms import limits

PYTHON = "3.11"
CLOUDS = ("aws", "gcp", "azure")
ENTRY_POINTS = {"aws": "lambda_function.handler", "gcp": "handle", "azure": "function_app.app"}
EMBEDDING_ROUTES = {"/embed", "/similarity", "/rerank", "/v1/embeddings", "/"}
NEVER_SHIPPED = ("torch/", "transformers/", "huggingface_hub/", "hf_xet/", "fsspec/", "tqdm/")
AWS_QUOTAS = re.escape(limits.AWS_QUOTAS)
CACHE_TAG = "cpython-311"
UNCHECKED_HASH = (0b01).to_bytes(4, "little")  # PEP 552 flags: hash-based, source not checked


def names(artifact) -> list[str]:
    with zipfile.ZipFile(artifact.path) as archive:
        return archive.namelist()


def read(artifact, name: str) -> str:
    with zipfile.ZipFile(artifact.path) as archive:
        return archive.read(name).decode()


@pytest.fixture(scope="module")
def bert_base(tmp_path_factory, minilm_path) -> dict[str, Path]:
    """A BERT-base-sized encoder (768 hidden, 12 layers, 12 heads, 3072 intermediate) with random
    weights, exported fp32 (435 MB) and int8 (174 MB): about 75 s per export here."""
    import torch
    from transformers import BertConfig, BertModel

    from bertless.models.export import export

    root = tmp_path_factory.mktemp("bert-base")
    checkpoint = root / "checkpoint"
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    )
    BertModel(config).save_pretrained(checkpoint)
    shutil.copyfile(minilm_path / "vocab.txt", checkpoint / "vocab.txt")
    (checkpoint / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    bundles = {"fp32": root / "fp32", "int8": root / "int8"}
    export(checkpoint, bundles["fp32"], task="feature-extraction", max_length=128)
    export(checkpoint, bundles["int8"], task="feature-extraction", max_length=128, quantize="int8")
    return bundles


# -- the default model on every cloud ----------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_default_model_is_packaged_and_proven_for_each_cloud(packaged, cloud, precision):
    artifact = packaged(cloud, precision)
    report = Report.read(artifact.report_path)

    assert artifact.path.is_file() and artifact.entry_point == ENTRY_POINTS[cloud]
    assert (artifact.python, artifact.arch, artifact.cloud) == (PYTHON, "x86_64", cloud)
    assert report.proof["status"] == "passed", report.proof["reason"]
    answered = {r["path"] for r in report.proof["requests"] if r["status"] == 200}
    assert EMBEDDING_ROUTES | {"/health", "/info", "/openapi.json"} <= answered
    assert all(r["status"] == 200 for r in report.proof["requests"])
    assert {"bertless", "onnxruntime", "tokenizers", "numpy"} <= set(report.proof["modules"])
    assert all(c.status not in ("refused", "skipped") for c in report.checks)
    assert report.bundle["precision"] == precision


@pytest.mark.skipif(find_interpreter("3.12") is None, reason="no CPython 3.12 on this machine")
def test_aws_default_python_312_takes_amazon_linux_2023_wheels_and_is_proven(
    minilm_int8_bundle, tmp_path
):
    artifact = package("aws", minilm_int8_bundle, tmp_path)
    report = Report.read(artifact.report_path)

    assert (artifact.python, report.runtime, report.glibc) == ("3.12", "python3.12", "2.34")
    assert report.proof["status"] == "passed", report.proof["reason"]
    # its one zip would be over the 50 MB direct upload: the runtime went into a layer
    assert artifact.layer is not None
    with zipfile.ZipFile(artifact.layer.path) as layer:
        files = [name.removeprefix("python/") for name in layer.namelist()]
    # onnxruntime's C API library is for other programs; the Python binding never loads it
    assert not [f for f in files if f.startswith("onnxruntime/capi/libonnxruntime.so")]
    assert [f for f in files if f.startswith("onnxruntime/capi/onnxruntime_pybind11_state")]


def test_aws_proof_answers_http_api_events_and_direct_invocations(packaged):
    report = Report.read(packaged("aws").report_path)
    ways = {(r["path"], r["via"]) for r in report.proof["requests"]}
    assert {("/embed", "HTTP API event"), ("/embed", "direct invocation")} <= ways


def test_aws_zip_holds_the_entry_file_core_adapter_bundle_and_runtime_only(packaged):
    artifact = packaged("aws")
    files = names(artifact)

    assert files == sorted(files)
    assert {"lambda_function.py", "bertless/__init__.py", "bertless/adapters/__init__.py"} <= set(
        files
    )
    assert {"bertless/adapters/aws.py", "bertless/core/service.py", "bundle/model.onnx"} <= set(
        files
    )
    assert {"bundle/tokenizer.json", "bundle/bundle.json", "onnxruntime/__init__.py"} <= set(files)
    ours = [f for f in files if f.startswith("bertless/")]
    assert all(
        f.startswith(("bertless/core/", "bertless/adapters/"))
        or f in ("bertless/__init__.py", f"bertless/__pycache__/__init__.{CACHE_TAG}.pyc")
        for f in ours
    )
    assert not [
        f
        for f in ours
        if f.startswith("bertless/adapters/") and "aws" not in f and "/__init__." not in f
    ]
    assert not [f for f in files if f.startswith(NEVER_SHIPPED)]
    assert not [f for f in files if "/tests/" in f or f.endswith(".h")]
    # the only cached bytecode is the target's own, compiled at packaging time
    assert not [f for f in files if "__pycache__" in f and not f.endswith(f".{CACHE_TAG}.pyc")]
    assert not [f for f in files if f.startswith("onnxruntime/") and "/transformers/" in f]
    assert not [f for f in files if f.endswith(".dist-info/RECORD")]
    entry = read(artifact, "lambda_function.py")
    assert 'os.environ.setdefault(\n    "BERTLESS_BUNDLE"' in entry
    assert "from bertless.adapters.aws import handler" in entry


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_artifacts_package_root_imports_nothing(packaged, cloud):
    """The installed `bertless/__init__.py` imports the library's conveniences; an artifact's must
    not, or every import added there would load in every function."""
    marker = ast.parse(read(packaged(cloud), "bertless/__init__.py"))
    assert ast.get_docstring(marker)
    assert not [n for n in ast.walk(marker) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_zip_entries_have_fixed_times_and_permissions(packaged):
    with zipfile.ZipFile(packaged("aws").path) as archive:
        infos = archive.infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    # the artifact itself is readable by others too, as its split layer is (not mkstemp's 0600)
    assert packaged("aws").path.stat().st_mode & 0o777 == 0o644


def test_aws_python311_wheels_fit_amazon_linux_2_glibc(packaged):
    report = Report.read(packaged("aws").report_path)
    allowed = set(WheelTarget(PYTHON, "x86_64", "2.26").platform_tags()) | {"any"}

    assert report.glibc == "2.26" and report.runtime == "python3.11"
    for wheel in report.wheels:
        _, _, _, tags = parse_wheel_filename(wheel["file"])
        assert any(tag.platform in allowed for tag in tags), wheel["file"]
    glibc = next(c for c in report.checks if c.name.startswith("glibc"))
    assert glibc.status == "ok" and glibc.limit == "2.26"
    versions = {w["name"]: w["version"] for w in report.wheels}
    # the newest onnxruntime with a glibc-2.17 wheel, and the NumPy 1 it was compiled against
    assert versions["onnxruntime"].startswith("1.16.") and versions["numpy"].startswith("1.")


def test_aws_leaves_out_what_the_runtime_never_imports(packaged):
    report = Report.read(packaged("aws").report_path)
    dropped = {d["name"]: d for d in report.dropped}

    assert {"huggingface-hub", "hf-xet", "fsspec", "tqdm", "sympy"} <= set(dropped)
    assert "tokenizer.json" in dropped["huggingface-hub"]["reason"]
    assert sum(d["unpacked_bytes"] for d in dropped.values()) > 20 * 2**20


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_zip_ships_unchecked_hash_bytecode_of_the_target_python_and_the_proof_loads_it(
    packaged, cloud
):
    artifact = packaged(cloud)
    report = Report.read(artifact.report_path)
    files = set(names(artifact))
    sources = [f for f in files if f.endswith(".py")]

    def pyc(source: str) -> str:
        folder, _, file = source.rpartition("/")
        return f"{folder}/__pycache__/{file[:-3]}.{CACHE_TAG}.pyc".lstrip("/")

    assert report.bytecode["status"] == "included", report.bytecode["reason"]
    assert report.bytecode["cache_tag"] == CACHE_TAG
    assert [s for s in sources if pyc(s) not in files] == []
    with zipfile.ZipFile(artifact.path) as archive:
        headers = {name: archive.read(pyc(name))[:8] for name in sources}
    assert {header[4:8] for header in headers.values()} == {UNCHECKED_HASH}
    assert len({header[:4] for header in headers.values()}) == 1  # one Python's magic number
    proof = report.proof
    assert proof["imported_sources"] > 100
    assert proof["precompiled"] == proof["imported_sources"], proof["reason"]


def test_gcp_zip_ships_no_bytecode_the_platform_builds_its_own(packaged):
    report = Report.read(packaged("gcp").report_path)

    assert report.bytecode["status"] == "not shipped"
    assert not [f for f in names(packaged("gcp")) if f.endswith(".pyc")]


def test_bytecode_that_would_cross_the_unzipped_limit_is_left_out():
    entries = [Entry("handler.py", b"def handler(event, context):\n    return 1\n", "bertless")]
    source = entries[0].size
    said = []

    kept, record = add_bytecode(LAYOUTS["aws"], entries, PYTHON, source + 10, said.append)

    assert kept == entries
    assert record["status"] == "left out" and "unzipped limit" in record["reason"]
    assert record["files"] == 1 and record["bytes"] > 10
    assert any("left out" in line for line in said)
    assert bytecode_fits(90, 10, 100) and bytecode_fits(90, 10, None)
    assert not bytecode_fits(91, 10, 100)


def test_bytecode_is_skipped_without_the_target_python(monkeypatch):
    monkeypatch.setattr("bertless.packaging.stage.find_interpreter", lambda python: None)
    entries = [Entry("handler.py", b"x = 1\n", "bertless")]

    kept, record = add_bytecode(LAYOUTS["aws"], entries, "3.13", None, lambda _: None)

    assert kept == entries
    assert record["status"] == "skipped" and "no CPython 3.13" in record["reason"]


def test_gcp_source_zip_pins_exact_versions_and_leaves_installing_to_the_platform(packaged):
    artifact = packaged("gcp")
    files = names(artifact)
    pins = read(artifact, "requirements.txt").split()

    assert {"main.py", "requirements.txt", "bertless/adapters/gcp.py", "bundle/model.onnx"} <= set(
        files
    )
    assert not [f for f in files if f.startswith(("onnxruntime/", "numpy/", ".python_packages"))]
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9][^=]*", pin) for pin in pins)
    assert {p.split("==")[0] for p in pins} >= {"onnxruntime", "tokenizers", "functions-framework"}
    assert "from bertless.adapters.gcp import handle" in read(artifact, "main.py")


def test_azure_zip_vendors_linux_wheels_for_run_from_package(packaged):
    artifact = packaged("azure")
    files = names(artifact)
    site = ".python_packages/lib/site-packages/"

    assert {"function_app.py", "host.json", "requirements.txt", "bundle/model.onnx"} <= set(files)
    assert {site + "onnxruntime/__init__.py", site + "azure/functions/__init__.py"} <= set(files)
    assert [f for f in files if f.startswith(site + "onnxruntime/capi/") and ".so" in f]
    assert json.loads(read(artifact, "host.json"))["extensions"]["http"]["routePrefix"] == ""
    assert "from bertless.adapters.azure import app" in read(artifact, "function_app.py")


def test_report_names_every_limit_with_figure_and_source(packaged):
    artifact = packaged("aws")
    raw = json.loads(artifact.report_path.read_text())

    assert raw["file"] == artifact.path.name and raw["sha256"] == artifact.sha256
    assert raw["entry_point"] == "lambda_function.handler"
    assert raw["zipped_bytes"] == artifact.path.stat().st_size
    assert [p["name"] for p in raw["space"]][:5] == [
        "bundle",
        "onnxruntime",
        "numpy",
        "tokenizers",
        "msgspec",
    ]
    assert sum(p["unzipped_bytes"] for p in raw["space"]) == raw["unzipped_bytes"]
    checked = {c["name"]: c for c in raw["checks"]}
    assert {"unzipped size", "zipped size, direct upload", "peak memory vs --memory"} <= set(
        checked
    )
    assert all(c["source"].startswith("https://") for c in raw["checks"])
    assert checked["unzipped size"]["limit"] == 262144000
    # the fp32 default model zips to more than Lambda's 50 MB direct upload: it goes through S3
    assert raw["upload"] == "object storage"
    assert checked["zipped size, direct upload"]["status"] == "object storage"


def test_read_artifact_round_trips_and_refuses_a_zip_without_its_report(packaged, tmp_path):
    artifact = packaged("aws", "int8", layers=True)
    assert read_artifact(artifact.path) == artifact == read_artifact(artifact.report_path)

    lone = tmp_path / artifact.path.name
    shutil.copyfile(artifact.path, lone)
    with pytest.raises(PackagingError, match=r"\.json is missing: build the artifact with"):
        read_artifact(lone)
    shutil.copyfile(artifact.report_path, lone.with_suffix(".json"))
    with lone.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(PackagingError, match="has changed since it was packaged"):
        read_artifact(lone)


def test_second_build_is_identical_and_asks_no_package_index(
    packaged, minilm_bundle, tmp_path, monkeypatch
):
    first = packaged("aws")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PIP_NO_INDEX", "1")

    second = package("aws", minilm_bundle, tmp_path, python=PYTHON, prove=False)

    assert second.sha256 == first.sha256
    assert second.path.read_bytes() == first.path.read_bytes()
    assert Report.read(second.report_path).downloaded == 0


# -- refusals -------------------------------------------------------------------------------------


def test_bert_base_fp32_is_refused_for_a_lambda_zip_and_its_int8_fits(bert_base, tmp_path):
    with pytest.raises(LimitError) as refused:
        package("aws", bert_base["fp32"], tmp_path / "fp32", python=PYTHON)
    assert re.fullmatch(
        r"AWS Lambda refuses this zip: the bundle alone unzips to 415\.\d MB, over the 250\.0 MB "
        rf"limit on a function's unzipped size \({AWS_QUOTAS}\); export the bundle with "
        r"`bertless export --quantize int8` or build a container image \(up to 10 GB\): "
        r"`bertless package aws BUNDLE --format image`\.",
        str(refused.value),
    )
    assert not (tmp_path / "fp32").exists()

    # int8 (with Attention kept fp32 by export) fits Amazon Linux 2's lighter wheels, narrowly
    fitted = package("aws", bert_base["int8"], tmp_path / "int8", python=PYTHON, prove=False)
    report = Report.read(fitted.report_path)
    unzipped = next(c for c in report.checks if c.name == "unzipped size")
    assert fitted.unzipped_bytes < 262144000 and unzipped.status in ("ok", "warning")


def test_memory_below_the_measured_peak_is_refused(minilm_bundle, tmp_path):
    with pytest.raises(LimitError) as refused:
        package("aws", minilm_bundle, tmp_path, python=PYTHON, memory_mb=256)
    assert re.fullmatch(
        r"AWS Lambda would run out of memory: the bundle's measured peak is \d+ MB \(32 texts of "
        rf"256 tokens\), over the --memory setting of 256 MB \({AWS_QUOTAS}\); pass --memory "
        r"\d+ or more, or export it with --quantize int8\.",
        str(refused.value),
    )
    assert refused.value.check.status == "refused" and refused.value.check.limit == 256
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("cloud", "python", "offered"),
    [("aws", "3.10", "3.11, 3.12, 3.13, 3.14"), ("azure", "3.9", "3.10, 3.11, 3.12, 3.13, 3.14")],
)
def test_python_version_the_platform_does_not_run_is_refused(
    minilm_bundle, tmp_path, cloud, python, offered
):
    platform = limits.get_platform(cloud)
    with pytest.raises(LimitError) as refused:
        package(cloud, minilm_bundle, tmp_path, python=python)
    assert str(refused.value) == (
        f"{platform.name} does not run Python {python}: it offers Python {offered} "
        f"({platform.runtimes[0].source}); pass --python with one of those."
    )


def test_arm64_is_refused_where_the_platform_runs_x86_64_only(minilm_bundle, tmp_path):
    with pytest.raises(
        LimitError, match=r"runs x86_64 only, not arm64 \(https://.+\); pass --arch"
    ):
        package("gcp", minilm_bundle, tmp_path, python=PYTHON, arch="arm64")


def test_a_library_needing_a_newer_glibc_than_the_runtime_is_refused():
    # the build machine's onnxruntime comes from a manylinux_2_27/2_28 wheel
    binding = next(Path(onnxruntime.__file__).parent.glob("capi/onnxruntime_pybind11_state*.so"))
    runtime = limits.require_runtime("aws", "3.11")
    vendored = [(binding.name, binding, "onnxruntime")]
    with pytest.raises(LimitError) as refused:
        check_glibc(limits.AWS, runtime, WheelTarget("3.11", "x86_64", "2.26"), vendored)
    assert re.fullmatch(
        r"AWS Lambda python3\.11 cannot load onnxruntime_pybind11_state.+\.so \(onnxruntime\): it "
        r"needs GLIBC_2\.\d+, newer than the runtime's glibc 2\.26 \(https://.+\); report the "
        r"wheel, or pick a Python whose runtime has a newer glibc\.",
        str(refused.value),
    )


# -- the pieces -----------------------------------------------------------------------------------


def test_zip_over_lambdas_direct_upload_cap_goes_through_object_storage(monkeypatch):
    monkeypatch.setenv(limits.AWS_DIRECT_UPLOAD_ENV, "1000")
    assert check_zipped(limits.AWS, 999)[0] == "direct"
    upload, checks = check_zipped(limits.AWS, 1001)
    assert upload == "object storage"
    assert [(c.name, c.status) for c in checks] == [
        ("zipped size, direct upload", "object storage"),
        ("zipped size, via object storage", "ok"),
    ]
    upload, checks = check_zipped(limits.GCP, 10**12)
    assert (upload, [c.status for c in checks]) == ("direct", ["no cap"])


def test_glibc_reader_agrees_with_objdump():
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    binding = next(Path(onnxruntime.__file__).parent.glob("capi/onnxruntime_pybind11_state*.so"))
    listed = subprocess.run(["objdump", "-T", binding], capture_output=True, text=True).stdout
    newest = max(tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+\.\d+)", listed))
    assert glibc_needed(binding) == newest
    assert glibc_needed(Path(__file__)) is None


def test_target_tags_never_exceed_the_runtime_glibc():
    tags = WheelTarget("3.11", "x86_64", "2.26").platform_tags()
    assert tags[0] == "manylinux_2_26_x86_64" and "manylinux_2_27_x86_64" not in tags
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    arm = WheelTarget("3.12", "arm64", "2.34").platform_tags()
    assert arm[0] == "manylinux_2_34_aarch64" and "manylinux2014_aarch64" in arm


def test_cli_takes_its_defaults_from_the_environment(minilm_int8_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTLESS_PYTHON", PYTHON)
    monkeypatch.setenv("BERTLESS_NO_PROOF", "1")
    monkeypatch.setenv("BERTLESS_ARTIFACT_DIR", str(tmp_path))
    top = argparse.ArgumentParser(prog="bertless")
    add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["package", "azure", str(minilm_int8_bundle)])

    assert (args.python, args.no_proof, args.out) == (PYTHON, True, str(tmp_path))
    assert run(args) == 0
    assert len(list(tmp_path.glob("*-int8-azure-py3.11-x86_64.zip"))) == 1
