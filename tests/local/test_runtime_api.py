"""The Lambda Runtime API stand-in against the real runtime client (awslambdaric).

The small tests run a handler module written here under this interpreter's awslambdaric, with
this environment's site-packages as the runtime folder (no model, no download); the last one runs
the default model's AWS artifact under awslambdaric built for the artifact's Python.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from bertless.bench.latency import function_url_event
from bertless.local.execution_environment import (
    ExecutionEnvironment,
    Launch,
    artifact_launch,
)
from bertless.local.runtime_api import RuntimeApi, RuntimeApiError
from bertless.packaging.layer import unpack

HANDLERS = """
import time

def echo(event, context):
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "client_context": context.client_context.custom if context.client_context else None,
        "identity": context.identity.cognito_identity_id if context.identity else None,
    }

def fail(event, context):
    raise ValueError("the handler refused")
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    (root / "broken.py").write_text("raise ImportError('no model here')\n")
    return root


def launch(root: Path, handler: str) -> Launch:
    """This interpreter, with its site-packages (which hold awslambdaric) as /var/runtime."""
    return Launch(
        task_root=root,
        runtime_root=Path(sysconfig.get_paths()["purelib"]),
        interpreter=sys.executable,
        handler=handler,
        python="3.11",
        memory_mb=256,
    )


def test_invocation_reaches_the_handler_with_every_header_and_its_answer_comes_back(task_root):
    with ExecutionEnvironment(launch(task_root, "handlers.echo")) as environment:
        environment.start()
        assert environment.wait_ready(60) > 0
        invocation = environment.api.submit(
            {"hello": "world"},
            client_context={"custom": {"app": "bench"}, "client": {}, "env": {}},
            cognito_identity={"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"},
        )
        environment.api.wait(invocation, 30, environment.process)

    assert invocation.kind == "response"
    answer = invocation.json()
    assert answer["event"] == {"hello": "world"}
    assert answer["request_id"] == invocation.request_id
    assert answer["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:bertless-bench"
    assert 0 < answer["remaining_ms"] <= 900_000
    assert answer["memory"] == "256"
    assert answer["client_context"] == {"app": "bench"}
    assert answer["identity"] == "id-1"
    assert invocation.duration_ms > 0


def test_a_handler_exception_is_posted_to_the_error_endpoint(task_root):
    with ExecutionEnvironment(launch(task_root, "handlers.fail")) as environment:
        environment.start()
        environment.wait_ready(60)
        invocation = environment.invoke({"x": 1}, timeout=30)
        still_running = environment.process.poll() is None

    assert invocation.kind == "error"
    assert invocation.error_type == "ValueError"  # named in the body: the header is optional
    assert invocation.json()["errorMessage"] == "the handler refused"
    assert still_running  # a failed invocation does not end the environment


def test_an_import_failure_is_posted_to_init_error_and_reported(task_root):
    with ExecutionEnvironment(launch(task_root, "broken.handler")) as environment:
        environment.start()
        with pytest.raises(RuntimeApiError, match="no model here"):
            environment.wait_ready(60)
        assert environment.api.init_error["errorType"] == "Runtime.ImportModuleError"


class Without(RuntimeApi):
    """A Runtime API that leaves one documented header out of every `next` response."""

    def __init__(self, header: str) -> None:
        super().__init__()
        self.header = header

    def next_headers(self, invocation):
        headers = super().next_headers(invocation)
        del headers[self.header]
        return headers


def test_without_the_request_id_header_awslambdaric_crashes(task_root):
    """The request id is required: the client logs the missing header and exits with status 1
    (RuntimeError "Failed to get next"), so the invocation never gets an answer."""
    api = Without("Lambda-Runtime-Aws-Request-Id")
    with ExecutionEnvironment(launch(task_root, "handlers.echo"), api) as environment:
        environment.start()
        environment.wait_ready(60)
        with pytest.raises(RuntimeApiError, match="exited with status 1"):
            environment.invoke({"x": 1}, timeout=30)
        log = environment.log_tail()
    assert "Failed to find header lambda-runtime-aws-request-id" in log
    assert "Failed to get next" in log


def test_without_the_deadline_header_the_handler_is_told_it_has_no_time_left(task_root):
    """awslambdaric does not crash without Lambda-Runtime-Deadline-Ms: it reports 0 ms left,
    which would make a handler that checks its remaining time give up at once."""
    api = Without("Lambda-Runtime-Deadline-Ms")
    with ExecutionEnvironment(launch(task_root, "handlers.echo"), api) as environment:
        environment.start()
        environment.wait_ready(60)
        invocation = environment.invoke({"x": 1}, timeout=30)
    assert invocation.json()["remaining_ms"] == 0


def test_the_aws_artifact_answers_under_awslambdaric(bench_aws_artifact, tmp_path):
    artifact = bench_aws_artifact
    root = unpack(artifact.path, artifact.layer, tmp_path / "task")
    runtime = artifact_launch(artifact, root)
    body = json.dumps({"inputs": ["bertless runs on Lambda.", "And here."]}).encode()
    with ExecutionEnvironment(runtime) as environment:
        environment.start()
        init_ms = environment.wait_ready(120)
        invocation = environment.invoke(function_url_event("POST", "/embed", body), timeout=60)

    assert init_ms > 0
    answer = invocation.json()
    assert answer["statusCode"] == 200
    assert answer["headers"]["Server-Timing"].startswith("total;dur=")
    vectors = json.loads(answer["body"])
    assert [len(v) for v in vectors] == [384, 384]


def test_without_the_content_type_header_awslambdaric_dies_of_a_segfault(task_root):
    api = Without("Content-Type")
    with ExecutionEnvironment(launch(task_root, "handlers.echo"), api) as environment:
        environment.start()
        environment.wait_ready(60)
        with pytest.raises(RuntimeApiError, match="exited with status -11"):  # SIGSEGV
            environment.invoke({"x": 1}, timeout=30)


@pytest.mark.parametrize(
    ("header", "arn"),
    [
        ("Lambda-Runtime-Invoked-Function-Arn", ""),
        (
            "Lambda-Runtime-Trace-Id",
            "arn:aws:lambda:us-east-1:000000000000:function:bertless-bench",
        ),
    ],
)
def test_without_the_arn_or_trace_headers_the_invocation_still_answers(task_root, header, arn):
    with ExecutionEnvironment(launch(task_root, "handlers.echo"), Without(header)) as environment:
        environment.start()
        environment.wait_ready(60)
        invocation = environment.invoke({"x": 1}, timeout=30)
    assert invocation.kind == "response"
    assert invocation.json()["arn"] == arn
