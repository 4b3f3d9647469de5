"""What each request did, for the people who operate the service.

- One JSON line per request on stderr (which Lambda, Cloud Run and Azure Functions all collect):
  route, status, inputs, tokens, duration, the platform's request id and the W3C trace context.
  Never a text of the request: only counts, ids and names of routes.
- A platform's adapter may add members of its own to the line (`Service.log_format`): on Lambda
  it is a CloudWatch Embedded Metric Format document (adapters.aws).
- `Metrics` keeps Prometheus counters and histograms for `GET /metrics`: requests and errors by
  route and status, latency, inputs, tokens, queue depth and model batch size.

The service fills an `Exchange` for each request as it works (the route it matched, the inputs
and tokens it ran); a context variable carries it, so the handlers need no extra argument and
concurrent requests in other threads never see each other's.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

# W3C Trace Context: version-traceid-parentid-flags, lower-case hex.
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
# Seconds: from one short text on a warm instance to a full batch of long ones on a small one.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
UNMATCHED = "unmatched"  # the route label of a request no route took (bounded label values)
# A request id comes from a header on some platforms: a client could make it as long as the
# header limit allows; the line keeps what any platform's id needs (a UUID is 36).
MAX_ID = 128
# The methods a line names (RFC 9110's and PATCH); any other token a client sends, up to the
# header limit, is written `_OTHER`, as OpenTelemetry's semantic conventions write
# `http.request.method` (https://opentelemetry.io/docs/specs/semconv/http/http-spans/, read
# 2026-11-29; they also keep a lower-case "get" as `_OTHER`, where this line names the method
# the service served, which reads methods whatever their case).
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


@dataclass
class Exchange:
    """What the service learned while answering one request."""

    route: str = UNMATCHED
    inputs: int = 0
    tokens: int = 0


_current: ContextVar[Exchange | None] = ContextVar("bertless_exchange", default=None)


@contextmanager
def exchange() -> Iterator[Exchange]:
    """The `Exchange` of the request being answered in this thread, for as long as it runs."""
    current = Exchange()
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def matched(route: str) -> None:
    current = _current.get()
    if current is not None:
        current.route = route


def counted(inputs: int, tokens: int) -> None:
    """INPUTS texts of TOKENS tokens in all went through the model for this request."""
    current = _current.get()
    if current is not None:
        current.inputs += inputs
        current.tokens += tokens


def trace_ids(traceparent: str | None) -> dict[str, str]:
    """The trace and parent span of a W3C `traceparent` header; nothing when it is malformed."""
    found = TRACEPARENT.match((traceparent or "").strip())
    return {"trace_id": found[1], "parent_id": found[2]} if found else {}


def log_record(
    method: str,
    seen: Exchange,
    status: int,
    seconds: float,
    request_id: str | None,
    traceparent: str | None,
) -> dict:
    """What the request's one log line says (`write` writes it)."""
    return {
        # Cloud Logging reads `severity` and `message` of a JSON line on stdout or stderr
        # (https://cloud.google.com/logging/docs/structured-logging, read 2026-11-29).
        "severity": "ERROR" if status >= 500 else "INFO",
        "message": "request",
        "method": _method(method),
        "route": seen.route,
        "status": status,
        "inputs": seen.inputs,
        "tokens": seen.tokens,
        "duration_ms": round(seconds * 1e3, 3),
        "request_id": request_id[:MAX_ID] if request_id else None,
        **trace_ids(traceparent),
    }


def _method(method: str) -> str | None:
    """METHOD as the line names it (the service reads it whatever its case); None when the
    request line never arrived whole."""
    if not method:
        return None
    return method.upper() if method.upper() in METHODS else "_OTHER"


_write = threading.Lock()


def write(record: dict) -> None:
    """RECORD as one JSON line on stderr, whole: concurrent requests never interleave lines."""
    line = json.dumps(record, separators=(",", ":"))
    with _write:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class Histogram:
    """A Prometheus histogram with fixed buckets (cumulative when rendered)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[int(np.searchsorted(self.buckets, value, side="left"))] += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        joiner = "," if labels else ""
        for bound, count in zip([*map(_number, self.buckets), "+Inf"], self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels}{joiner}le="{bound}"}} {running}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {_number(self.sum)}", f"{name}_count{braces} {running}"]
        return out


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Metrics:
    """The service's Prometheus metrics, in the text exposition format (version 0.0.4).

    Label values are route paths from the route table and status codes, never anything a
    client chose freely, so the number of series stays bounded however the service is called.
    """

    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, queue_depth: Callable[[], int] = lambda: 0) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, Histogram] = {}
        self._inputs = 0
        self._tokens = 0
        self._batches = Histogram(BATCH_BUCKETS)
        self._queue_depth = queue_depth

    def record(self, seen: Exchange, status: int, seconds: float) -> None:
        with self._lock:
            key = (seen.route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault(seen.route, Histogram(LATENCY_BUCKETS)).observe(seconds)
            self._inputs += seen.inputs
            self._tokens += seen.tokens

    def counting_batches(
        self, runner: Callable[[list], np.ndarray]
    ) -> Callable[[list], np.ndarray]:
        """RUNNER, also counting the rows of every model run it makes."""

        def run(encodings: list) -> np.ndarray:
            with self._lock:
                self._batches.observe(len(encodings))
            return runner(encodings)

        return run

    def render(self) -> bytes:
        with self._lock:
            lines = [
                "# HELP bertless_requests_total Requests answered, by route and status.",
                "# TYPE bertless_requests_total counter",
                *(
                    f'bertless_requests_total{{route="{route}",status="{status}"}} {count}'
                    for (route, status), count in sorted(self._requests.items())
                ),
                "# HELP bertless_request_duration_seconds Time to answer, by route.",
                "# TYPE bertless_request_duration_seconds histogram",
                *(
                    line
                    for route, histogram in sorted(self._latency.items())
                    for line in histogram.lines(
                        "bertless_request_duration_seconds", f'route="{route}"'
                    )
                ),
                "# HELP bertless_inputs_total Texts (or pairs) run through the model.",
                "# TYPE bertless_inputs_total counter",
                f"bertless_inputs_total {self._inputs}",
                "# HELP bertless_tokens_total Tokens run through the model, padding excluded.",
                "# TYPE bertless_tokens_total counter",
                f"bertless_tokens_total {self._tokens}",
                "# HELP bertless_queue_depth Micro-batches waiting for the model now.",
                "# TYPE bertless_queue_depth gauge",
                f"bertless_queue_depth {self._queue_depth()}",
                "# HELP bertless_batch_size Rows in each model run.",
                "# TYPE bertless_batch_size histogram",
                *self._batches.lines("bertless_batch_size"),
            ]
        return ("\n".join(lines) + "\n").encode()
