"""Warm latency: N requests at concurrency C after a warm-up, timed by the client and the server.

The client's time is what a caller waits; the server's (`Server-Timing: total;dur=...`, which
the service adds to every answer) is the model's share of it, and what a function is billed for
beside the platform's own overhead. Locally run Lambda artifacts add a third figure, the billed
duration the Runtime API stand-in sees (event handed over to answer received). Latency quantiles
are taken over the answered requests (2xx); failures are counted by status, since a fast 413 must
not make a model look quick.

Each concurrent worker owns one connection (HTTP keep-alive), or one execution environment for a
local Lambda artifact: a Lambda environment serves one request at a time, and the platform scales
out by adding environments, so C concurrent requests there mean C environments.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from bertless import sigv4
from bertless.core.errors import BertlessError
from bertless.local.execution_environment import ExecutionEnvironment
from bertless.sigv4 import Sign

TIMEOUT_S = 300  # longer than any synchronous HTTP path of the clouds allows
_SERVER_TIMING = re.compile(r"(?:^|,)\s*([\w-]+)[^,]*?;\s*dur=([\d.]+)")


class BenchError(BertlessError):
    """A target that cannot be measured, said in one sentence."""


@dataclass(frozen=True)
class Reply:
    """One request's outcome; `status` is None when no HTTP answer came back at all."""

    status: int | None
    client_ms: float
    server_ms: float | None = None  # from Server-Timing
    billed_ms: float | None = None  # from the Runtime API stand-in (local Lambda only)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Endpoint(Protocol):
    """Something that answers the HTTP contract; `worker` picks the connection or environment."""

    name: str

    def call(self, worker: int, method: str, path: str, body: bytes | None = None) -> Reply: ...


@dataclass(frozen=True)
class Quantiles:
    q50: float
    q95: float
    q99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Quantiles | None:
        if not values:
            return None
        data = np.asarray(values, dtype=float)
        q50, q95, q99 = np.percentile(data, [50, 95, 99])
        return cls(float(q50), float(q95), float(q99), float(data.max()), float(data.mean()))


@dataclass(frozen=True)
class LatencyResult:
    requests: int
    ok: int
    errors: dict[str, int]  # status (or "no answer") -> count, for every non-2xx outcome
    concurrency: int
    batch_size: int
    warmup: int
    wall_s: float
    requests_per_s: float
    texts_per_s: float
    client_ms: Quantiles | None
    server_ms: Quantiles | None
    billed_ms: Quantiles | None
    error_sample: str = ""  # the body of one failed answer, to say why

    def billed_duration(self) -> tuple[float, str] | None:
        """The q50 a platform would bill, and where it was read: the most faithful figure known."""
        for source, quantiles in (
            ("billed (Runtime API)", self.billed_ms),
            ("server (Server-Timing)", self.server_ms),
            ("client", self.client_ms),
        ):
            if quantiles is not None:
                return quantiles.q50, source
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_route(info: Mapping[str, Any]) -> str:
    """The route that runs the model for a bundle's task, as `/info` reports it."""
    return "/predict" if info.get("task") == "text-classification" else "/embed"


def request_body(route: str, texts: Sequence[str]) -> bytes:
    """A request of `texts`. /predict reads a list of exactly two texts as one pair, so its
    texts go one per inner list, which the contract reads as a batch of single texts."""
    inputs = [[t] for t in texts] if route == "/predict" else list(texts)
    return json.dumps({"inputs": inputs}, ensure_ascii=False).encode()


def fetch_info(endpoint: Endpoint) -> dict[str, Any]:
    """`GET /info`, or an error that says why the target cannot be benchmarked."""
    reply = endpoint.call(0, "GET", "/info")
    if not reply.ok:
        detail = reply.body[:300].decode(errors="replace") or "no answer"
        raise BenchError(f"{endpoint.name} answered GET /info with {reply.status}: {detail}")
    return json.loads(reply.body)


