"""A local STAND-IN for the AWS Lambda service, to run an artifact under the real runtime client.

This is not Lambda. It is the service's side of the documented Lambda Runtime API (version
2018-06-01, https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), written here so that
an AWS artifact can be started locally the way Lambda starts it: unzipped into a task root and
run by the real runtime interface client (`awslambdaric`, the client inside AWS's own Python
images) in a clean interpreter. `execution_environment.py` starts that runtime against it and
measures what Lambda reports as Init Duration (process start to the first `next` call) and each
invocation. What neither can reproduce: Lambda's firecracker VM, its network, the download and
unzip of the code, and the CPU share of a memory setting (`sweep` emulates that).

Endpoints, as the documentation specifies them:
- `GET /2018-06-01/runtime/invocation/next` → 200, the event as the body, and the headers
  Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn,
  Lambda-Runtime-Trace-Id, and Lambda-Runtime-Client-Context / Lambda-Runtime-Cognito-Identity
  when the invocation carries them. The call blocks until there is an invocation.
- `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response` → 202.
- `POST /2018-06-01/runtime/invocation/{AwsRequestId}/error` → 202 (type in the
  Lambda-Runtime-Function-Error-Type header).
- `POST /2018-06-01/runtime/init/error` → 202; the environment is then dead, as on Lambda.

What awslambdaric 4.2.2 does when a header is missing (tests/local/test_runtime_api.py): without
Lambda-Runtime-Aws-Request-Id it logs "Failed to find header" and exits with status 1; without
Content-Type it dies of SIGSEGV; without Lambda-Runtime-Deadline-Ms it tells the handler 0 ms
remain; without the function ARN the context's ARN is empty; without the trace id nothing shows.

One `RuntimeApi` serves one execution environment, which takes one invocation at a time; several
concurrent requests need several environments, as Lambda scales by adding environments.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/2018-06-01/runtime"
REGION = "us-east-1"
ACCOUNT = "000000000000"  # no real account: the ARN only has to be well formed
_INVOCATION = re.compile(rf"^{API}/invocation/([^/]+)/(response|error)$")


class RuntimeApiError(RuntimeError):
    """The runtime failed: its init posted an error, it exited, or it did not answer in time."""


@dataclass
class Invocation:
    """One event waiting for the runtime, and what the runtime answered."""

    request_id: str
    event: bytes
    deadline_ms: int
    client_context: str | None = None
    cognito_identity: str | None = None
    sent: float = 0.0  # perf_counter when queued
    taken: float | None = None  # when the runtime's `next` call received it
    answered: float | None = None  # when its response (or error) arrived
    kind: str = ""  # "response" or "error"
    body: bytes = b""
    error_type: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def duration_ms(self) -> float:
        """What Lambda bills: from handing the event to the runtime to its answer."""
        assert self.taken is not None and self.answered is not None
        return (self.answered - self.taken) * 1e3

    def json(self) -> Any:
        return json.loads(self.body)


class RuntimeApi:
    """The Runtime API of one execution environment, on a free loopback port."""

    def __init__(self, function_name: str = "bertless-bench", timeout_s: int = 900) -> None:
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.first_next: float | None = None  # perf_counter of the first `next` call
        self.init_error: dict[str, Any] | None = None
        self._pending: queue.Queue[Invocation | None] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._ready = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """`host:port`, the value Lambda gives the runtime in AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self._pending.put(None)  # release a `next` call that is waiting
        self._server.shutdown()
        self._server.server_close()

    # -- the service's side ------------------------------------------------------------------

    def submit(
        self,
        event: Any,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
    ) -> Invocation:
        """Queue an event for the runtime; `Invocation.done` is set when it has answered."""
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            event=json.dumps(event).encode(),
            deadline_ms=int(time.time() * 1000) + self.timeout_s * 1000,
            client_context=json.dumps(client_context) if client_context is not None else None,
            cognito_identity=json.dumps(cognito_identity) if cognito_identity is not None else None,
            sent=time.perf_counter(),
        )
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def next_headers(self, invocation: Invocation) -> dict[str, str]:
        """The headers of a `next` response: every one the documentation lists."""
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.arn,
            "Lambda-Runtime-Trace-Id": _trace_id(),
        }
        if invocation.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        if invocation.cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = invocation.cognito_identity
        return headers

    def wait_ready(self, timeout: float, process: subprocess.Popen | None = None) -> float:
        """Block until the runtime's first `next` call; return its perf_counter time.

        Raises with the runtime's own words if its init failed or its process exited first.
        """
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.02):
            if self.init_error is not None:
                raise RuntimeApiError(f"init failed: {_describe(self.init_error)}")
            if process is not None and process.poll() is not None:
                raise RuntimeApiError(f"the runtime exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeApiError(f"the runtime did not ask for an event within {timeout} s")
        assert self.first_next is not None
        return self.first_next

    def wait(
        self, invocation: Invocation, timeout: float, process: subprocess.Popen | None = None
    ) -> Invocation:
        """Block until the runtime answers `invocation` (or dies, or the time is up)."""
        deadline = time.monotonic() + timeout
        while not invocation.done.wait(0.02):
            if process is not None and process.poll() is not None:
                raise RuntimeApiError(
                    f"the runtime exited with status {process.returncode} during an invocation"
                )
            if time.monotonic() > deadline:
                raise RuntimeApiError(f"no answer to the invocation within {timeout} s")
        return invocation

    # -- the runtime's side (called by the HTTP handler) ---------------------------------------

    def _next(self) -> Invocation | None:
        if self.first_next is None:
            self.first_next = time.perf_counter()
            self._ready.set()
        invocation = self._pending.get()
        if invocation is not None:
            invocation.taken = time.perf_counter()
        return invocation

    def _answer(self, request_id: str, kind: str, body: bytes, error_type: str | None) -> bool:
        invocation = self._invocations.pop(request_id, None)
        if invocation is None:
            return False
        invocation.answered = time.perf_counter()
        if kind == "error" and error_type is None:  # the header is optional; awslambdaric
            error_type = _error_document(body).get("errorType")  # names it in the body
        invocation.kind, invocation.body, invocation.error_type = kind, body, error_type
        invocation.done.set()
        return True

    def _fail_init(self, body: bytes, error_type: str | None) -> None:
        error = _error_document(body)
        self.init_error = {**error, "errorType": error_type or error.get("errorType")}


def _error_document(body: bytes) -> dict[str, Any]:
    """The documented error body ({"errorMessage", "errorType", ...}), or its text."""
    try:
        error = json.loads(body)
    except ValueError:
        error = None
    return error if isinstance(error, dict) else {"errorMessage": body.decode(errors="replace")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime that is shut down drops its connection; anything else is a real error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _trace_id() -> str:
    """An X-Ray trace header in the documented format (Root=1-<time>-<96 bits>;Parent;Sampled)."""
    return (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        f"Parent={secrets.token_hex(8)};Sampled=0"
    )


def _describe(error: Mapping[str, Any]) -> str:
    return f"{error.get('errorType')}: {error.get('errorMessage')}"


def _handler_class(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the runtime client keeps its connection alive
        # Headers and body go out as separate writes; with Nagle's algorithm on, the second
        # waits for the client's delayed ACK (40 ms on Linux), which would be measured as latency.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                return self._reply(404, {"errorMessage": f"no route {self.path}"})
            invocation = api._next()
            if invocation is None:  # shutting down: the environment is being frozen for good
                return self._reply(410, {"errorMessage": "the environment is shutting down"})
            self.send_response(200)
            for name, value in api.next_headers(invocation).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(invocation.event)))
            self.end_headers()
            self.wfile.write(invocation.event)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if self.path == f"{API}/init/error":
                api._fail_init(body, error_type)
                return self._reply(202, {"status": "OK"})
            match = _INVOCATION.match(self.path)
            if match is None:
                return self._reply(404, {"errorMessage": f"no route {self.path}"})
            if not api._answer(match.group(1), match.group(2), body, error_type):
                return self._reply(400, {"errorMessage": "unknown or already answered request"})
            return self._reply(202, {"status": "OK"})

        def _reply(self, status: int, payload: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a benchmark's thousands of calls are not news

    return Handler
