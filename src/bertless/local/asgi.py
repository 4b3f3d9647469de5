"""The local server's application: the service as an ASGI app on uvicorn, under gunicorn.

functions-framework's default server is gunicorn's threaded worker, where a connection holds a
thread from the first byte of its headers to the last of its answer: eight clients sending
headers at one byte a second took all eight threads of a 2-CPU server, and `GET /health` waited
18 s behind them. On uvicorn's event loop a connection holds no thread while it is read, so
slow clients only wait for themselves. This is how functions-framework 3.10 runs ASGI functions
(`--asgi`: gunicorn with uvicorn-worker), with these things of ours:

- the errors the server itself answers (a request that is not HTTP/1.1, headers larger than
  h11's 16 KB buffer) are the contract's JSON, not uvicorn's plain text, each with its log line
  and metrics like any other answer;
- a request must arrive whole in time: its head within `read_timeout` seconds, and its body
  within as many again, or it is answered 408 and its connection closed. uvicorn has no such
  deadline: a client that stalled halfway through its body kept its connection, and the up to
  2 MB of body it had sent, for as long as it liked (150 such clients held 276 MB);
- requests wait for the model in the service's bounded queue (core.batcher), which answers a
  full queue with 503 and Retry-After; a request whose client leaves while it waits leaves the
  queue unrun (logged 499, nginx's "client closed request"), as in TEI, so that clients that
  time out and retry under load do not fill the queue with work nobody reads;
- the service runs on the event loop itself, each request in a greenlet that is parked while the
  model thread works for it (`App._handle`).
"""

from __future__ import annotations

import asyncio
import os
import time
from http import HTTPStatus
from typing import Any, ClassVar

import greenlet
import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn_worker import UvicornWorker

from bertless.core.config import bundle_location
from bertless.core.errors import BertlessError
from bertless.core.service import Request, Response, Service, error_response

# The most a request line and its headers may take, and the most header fields: h11's buffer
# (uvicorn's default) and gunicorn's --limit-request-fields. h11 refuses a larger head only
# while it is incomplete; one that arrives whole is refused by `App`, with the same answer.
HEADER_BYTES = h11._connection.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
HEADER_FIELDS = 100
# Seconds a request's head may take to arrive, and then its body (`--read-timeout`): 60 s, as
# Node's `server.headersTimeout` and nginx's `client_header_timeout`. nginx's
# `client_body_timeout` (60 s) runs between two reads; this one is the whole body's, so that a
# body trickled in a byte at a time cannot hold its connection, and what it sent, for long.
READ_TIMEOUT_S = 60.0
# Seconds a request waits for the model before its client's leaving is watched for (`Departure`).
WATCH_AFTER_S = 0.1


def too_large_headers() -> Response:
    """The contract's 431, whether h11 or the application found the headers too large."""
    return error_response(
        431,
        "Validation",
        f"the request line and headers are larger than {HEADER_BYTES} bytes or more than "
        f"{HEADER_FIELDS} fields: send fewer or shorter headers.",
    )


class ClientGoneError(BertlessError):
    """The client closed its connection before its answer was ready; nothing is sent, the
    status is for the log line and metrics (nginx's 499)."""

    status = 499


def request_timeout(seconds: float) -> Response:
    """The contract's 408 for a request whose head or body did not arrive whole in time."""
    return error_response(
        408,
        "Validation",
        f"the request did not arrive whole within {seconds:g} seconds: send it again.",
        {"Connection": "close"},
    )


class JsonErrorsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering what h11 refuses with the contract's JSON error, and a
    request head that does not arrive whole in time with a 408."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal = 400
        self._head_timer: asyncio.TimerHandle | None = None
        next_event = self.conn.next_event

        def noting_the_status(*a: Any, **k: Any) -> Any:
            try:
                return next_event(*a, **k)
            except h11.RemoteProtocolError as error:
                self._refusal = error.error_status_hint
                raise

        self.conn.next_event = noting_the_status

    def send_400_response(self, msg: str) -> None:
        if self._refusal == 431:
            answer = too_large_headers()
        else:
            answer = error_response(self._refusal, "Validation", "the request is not HTTP/1.1.")
        self._record(answer.status)  # before the answer, as the service logs its own
        headers = [*_headers(answer), (b"connection", b"close")]
        reason = HTTPStatus(answer.status).phrase.encode()
        self.transport.write(
            self.conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))
        )
        self.transport.write(self.conn.send(h11.Data(data=answer.body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._head_timer is not None:
            self._head_timer.cancel()

    def _await_head(self) -> None:
        """Give the next request's head `read_timeout` seconds to arrive whole."""
        if self._head_timer is not None:
            self._head_timer.cancel()
        app = self._app()
        seconds = app.read_timeout if app else READ_TIMEOUT_S
        self._head_timer = self.loop.call_later(seconds, self._head_late, seconds)

    def _head_late(self, seconds: float) -> None:
        """The head is late: a 408 when part of it came, else a close with nothing to say (an
        idle keep-alive connection, which uvicorn's own keep-alive timeout closes sooner)."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # closed, or the head arrived: the body has its own deadline (App._body)
        if self.conn.trailing_data[0]:
            answer = request_timeout(seconds)
            self._record(answer.status, seconds)
            status_line = f"HTTP/1.1 408 {HTTPStatus(408).phrase}\r\n".encode()
            fields = b"".join(k + b": " + v + b"\r\n" for k, v in _headers(answer))
            self.transport.write(status_line + fields + b"\r\n" + answer.body)
        self.transport.close()

    def _record(self, status: int, seconds: float = 0.0) -> None:
        """The log line and metrics of an answer given before the request's head was read."""
        app = self._app()
        if app:
            app.service.record(Request("", ""), status, seconds)

    def _app(self) -> App | None:
        """Our application, under whatever middleware uvicorn wrapped it in."""
        app = self.app
        while not isinstance(app, App) and hasattr(app, "app"):
            app = app.app
        return app if isinstance(app, App) else None


class Worker(UvicornWorker):
    """gunicorn's worker class for `bertless serve`: uvicorn with the protocol above."""

    CONFIG_KWARGS: ClassVar[dict[str, str]] = {
        "loop": "asyncio",
        "http": f"{__name__}:JsonErrorsH11Protocol",
        # No WebSockets: with a WebSocket library installed, uvicorn upgraded such a request and
        # the app, which serves HTTP only, failed on it (a plain-text 500, a traceback). Without,
        # it is answered as the plain HTTP request it also is.
        "ws": "none",
    }


class App:
    """The service behind ASGI, on the event loop: each request's `Service.handle` runs in a
    greenlet, which parks while the model thread runs its texts (see `_handle`)."""

    def __init__(self, service: Service, read_timeout: float = READ_TIMEOUT_S) -> None:
        self.service = service
        self.read_timeout = read_timeout
        if service.predictor and service.batcher:
            service.predictor.runner = self._run

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        started = time.perf_counter()
        body = await self._body(receive)
        fields = scope["headers"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in fields}
        request = Request(scope["method"], scope["path"], headers, body or b"")
        head = len(scope.get("raw_path") or b"") + sum(len(k) + len(v) + 4 for k, v in fields)
        if body is None:
            response = request_timeout(self.read_timeout)
        elif head > HEADER_BYTES or len(fields) > HEADER_FIELDS:
            response = too_large_headers()
        else:
            response = None
        if response is not None:  # answered without the service, recorded as it records its own
            self.service.record(request, response.status, time.perf_counter() - started)
        else:
            response = await self._handle(request, receive)
            if response.status == ClientGoneError.status:
                return
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                # The service has dropped a HEAD answer's body: its length is not the GET's,
                # which is the only one a HEAD answer may state (RFC 9110 8.6).
                "headers": _headers(response, length=scope["method"] != "HEAD"),
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _handle(self, request: Request, receive: Any) -> Response:
        """`Service.handle` in a greenlet on the loop; while the model thread runs the texts,
        the greenlet is parked and the loop reads, parses and answers other requests.

        Why not a thread per request: each request then crossed from the loop to a worker
        thread and back, and with 8 clients about a quarter of py-spy's samples of the thread
        holding the GIL were in `ThreadPoolExecutor.submit`. Here the parsing, tokenizing and
        JSON of every request run in the loop, which the model thread wakes when a run is done.
        In the same run of benchmarks (fp32 MiniLM, batch-1 /embed of 12 words, 2 quiet CPUs)
        this served 1.03x, 1.03x and 1.02x the texts/s of a thread per request at 1, 8 and 32
        clients, at 0.94x the CPU per request at 8. The service's code stays as it is,
        synchronous: only the model run (`_run`) parks, the way SQLAlchemy's asyncio layer runs
        its synchronous core.

        While it waits, the client's leaving is watched for (`Departure`): if the client goes
        first, the model thread's future is cancelled (a job not yet taken is dropped unrun) and
        the service hears it as `ClientGoneError` where it called the model."""
        child = greenlet.greenlet(self.service.handle)
        parked = child.switch(request)
        departure = Departure(receive)
        try:
            while not child.dead:
                rows = asyncio.wrap_future(parked)
                departure.watch(rows)
                try:
                    result = await rows
                except asyncio.CancelledError:
                    if not departure.gone:
                        raise  # the task itself was cancelled (the server is stopping)
                    parked = child.throw(ClientGoneError("the client closed its connection."))
                except Exception as error:  # the run failed: raised where the service called it
                    parked = child.throw(error)
                else:
                    parked = child.switch(result)
        finally:
            departure.stop()
        return parked

    def _run(self, encodings: list) -> Any:
        """The predictor's runner: in a request's greenlet, park it on the model thread's
        future; called from anywhere else (a thread), the batcher's own `run`."""
        batcher = self.service.batcher
        assert batcher is not None
        here = greenlet.getcurrent()
        if here.parent is None:
            return batcher.run(encodings)
        return here.parent.switch(batcher.submit(encodings))

    async def _body(self, receive: Any) -> bytes | None:
        """The body, kept up to one byte over the limit: enough for the service's 413, without
        holding a body of any size in memory; None when it has not all come within
        `read_timeout` seconds."""
        keep = self.service.config.max_body_bytes + 1
        chunks: list[bytes] = []
        kept = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                    chunk = message.get("body", b"")
                    if kept < keep:
                        chunks.append(chunk[: keep - kept])
                        kept += len(chunks[-1])
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return None
        return b"".join(chunks)


def _headers(response: Response, length: bool = True) -> list[tuple[bytes, bytes]]:
    """A response's headers for the wire, with its length unless told not to (no chunked
    encoding then, but for h11's framing of a HEAD answer)."""
    headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers.items()]
    if not length:
        return headers
    return [*headers, (b"content-length", str(len(response.body)).encode())]


class Departure:
    """Cancels a request's wait for the model when its client leaves; watches only once the
    request has waited `WATCH_AFTER_S`, so that the requests answered sooner (a lone one takes
    milliseconds) pay a timer, not a task listening on `receive` and its cancelling."""

    def __init__(self, receive: Any) -> None:
        self.gone = False
        self._receive = receive
        self._rows: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._listener: asyncio.Task | None = None

    def watch(self, rows: asyncio.Future) -> None:
        """From now on, the client leaving cancels ROWS (the model thread's future)."""
        self._rows = rows
        if self.gone:
            rows.cancel()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._listen)

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._listener:
            self._listener.cancel()

    def _listen(self) -> None:
        self._listener = asyncio.ensure_future(self._left())

    async def _left(self) -> None:
        await _disconnect(self._receive)
        self.gone = True
        if self._rows:
            self._rows.cancel()


async def _disconnect(receive: Any) -> None:
    """Return once the client has gone: after the whole body, uvicorn's `receive` waits until
    the connection is lost (or the answer is sent) and then says `http.disconnect`."""
    while (await receive())["type"] != "http.disconnect":
        continue


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def app() -> App:
    """The application factory gunicorn calls in each worker, after the fork: an onnxruntime
    session created before a fork would carry thread pools that do not survive into the child."""
    seconds = float(os.environ.get("BERTLESS_READ_TIMEOUT") or READ_TIMEOUT_S)
    return App(Service.from_bundle(bundle_location()), seconds)
