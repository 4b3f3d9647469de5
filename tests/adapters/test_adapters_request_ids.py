"""Each adapter hands the platform's id of the invocation to the request's log line: Lambda's
aws_request_id, Cloud Run's trace id, Azure's invocation id."""

from __future__ import annotations

import json
import typing
from types import SimpleNamespace

import azure.functions as func
import flask
from conformance import azure_function

BODY = json.dumps({"inputs": "hello"}).encode()
JSON = {"Content-Type": "application/json"}


def logged(capsys) -> dict:
    (line,) = capsys.readouterr().err.splitlines()
    return json.loads(line)


def test_lambda_request_id(adapters, capsys):
    # A stand-in for the LambdaContext the runtime passes: only the attribute the adapter reads.
    context = SimpleNamespace(aws_request_id="c6af9ac6-7b61-11e6-9a41-93e812345678")
    capsys.readouterr()
    answer = adapters.aws.handler({"path": "/embed", "body": {"inputs": "hello"}}, context)
    assert answer["statusCode"] == 200
    assert logged(capsys)["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e812345678"


def test_cloud_run_trace_id(adapters, capsys):
    headers = {**JSON, "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"}
    capsys.readouterr()
    with flask.Flask("trace").test_request_context(
        "/embed", method="POST", headers=headers, data=BODY
    ):
        assert adapters.gcp.handle(flask.request).status_code == 200
    assert logged(capsys)["request_id"] == "105445aa7843bc8bf206b12000100000"


def test_azure_invocation_id(adapters, capsys):
    # A stand-in for the func.Context the worker passes: only the attribute the adapter reads.
    context = SimpleNamespace(invocation_id="5b7d5f2a-6b1c-4f3e-9d41-0f2b8c1e7a11")
    request = func.HttpRequest(
        "POST",
        "https://x.azurewebsites.net/embed",
        headers=JSON,
        route_params={"path": "embed"},
        body=BODY,
    )
    capsys.readouterr()
    response = azure_function(adapters.azure.app).get_user_function()(request, context)
    assert response.status_code == 200
    assert logged(capsys)["request_id"] == "5b7d5f2a-6b1c-4f3e-9d41-0f2b8c1e7a11"


def test_azure_context_parameter_loads_in_the_worker(adapters):
    """The Python worker's rule when it loads a function (azure_functions_worker/functions.py):
    a `context` annotation, if any, must be a class named Context."""
    hints = typing.get_type_hints(azure_function(adapters.azure.app).get_user_function())
    annotation = hints.get("context")
    assert annotation is None or (isinstance(annotation, type) and annotation.__name__ == "Context")
