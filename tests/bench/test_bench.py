"""`bertless bench` and `bertless cost` against real targets: the local server, a bundle run with
each memory size's CPU emulated, the AWS artifact under awslambdaric, and a function in moto."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import time
from pathlib import Path

import pytest

from bertless.bench.cost import cost_report, report_to_json
from bertless.bench.cpu import CpuLimit
from bertless.bench.latency import HttpEndpoint, _sigv4_signer, server_timing
from bertless.bench.texts import builtin_texts
from bertless.cli import bench as command
from bertless.platforms import limits


def bertless(argv: list[str]) -> int:
    """`bertless ARGV` through the bench command's own parsers."""
    top = argparse.ArgumentParser(prog="bertless")
    command.add_parsers(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(argv)
    return args.run(args)


def bench(tmp_path: Path, command_line: str) -> dict:
    """Run `bertless bench COMMAND_LINE --json OUT` and return the report it wrote."""
    out = tmp_path / "report.json"
    assert bertless(["bench", *shlex.split(command_line), "--json", str(out)]) == 0
    return json.loads(out.read_text())


def check_latency(latency: dict) -> None:
    for timing in ("client_ms", "server_ms"):
        q = latency[timing]
        assert 0 < q["q50"] <= q["q95"] <= q["q99"] <= q["max"], timing
    assert latency["server_ms"]["q50"] <= latency["client_ms"]["q50"]


def test_bench_counts_requests_and_errors_by_status_against_the_local_server(
    embed_server, tmp_path
):
    too_long = " ".join(["word"] * 600)  # over 256 tokens, and the server does not truncate
    inputs = tmp_path / "texts.txt"
    inputs.write_text("a short query\nA longer sentence about serverless models.\n" + too_long)
    report = bench(
        tmp_path,
        f"{embed_server} --requests 12 --concurrency 3 --warmup 3 --inputs {inputs} "
        "--cold-starts 0 --memory 1024",
    )

    (target,) = report["targets"]
    assert (target["kind"], target["task"]) == ("url", "feature-extraction")
    (run,) = target["runs"]
    latency = run["latency"]
    assert latency["requests"] == 12
    assert latency["ok"] == 8  # every third request carries the long text
    assert latency["errors"] == {"413": 4}
    assert "256" in latency["error_sample"]  # the server's own sentence about the limit
    check_latency(latency)
    assert run["memory_mb"] == 1024
    assert run["cold_start"] is None and "--cold-starts 0" in run["cold_start_note"]


def test_bench_prices_the_measured_q50_with_the_cost_model(embed_server, tmp_path):
    report = bench(tmp_path, f"{embed_server} --requests 10 --cold-starts 0")
    (run,) = report["targets"][0]["runs"]
    cost = run["cost"]
    duration = run["latency"]["server_ms"]["q50"]
    assert cost["duration_source"] == "server (Server-Timing)"
    assert cost["duration_ms"] == duration
    assert run["memory_mb"] == 1769  # nothing said otherwise: one Lambda vCPU
    expected = report_to_json(cost_report(duration, 1769, "x86_64", 1_000_000))["rows"]
    assert cost["rows"] == expected

    # By hand for AWS: Lambda bills whole milliseconds of the configured memory.
    aws = next(row for row in cost["rows"] if row["cloud"] == "aws")
    billed_ms = math.ceil(duration)
    gb_seconds = billed_ms / 1000 * 1769 / 1024
    compute = gb_seconds * 0.0000166667 * 1_000_000  # $ per GB-second, a million times
    assert limits.AWS.pricing.per_gb_second.value == 0.0000166667
    assert aws["billed_ms"] == billed_ms
    assert aws["compute_per_million"] == pytest.approx(compute)
    assert aws["total_per_million"] == pytest.approx(compute + 0.20)  # $0.20 per 1M requests


def test_bench_sweeps_a_bundle_with_the_cpu_of_each_memory_size_and_plots(minilm_bundle, tmp_path):
    plot = tmp_path / "sweep.png"
    report = bench(
        tmp_path,
        f"{minilm_bundle} --memory 512,1769 --requests 10 --warmup 2 --cold-starts 1 --plot {plot}",
    )

    runs = report["targets"][0]["runs"]
    assert [run["memory_mb"] for run in runs] == [512, 1769]
    throttled = CpuLimit.create(0.5)
    for run, vcpus in zip(runs, (512 / 1769, 1.0), strict=True):
        emulation = run["emulation"]
        assert emulation["vcpus"] == pytest.approx(vcpus)
        assert emulation["threads"] == 1
        assert ("cgroup" in emulation["how"]) == (throttled is not None)
        check_latency(run["latency"])
        phases = run["cold_start"]["runs"][0]
        assert set(phases) == {"interpreter start", "import", "model load", "first answer", "total"}
        assert phases["total"] == pytest.approx(
            sum(v for k, v in phases.items() if k != "total"), rel=0.01
        )
    if throttled:
        throttled.close()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_runs_the_aws_artifact_under_awslambdaric(bench_aws_artifact, tmp_path):
    assert bench_aws_artifact.layer is not None  # numpy, onnxruntime... only in the layer zip
    report = bench(
        tmp_path,
        f"{bench_aws_artifact.path} --requests 8 --concurrency 2 --warmup 2 --cold-starts 1",
    )

    (target,) = report["targets"]
    assert target["kind"] == "aws artifact"
    (run,) = target["runs"]
    assert run["memory_mb"] == bench_aws_artifact.memory_mb  # the artifact's own setting
    latency = run["latency"]
    assert (latency["ok"], latency["errors"]) == (8, {})
    check_latency(latency)
    billed = latency["billed_ms"]
    assert billed["q50"] <= latency["client_ms"]["q50"]
    assert run["cost"]["duration_source"] == "billed (Runtime API)"
    assert run["cost"]["duration_ms"] == billed["q50"]
    cold = run["cold_start"]
    assert cold["phases"] == ["init", "first invocation"]
    (first,) = cold["runs"]
    assert first["init"] > first["first invocation"] > 0
    assert first["total"] >= first["init"] + first["first invocation"]


def test_a_cpu_limit_caps_the_cpu_time_of_its_processes():
    limit = CpuLimit.create(0.25)
    if limit is None:
        pytest.skip("no writable cgroup on this machine (needs root and a cpu hierarchy)")
    spin = "import time, os; end = time.time() + 1.5\nwhile time.time() < end: pass\n"
    spin += "print(sum(os.times()[:2]))"
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [*limit.wrapper(), sys.executable, "-c", spin], capture_output=True, text=True
        )
    finally:
        limit.close()
    cpu_seconds = float(done.stdout)
    assert cpu_seconds < 0.25 * 1.5 * 1.6  # a quarter of 1.5 s, with room for the startup