def measure(
    endpoint: Endpoint,
    route: str,
    texts: Sequence[str],
    requests: int,
    concurrency: int,
    warmup: int,
    batch_size: int = 1,
) -> LatencyResult:
    """Warm up, then send `requests` requests of `batch_size` texts from `concurrency` workers.

    The warm-up is spread over the workers (at least one request each, when `warmup` > 0), so
    every connection or environment is warm before timing starts.
    """
    if requests < 1 or concurrency < 1 or batch_size < 1:
        raise ValueError("requests, concurrency and batch size must be at least 1")
    bodies = [
        request_body(route, [texts[(i * batch_size + j) % len(texts)] for j in range(batch_size)])
        for i in range(min(requests, len(texts)))
    ]
    per_worker = -(-warmup // concurrency) if warmup > 0 else 0
    _run(endpoint, route, concurrency, [bodies[i % len(bodies)] for i in range(per_worker)], True)
    started = time.perf_counter()
    replies = _run(
        endpoint, route, concurrency, [bodies[i % len(bodies)] for i in range(requests)], False
    )
    wall = time.perf_counter() - started
    answered = [r for r in replies if r.ok]
    failed = [r for r in replies if not r.ok]
    errors = Counter("no answer" if r.status is None else str(r.status) for r in failed)
    return LatencyResult(
        requests=requests,
        ok=len(answered),
        errors=dict(sorted(errors.items())),
        concurrency=concurrency,
        batch_size=batch_size,
        warmup=per_worker * concurrency,
        wall_s=wall,
        requests_per_s=requests / wall,
        texts_per_s=len(answered) * batch_size / wall,
        client_ms=Quantiles.of([r.client_ms for r in answered]),
        server_ms=Quantiles.of([r.server_ms for r in answered if r.server_ms is not None]),
        billed_ms=Quantiles.of([r.billed_ms for r in answered if r.billed_ms is not None]),
        error_sample=failed[0].body[:300].decode(errors="replace") if failed else "",
    )


def _run(
    endpoint: Endpoint, route: str, concurrency: int, bodies: Sequence[bytes], each: bool
) -> list[Reply]:
    """Send `bodies` from `concurrency` threads; with `each`, every worker sends all of them."""
    replies: list[Reply | None] = [None] * (len(bodies) * (concurrency if each else 1))
    counter = itertools.count()
    lock = threading.Lock()

    def work(worker: int) -> None:
        if each:
            for i, body in enumerate(bodies):
                replies[worker * len(bodies) + i] = endpoint.call(worker, "POST", route, body)
            return
        while True:
            with lock:
                index = next(counter)
            if index >= len(bodies):
                return
            replies[index] = endpoint.call(worker, "POST", route, bodies[index])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in replies if r is not None]


def server_timing(value: str | None) -> float | None:
    """The `total` metric's duration (ms) of a Server-Timing header, else its first duration."""
    if not value:
        return None
    found = dict(_SERVER_TIMING.findall(value))
    chosen = found.get("total") or next(iter(found.values()), None)
    return float(chosen) if chosen is not None else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), None)


class HttpEndpoint:
    """A URL: a deployed function, or any server that speaks the contract.

    `api_key` sends `Authorization: Bearer`; `sigv4_region` signs every request with AWS SigV4
    for the `lambda` service, as an AWS_IAM Function URL requires, using botocore's default
    credential chain.
    """

    def __init__(
        self, url: str, api_key: str | None = None, sigv4_region: str | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BenchError(f"{url} is not an http(s) URL")
        self.name = url
        self.base = url.rstrip("/")
        self._parts = parts
        self._prefix = parts.path.rstrip("/")
        self._api_key = api_key
        self._signer = _sigv4_signer(sigv4_region) if sigv4_region else None
        self._local = threading.local()

    def call(self, worker: int, method: str, path: str, body: bytes | None = None) -> Reply:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self._signer is not None:
            headers = self._signer(method, self.base + path, body, headers)
        started = time.perf_counter()
        try:
            connection = self._connection()
            connection.request(method, self._prefix + path, body, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self._local.connection = None  # reconnect on the next request
            return Reply(None, (time.perf_counter() - started) * 1e3, body=str(error).encode())
        elapsed = (time.perf_counter() - started) * 1e3
        timing = server_timing(response.getheader("Server-Timing"))
        return Reply(response.status, elapsed, timing, body=data)

    def fresh(self) -> None:
        """Drop this thread's connection, so the next request pays for a new one (cold)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = kind(self._parts.hostname, self._parts.port, timeout=TIMEOUT_S)
            self._local.connection = connection
        return connection


def _sigv4_signer(region: str) -> Sign:
    """A function that adds SigV4 headers (service `lambda`) to one request."""
    sign = sigv4.signer(region)
    if sign is None:
        raise BenchError(
            "--sigv4 needs AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    return sign


class LambdaEndpoint:
    """Local execution environments of an AWS artifact, called with Function URL events.

    A Function URL sends the payload format 2.0 event, so the artifact's own adapter reads the
    request exactly as it would behind a real URL.
    """

    def __init__(self, name: str, environments: Sequence[ExecutionEnvironment]) -> None:
        self.name = name
        self.environments = list(environments)

    def call(self, worker: int, method: str, path: str, body: bytes | None = None) -> Reply:
        environment = self.environments[worker % len(self.environments)]
        invocation = environment.invoke(function_url_event(method, path, body))
        client = (invocation.answered - invocation.sent) * 1e3
        if invocation.kind == "error":  # Lambda answers a function error with a 502 on a URL
            return Reply(502, client, None, invocation.duration_ms, invocation.body)
        answer = invocation.json()
        headers = answer.get("headers") or {}
        text = answer.get("body") or ""
        return Reply(
            int(answer["statusCode"]),
            client,
            server_timing(_header(headers, "Server-Timing")),
            invocation.duration_ms,
            text.encode() if isinstance(text, str) else json.dumps(text).encode(),
        )


def function_url_event(method: str, path: str, body: bytes | None) -> dict[str, Any]:
    """A Function URL request event (payload format 2.0), as Lambda documents it."""
    now = time.time()
    request_id = str(uuid.uuid4())
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "local.lambda-url.us-east-1.on.aws",
            "user-agent": "bertless-bench",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "local.lambda-url.us-east-1.on.aws",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bertless-bench",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode() if body is not None else None,
        "isBase64Encoded": False,
    }
