"""One JSON log line per request, CloudWatch Embedded Metric Format on Lambda, and GET /metrics.

The log lines are read from stderr as the platforms collect them; the EMF document is checked
against the shape the CloudWatch EMF specification documents, and /metrics is parsed with the
Prometheus project's own Python client.
"""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tokenizers import Tokenizer

from bertless.core.service import Request

JSON = {"Content-Type": "application/json"}
SECRET = "zebra-quartz-secret"  # a word that must never reach a log line
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# The units the EMF specification lists for a metric's "Unit".
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Count", "None", "Percent"}


def post(path: str, body: object) -> Request:
    return Request("POST", path, JSON, json.dumps(body).encode())


def lines(capsys: pytest.CaptureFixture) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


@pytest.fixture()
def service(adapters):
    """The embedding bundle's service, as the Lambda adapter loaded it (EMF lines)."""
    return adapters.aws.SERVICE


def test_one_line_per_request_with_counts_ids_and_trace(adapters, capsys, minilm_bundle):
    service = adapters.gcp.SERVICE
    texts = [f"{SECRET} one", "two words here"]
    capsys.readouterr()
    headers = {**JSON, "traceparent": TRACE}
    body = json.dumps({"inputs": texts}).encode()
    service.handle(Request("POST", "/embed", headers, body, request_id="req-1"))
    (line,) = lines(capsys)
    tokenizer = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    assert line["route"] == "/embed" and line["status"] == 200 and line["method"] == "POST"
    assert line["inputs"] == 2
    assert line["tokens"] == sum(len(tokenizer.encode(t).ids) for t in texts)
    assert line["request_id"] == "req-1"
    assert (line["trace_id"], line["parent_id"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )
    assert line["duration_ms"] > 0
    assert line["severity"] == "INFO"  # what Cloud Logging reads as the level
    assert "_aws" not in line  # EMF is the AWS adapter's


def test_no_request_text_in_any_line(service, capsys):
    capsys.readouterr()
    service.handle(post("/embed", {"inputs": [SECRET, ""]}))  # 422 quoting nothing of it
    service.handle(post(f"/{SECRET}", {"inputs": SECRET}))  # 404: the path is the client's
    service.handle(post("/embed", {"inputs": SECRET * 1000, "truncate": False}))  # 413
    err = capsys.readouterr().err
    assert SECRET not in err
    statuses = [(line["route"], line["status"]) for line in map(json.loads, err.splitlines())]
    assert statuses == [("/embed", 422), ("unmatched", 404), ("/embed", 413)]


def test_a_method_that_is_not_a_standard_one_is_not_written_as_sent(service, capsys):
    """A method is any token the client likes, up to the header limit (16 KB through
    `bertless serve`); the line names the standard ones and writes OpenTelemetry's `_OTHER`
    for the rest (its semantic conventions for `http.request.method`)."""
    capsys.readouterr()
    service.handle(Request(SECRET.upper() * 500, "/health"))
    service.handle(Request("get", "/health"))  # served as GET, as it is written
    service.handle(Request("DELETE", "/embed"))
    assert [line["method"] for line in lines(capsys)] == ["_OTHER", "GET", "DELETE"]


def test_lambda_lines_are_embedded_metric_format(service, capsys):
    capsys.readouterr()
    service.handle(post("/embed", {"inputs": "hello"}))
    (line,) = lines(capsys)
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_700_000_000_000
    (directive,) = meta["CloudWatchMetrics"]
    assert isinstance(directive["Namespace"], str) and directive["Namespace"]
    for dimension_set in directive["Dimensions"]:
        assert all(isinstance(line[name], str) for name in dimension_set)  # members, as text
    names = [metric["Name"] for metric in directive["Metrics"]]
    assert all(metric["Unit"] in EMF_UNITS for metric in directive["Metrics"])
    assert all(isinstance(line[name], int | float) for name in names)  # members, as numbers
    assert (line["requests"], line["errors"], line["inputs"]) == (1, 0, 1)


def test_metrics_are_off_on_functions(adapters):
    answer = adapters.aws.handler({"path": "/metrics", "method": "GET"}, None)
    assert answer["statusCode"] == 404


def test_local_server_serves_prometheus_metrics(embed_server):
    for body in ({"inputs": ["a", "b", "c"]}, {"inputs": ""}):
        requests.post(embed_server + "/embed", json=body, timeout=60)
    response = requests.get(embed_server + "/metrics", timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests_by = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["bertless_requests"].samples
    }
    assert requests_by[("/embed", "200")] >= 1 and requests_by[("/embed", "422")] >= 1
    latency = families["bertless_request_duration_seconds"]
    counts = [s for s in latency.samples if s.name.endswith("_count")]
    assert sum(s.value for s in counts) >= 2
    assert families["bertless_inputs"].samples[0].value >= 3
    assert families["bertless_queue_depth"].samples[0].value == 0
    batch_count = next(
        s.value for s in families["bertless_batch_size"].samples if s.name.endswith("_count")
    )
    assert batch_count >= 1


def test_a_request_id_from_a_header_is_bounded_in_the_line(service, capsys):
    capsys.readouterr()
    service.handle(Request("GET", "/health", {}, b"", request_id="x" * 10_000))
    (line,) = lines(capsys)
    assert line["request_id"] == "x" * 128
