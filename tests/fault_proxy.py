"""A TEST STAND-IN for a flaky cloud endpoint: an HTTP proxy that injects faults at set rates.

It sits on 127.0.0.1 in front of `bertless serve` and, for each POST, draws one fate:

- `throttle`: answer 429 with `Retry-After` (as API Gateway and Lambda function URLs do when the
  function's concurrency is used up), without asking the server;
- `unavailable`: answer 503, without asking the server;
- `reset`: ask the server, then drop the connection with a TCP reset instead of answering, so
  the work was done and the answer lost (the case that tempts a client into scoring a row twice);
- `slow`: answer after an extra `slow_seconds`;
- otherwise pass the request on and the answer back.

A POST whose body contains `poison` always gets a 500, as a permanently broken input would.
With `cap`, a POST that finds `cap` others in flight gets a 429 (no Retry-After), as Lambda
throttles above a function's reserved concurrency. GETs (/info, /health) always pass.

With a `StandIn` instead of an upstream URL, the proxy answers itself: `/info` as given, and every
POST to `/embed` after `service_seconds` with a zero vector per input, however many are in flight.
That stands in for a function that scales out (each request its own instance), which no server on
this machine can be; its answers are not a model's, so it is for measuring the client only.

`counts` says how many of each fate were drawn, so a test can check that the faults it asked for
really happened. HTTP/1.1 with kept-alive connections, one
request at a time per connection, as clients send them.

Run as a script, it serves in its own process (so that a benchmark's client does not share a
GIL with it) until its standard input closes, after printing its URL:

    python tests/fault_proxy.py --stand-in 0.5 --cap 64
    python tests/fault_proxy.py http://127.0.0.1:8080 --throttle 0.1 --unavailable 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass
class Faults:
    """The rate of each fault, from 0 to 1, and the details of the ones that need them."""

    throttle: float = 0.0
    unavailable: float = 0.0
    reset: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.2
    retry_after: str = "0"
    poison: str | None = None
    cap: int | None = None
    seed: int = 0


@dataclass
class StandIn:
    """What a scaling stand-in endpoint says at /info, and how long each request takes."""

    info: dict
    service_seconds: float


class FaultProxy:
    """The proxy, running on its own event loop in a daemon thread."""

    def __init__(self, upstream: str | StandIn, faults: Faults) -> None:
        self.stand_in = upstream if isinstance(upstream, StandIn) else None
        self.upstream = "http://stand-in" if self.stand_in else str(upstream).rstrip("/")
        self.faults = faults
        self.in_flight = 0
        self.peak_in_flight = 0  # POSTs passed on at once, at most
        self.last_headers: dict[str, str] = {}  # of the last POST, to check what clients sign
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._upstream: httpx.AsyncClient | None = None  # one pool, made on the proxy's loop
        self._zeros: dict[int, bytes] = {}

    def fate(self, body: bytes) -> str:
        f = self.faults
        if f.poison is not None and f.poison.encode() in body:
            return "poison"
        with self._lock:
            draw = self._rng.random()
        for name, rate in (
            ("throttle", f.throttle),
            ("unavailable", f.unavailable),
            ("reset", f.reset),
            ("slow", f.slow),
        ):
            if draw < rate:
                return name
            draw -= rate
        return "pass"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._upstream is None and self.stand_in is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            self._upstream = httpx.AsyncClient(base_url=self.upstream, timeout=300, limits=limits)
        upstream = self._upstream
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                fate = self.fate(body) if method == "POST" else "pass"
                if method == "POST":
                    self.last_headers = headers
                cap = self.faults.cap
                if method == "POST" and cap is not None and self.in_flight >= cap:
                    fate = "over cap"
                self.counts[fate] += 1
                if fate == "over cap":
                    _answer(writer, 429, _error("proxy stand-in: over the concurrency cap"))
                elif fate == "throttle":
                    retry = {"Retry-After": self.faults.retry_after}
                    _answer(writer, 429, _error("proxy stand-in: throttled"), retry)
                elif fate == "unavailable":
                    _answer(writer, 503, _error("proxy stand-in: unavailable"))
                elif fate == "poison":
                    _answer(writer, 500, _error("proxy stand-in: this input always fails"))
                elif self.stand_in is not None:
                    await self._stand_in(writer, method, body)
                else:
                    self.in_flight += method == "POST"
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    try:
                        response = await upstream.request(
                            method, path, content=body, headers=_forwarded(headers)
                        )
                    finally:
                        self.in_flight -= method == "POST"
                    if fate == "reset":
                        _reset(writer)
                        return
                    if fate == "slow":
                        await asyncio.sleep(self.faults.slow_seconds)
                    extra = {"Content-Type": response.headers.get("content-type", "")}
                    _answer(writer, response.status_code, response.content, extra)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _stand_in(self, writer: asyncio.StreamWriter, method: str, body: bytes) -> None:
        assert self.stand_in is not None
        if method != "POST":
            _answer(writer, 200, json.dumps(self.stand_in.info).encode())
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(self.stand_in.service_seconds)
        finally:
            self.in_flight -= 1
        n = len(json.loads(body)["inputs"])
        if n not in self._zeros:  # the same answer for every request of n inputs
            vector = [0.0] * self.stand_in.info["dimension"]
            self._zeros[n] = json.dumps([vector] * n).encode()
        _answer(writer, 200, self._zeros[n])


@contextmanager
def fault_proxy(upstream: str | StandIn, faults: Faults) -> Iterator[tuple[str, FaultProxy]]:
    """(the proxy's URL, the proxy) in front of `upstream`, until the block ends."""
    proxy = FaultProxy(upstream, faults)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def serve() -> None:
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, backlog=1024)
        holder["port"] = server.sockets[0].getsockname()[1]
        holder["server"] = server
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # the block ended and closed it
            await server.serve_forever()
        if proxy._upstream is not None:
            await proxy._upstream.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fault proxy did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{holder['port']}", proxy
    finally:
        loop.call_soon_threadsafe(holder["server"].close)
        thread.join(10)