def test_a_cgroup_v2_hierarchy_gets_cpu_max(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    limit = CpuLimit.create(0.29, tmp_path)
    assert limit is not None and limit.version == "v2"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu\n"
    assert (limit.path / "cpu.max").read_text() == "29000 100000\n"
    assert limit.wrapper()[-1] == str(limit.path / "cgroup.procs")
    (limit.path / "cpu.max").unlink()  # a real cgroup's files vanish with it
    limit.close()
    assert not limit.path.exists()


def test_no_cgroup_means_no_limit(tmp_path):
    assert CpuLimit.create(0.5, tmp_path) is None


def test_server_timing_reads_the_total_metric():
    assert server_timing("total;dur=12.5") == 12.5
    assert server_timing('db;dur=3, total;desc="all";dur=7.25') == 7.25
    assert server_timing("cache;desc=hit") is None
    assert server_timing(None) is None


def test_sigv4_signs_each_request_for_the_lambda_service(monkeypatch, tmp_path):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(key, value)
    sign = _sigv4_signer("eu-west-1")
    url = "https://abc.lambda-url.eu-west-1.on.aws/embed"
    headers = sign("POST", url, b'{"inputs": "hi"}', {"Content-Type": "application/json"})
    day = time.strftime("%Y%m%d", time.gmtime())
    authorization = headers["Authorization"]
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{day}/eu-west-1/lambda/aws4_request"
    )
    assert "content-type;host;x-amz-date;x-amz-security-token" in authorization
    assert headers["X-Amz-Security-Token"] == "token"
    other = sign("POST", url, b'{"inputs": "bye"}', {"Content-Type": "application/json"})
    assert other["Authorization"] != authorization  # the body is signed too
    assert HttpEndpoint(url, sigv4_region="eu-west-1").name == url


