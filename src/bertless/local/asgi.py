"""The local server's application: the service as an ASGI app on uvicorn, under gunicorn.

functions-framework's default server is gunicorn's threaded worker, where a connection holds a
thread from the first byte of its headers to the last of its answer: eight clients sending
headers at one byte a second took all eight threads of a 2-CPU server, and `GET /health` waited
18 s behind them. On uvicorn's event loop a connection holds no thread while it is read, so
slow clients only wait for themselves. This is how functions-framework 3.10 runs ASGI functions
(`--asgi`: gunicorn with uvicorn-worker), with three things of ours:

- the errors the server itself answers (a request that is not HTTP/1.1, headers larger than
  h11's 16 KB buffer) are the contract's JSON, not uvicorn's plain text;
- requests wait for the model in the service's bounded queue (core.batcher), which answers a
  full queue with 503 and Retry-After;
- the service runs on the event loop itself, each request in a greenlet that is parked while the
  model thread works for it (`App._handle`).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any, ClassVar

import greenlet
import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn_worker import UvicornWorker

from bertless.core.config import bundle_location
from bertless.core.service import Request, Response, Service, error_response

# The most a request line and its headers may take, and the most header fields: h11's buffer
# (uvicorn's default) and gunicorn's --limit-request-fields. h11 refuses a larger head only
# while it is incomplete; one that arrives whole is refused by `App`, with the same answer.
HEADER_BYTES = h11._connection.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
HEADER_FIELDS = 100


def too_large_headers() -> Response:
    """The contract's 431, whether h11 or the application found the headers too large."""
    return error_response(
        431,
        "Validation",
        f"the request line and headers are larger than {HEADER_BYTES} bytes or more than "
        f"{HEADER_FIELDS} fields: send fewer or shorter headers.",
    )


class JsonErrorsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering what h11 refuses with the contract's JSON error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal = 400
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
        headers = [*_headers(answer), (b"connection", b"close")]
        reason = HTTPStatus(answer.status).phrase.encode()
        self.transport.write(
            self.conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))
        )
        self.transport.write(self.conn.send(h11.Data(data=answer.body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


class Worker(UvicornWorker):
    """gunicorn's worker class for `bertless serve`: uvicorn with the protocol above."""

    CONFIG_KWARGS: ClassVar[dict[str, str]] = {
        "loop": "asyncio",
        "http": f"{__name__}:JsonErrorsH11Protocol",
    }


class App:
    """The service behind ASGI, on the event loop: each request's `Service.handle` runs in a
    greenlet, which parks while the model thread runs its texts (see `_handle`)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        if service.predictor and service.batcher:
            service.predictor.runner = self._run

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await self._body(receive)
        fields = scope["headers"]
        head = len(scope.get("raw_path") or b"") + sum(len(k) + len(v) + 4 for k, v in fields)
        if head > HEADER_BYTES or len(fields) > HEADER_FIELDS:
            response = too_large_headers()
        else:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in fields}
            request = Request(scope["method"], scope["path"], headers, body)
            response = await self._handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": _headers(response),
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _handle(self, request: Request) -> Response:
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
        its synchronous core."""
        child = greenlet.greenlet(self.service.handle)
        parked = child.switch(request)
        while not child.dead:
            try:
                rows = await asyncio.wrap_future(parked)
            except Exception as error:  # the run failed: raised where the service called it
                parked = child.throw(error)
            else:
                parked = child.switch(rows)
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

    async def _body(self, receive: Any) -> bytes:
        """The body, kept up to one byte over the limit: enough for the service's 413, without
        holding a body of any size in memory."""
        keep = self.service.config.max_body_bytes + 1
        chunks: list[bytes] = []
        kept = 0
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
        return b"".join(chunks)


def _headers(response: Response) -> list[tuple[bytes, bytes]]:
    """A response's headers for the wire, with its length (no chunked encoding)."""
    headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers.items()]
    return [*headers, (b"content-length", str(len(response.body)).encode())]


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
    return App(Service.from_bundle(bundle_location()))