async def _read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return method, path, headers, body


def _forwarded(headers: dict[str, str]) -> dict[str, str]:
    hop = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}
    return {name: value for name, value in headers.items() if name not in hop}


def _error(sentence: str) -> bytes:
    return json.dumps({"error": sentence, "error_type": "Overloaded"}).encode()


def _answer(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict | None = None
) -> None:
    head = {"Content-Type": "application/json", **(headers or {}), "Content-Length": len(body)}
    lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in head.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST rather than an orderly close."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fault proxy until stdin closes.")
    parser.add_argument("upstream", nargs="?", help="the server to pass requests on to")
    parser.add_argument("--stand-in", type=float, help="answer itself, after this many seconds")
    parser.add_argument("--dimension", type=int, default=384, help="the stand-in's vectors")
    for fault in ("throttle", "unavailable", "reset", "slow", "slow_seconds"):
        parser.add_argument("--" + fault.replace("_", "-"), type=float, default=0.0)
    parser.add_argument("--cap", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.upstream is None) == (args.stand_in is None):
        parser.error("give either an upstream URL or --stand-in SECONDS.")
    faults = Faults(
        throttle=args.throttle,
        unavailable=args.unavailable,
        reset=args.reset,
        slow=args.slow,
        slow_seconds=args.slow_seconds or 0.2,
        cap=args.cap,
        seed=args.seed,
    )
    info = {"task": "feature-extraction", "dimension": args.dimension, "labels": []}
    upstream = StandIn({**info, "bundle_sha256": "stand-in"}, args.stand_in)
    with fault_proxy(args.upstream or upstream, faults) as (url, proxy):
        print(url, flush=True)
        sys.stdin.read()
        print(f"fault proxy {url}: {json.dumps(proxy.counts)}", file=sys.stderr)


if __name__ == "__main__":
    main()