def test_builtin_texts_vary_in_length_and_fit_the_default_model(minilm_bundle):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    lengths = [len(tokenizer.encode(text).ids) for text in builtin_texts()]
    assert max(lengths) <= 256
    assert min(lengths) < 16 and max(lengths) > 150
    assert sorted(lengths)[len(lengths) // 2] < 64  # most requests are short


def test_inputs_come_one_per_line_or_as_jsonl(tmp_path):
    from bertless.bench.texts import load_texts

    (tmp_path / "a.txt").write_text("first text\n\nsecond text\n")
    (tmp_path / "b.jsonl").write_text('"plain"\n{"text": "in a record", "id": 7}\n')
    assert load_texts(tmp_path / "a.txt") == ["first text", "second text"]
    assert load_texts(tmp_path / "b.jsonl") == ["plain", "in a record"]


def test_cost_command_prints_all_clouds_as_json(capsys):
    assert bertless(["cost", "--duration-ms", "20", "--memory", "1024", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["cloud"] for row in rows] == ["aws", "gcp", "azure", "azure-consumption"]
    assert rows == report_to_json(cost_report(20, 1024, "x86_64", 1_000_000))["rows"]


def test_cost_command_prints_a_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells to the terminal's width
    assert bertless(["cost", "--duration-ms", "35.5", "--memory", "512", "--arch", "arm64"]) == 0
    out = capsys.readouterr().out
    assert "AWS Lambda" in out and "35.5 ms at 512 MB" in out


def test_bench_refuses_a_sweep_of_a_url_it_cannot_reconfigure(embed_server):
    from bertless.bench.latency import BenchError

    with pytest.raises(BenchError, match="--aws-function"):
        bertless(["bench", embed_server, "--memory", "512,1024"])


def test_bench_sets_a_deployed_functions_memory_and_forces_new_instances(
    embed_server, moto_endpoint, artifacts, monkeypatch, tmp_path
):
    """The function lives in moto (which cannot run code), the URL is the local server: what
    is checked is the control of the function, each size's version, and the restore."""
    import boto3

    from bertless.deploy import aws
    from bertless.deploy.plan import Apply, Target, deploy

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(key, value)
    target = Target(name="bench-me", region="us-east-1", endpoint_url=moto_endpoint, smoke=False)
    deploy(aws.AwsDeployer(aws.AwsOptions()), artifacts("aws"), target, Apply())
    awslambda = boto3.client("lambda")
    before = awslambda.get_function_configuration(FunctionName="bench-me", Qualifier="live")

    report = bench(
        tmp_path,
        f"{embed_server} --aws-function bench-me --memory 512,1024 --requests 4 --cold-starts 2",
    )

    runs = report["targets"][0]["runs"]
    assert [run["memory_mb"] for run in runs] == [512, 1024]
    for run in runs:
        assert "bench-me (alias live)" in run["emulation"]["how"]
        assert len(run["cold_start"]["runs"]) == 2
        assert run["cold_start"]["phases"] == ["first request"]
        assert all(0 < r["server"] < r["first request"] for r in run["cold_start"]["runs"])
    versions = awslambda.list_versions_by_function(FunctionName="bench-me")["Versions"]
    published = [v for v in versions if v["Version"] != "$LATEST"]
    # a version per cold start, and one more to restore: memory is set with the first of each
    assert len(published) == 1 + 2 * 2 + 1
    memories = {v["Version"]: v["MemorySize"] for v in published}
    assert {memories[str(n)] for n in (2, 3)} == {512}
    assert {memories[str(n)] for n in (4, 5)} == {1024}
    after = awslambda.get_function_configuration(FunctionName="bench-me", Qualifier="live")
    assert after["MemorySize"] == before["MemorySize"]
    assert after.get("Environment") == before.get("Environment")
