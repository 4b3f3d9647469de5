"""A local STAND-IN for Lambda's Invoke API, in front of execution environments on this machine.

This is not Lambda. It answers the Invoke call of the Lambda API
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html) the way AWS's Runtime Interface
Emulator exposes a function, `POST /2015-03-31/functions/function/invocations`, so boto3's
`lambda.invoke` (with AWS_ENDPOINT_URL_LAMBDA or `endpoint_url` pointed here) reaches a bertless
artifact running under the real runtime client (`execution_environment.py`, `runtime_api.py`):

- the request body is the event; the answer is the function's response with
  X-Amz-Executed-Version, and X-Amz-Function-Error: Unhandled when the function failed;
- with `X-Amz-Log-Type: Tail`, X-Amz-Log-Result is the base64 of the invocation's log tail, here
  only Lambda's REPORT line (Duration, Billed Duration rounded up to the millisecond, Memory
  Size), which is what a client reads to price a run;
- it runs `concurrency` environments, each taking one invocation at a time, as the function's
  reserved concurrency would: an invocation that finds every environment busy is throttled at
  once with 429 TooManyRequestsException ("Rate Exceeded."), which is what Lambda does above it;
- another function name is 404 ResourceNotFoundException.

Lambda's other answers (400s for bad parameters, 413 for a payload over 6 MB) are not emulated.
"""

from __future__ import annotations

import base64
import json
import math
import queue
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bertless.local.execution_environment import ExecutionEnvironment, Launch
from bertless.local.runtime_api import RuntimeApi

_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


class InvokeApi:
    """`concurrency` execution environments of one function behind the Invoke API, on a free
    loopback port, started and ready when the constructor returns."""

    def __init__(
        self,
        launch: Launch,
        concurrency: int,
        function_name: str = "function",
        timeout_s: int = 900,
        init_timeout: float = 300,
    ) -> None:
        self.function_name = function_name
        self.memory_mb = launch.memory_mb
        self.timeout_s = timeout_s
        self.throttled = 0
        self.peak_busy = 0
        self.billed_ms: list[int] = []  # of each invocation that ran, as its REPORT line says
        self._lock = threading.Lock()
        self._idle: queue.SimpleQueue[ExecutionEnvironment] = queue.SimpleQueue()
        self.environments = [
            ExecutionEnvironment(launch, RuntimeApi(function_name, timeout_s))
            for _ in range(concurrency)
        ]
        try:
            for environment in self.environments:
                environment.start()
            for environment in self.environments:
                environment.wait_ready(init_timeout)
                self._idle.put(environment)
        except BaseException:
            self.close()
            raise
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The API's base, for AWS_ENDPOINT_URL_LAMBDA or boto3's `endpoint_url`."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def invoke(self, event: Any, log_tail: bool) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one Invoke call."""
        try:
            environment = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                self.throttled += 1
            return _error(429, "TooManyRequestsException", "Rate Exceeded.")
        with self._lock:
            self.peak_busy = max(self.peak_busy, len(self.environments) - self._idle.qsize())
        try:
            invocation = environment.invoke(event, timeout=self.timeout_s)
        finally:
            self._idle.put(environment)
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        if invocation.kind == "error":
            headers["X-Amz-Function-Error"] = "Unhandled"
        if log_tail:
            duration = invocation.duration_ms
            billed = math.ceil(duration)
            with self._lock:
                self.billed_ms.append(billed)
            report = (
                f"REPORT RequestId: {invocation.request_id}\tDuration: {duration:.2f} ms\t"
                f"Billed Duration: {billed} ms\tMemory Size: {self.memory_mb} MB\t\n"
            )
            headers["X-Amz-Log-Result"] = base64.b64encode(report.encode()).decode()
        return 200, headers, invocation.body

    def close(self) -> None:
        if hasattr(self, "_server"):
            self._server.shutdown()
            self._server.server_close()
        for environment in self.environments:
            environment.close()

    def __enter__(self) -> InvokeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """An error of the Lambda API, as its REST-JSON protocol sends one."""
    headers = {"Content-Type": "application/json", "X-Amzn-ErrorType": kind}
    return status, headers, json.dumps({"Type": "User", "message": message}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a client opens as many connections as it has requests in flight


def _handler_class(api: InvokeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            match = _INVOKE.match(self.path.partition("?")[0])
            if match is None:
                return self._reply(*_error(404, "UnknownOperationException", "Unknown operation"))
            if match.group(1) != api.function_name:
                message = f"Function not found: {match.group(1)}"
                return self._reply(*_error(404, "ResourceNotFoundException", message))
            try:
                event = json.loads(body or b"{}")
            except ValueError:
                message = "Could not parse request body into json"
                return self._reply(*_error(400, "InvalidRequestContentException", message))
            tail = (self.headers.get("X-Amz-Log-Type") or "").lower() == "tail"
            self._reply(*api.invoke(event, tail))

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
