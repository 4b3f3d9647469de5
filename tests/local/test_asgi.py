"""`bertless serve` on uvicorn: slow clients wait only for themselves, the errors the server
answers itself are the contract's JSON, and concurrent requests share model runs. Spoken to over
raw sockets where a client library would refuse to send what is tested."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import requests

from bertless.core.predictor import Predictor
from bertless.core.service import Service
from bertless.local.asgi import HEADER_BYTES, HEADER_FIELDS, App
from bertless.local.server import local_server


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer with a Content-Length, read to its end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def assert_json_error(status: int, headers: dict, body: bytes, expected: int, words: str) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    assert body.startswith(b'{"error":"') and words.encode() in body
    assert b"<html" not in body.lower()


def test_clients_stalled_in_their_headers_do_not_delay_health(embed_server):
    # More stalled clients than gunicorn's threaded worker had threads (4 per CPU): there, 8
    # such clients kept /health waiting for 18 s.
    with ExitStack() as stack:
        for _ in range(16):
            sock = stack.enter_context(connect(embed_server))
            sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        # The timeout is the test: a server that queued /health behind them would exceed it.
        answer = requests.get(embed_server + "/health", timeout=5)
        assert answer.json() == {"status": "ok"}
        embedded = requests.post(
            embed_server + "/embed", json={"inputs": "still served"}, timeout=5
        )
        assert embedded.status_code == 200


def test_a_client_stalled_in_its_body_does_not_delay_others(embed_server):
    with connect(embed_server) as sock:
        sock.sendall(
            b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs": '
        )
        assert requests.get(embed_server + "/health", timeout=5).status_code == 200


def test_headers_too_large_get_the_contracts_431_when_they_arrive_whole(embed_server):
    answer = requests.get(embed_server + "/health", headers={"X-Big": "a" * 65536}, timeout=30)
    assert_json_error(answer.status_code, answer.headers, answer.content, 431, "headers")
    many = {f"X-Field-{i}": "v" for i in range(HEADER_FIELDS + 1)}
    answer = requests.get(embed_server + "/health", headers=many, timeout=30)
    assert_json_error(answer.status_code, answer.headers, answer.content, 431, "fields")


def test_headers_too_large_get_the_contracts_431_when_they_arrive_in_pieces(embed_server):
    # Unfinished headers past h11's buffer: refused by the protocol, before any application.
    with connect(embed_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(HEADER_BYTES // 1000 + 2):
            sock.sendall(b"X-Piece: " + b"a" * 1000 + b"\r\n")
        assert_json_error(*read_answer(sock), 431, "headers")


def test_a_request_that_is_not_http_gets_the_contracts_400(embed_server):
    with connect(embed_server) as sock:
        sock.sendall(b"HELLO THERE\r\n\r\n")
        assert_json_error(*read_answer(sock), 400, "not HTTP/1.1")


def test_a_websocket_upgrade_is_answered_as_the_plain_request_it_also_is(embed_server):
    """uvicorn upgraded it when a WebSocket library was installed, and the application, which
    serves HTTP only, failed on it: a plain-text 500 and a traceback in the log."""
    with connect(embed_server) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        status, headers, body = read_answer(sock)
    assert (status, headers["content-type"], json.loads(body)) == (
        200,
        "application/json",
        {"status": "ok"},
    )


def test_a_head_answer_never_states_a_length_other_than_the_gets(embed_server):
    """RFC 9110 8.6: a server MUST NOT send Content-Length in an answer to HEAD unless it is the
    length the GET's content would have; the server sent 0, the length of what HEAD carries."""
    for path in ("/health", "/info", "/openapi.json", "/nowhere"):
        got = requests.get(embed_server + path, timeout=30)
        head = requests.head(embed_server + path, timeout=30)
        assert (head.status_code, head.content) == (got.status_code, b"")
        length = got.headers["Content-Length"]
        assert head.headers.get("Content-Length", length) == length, path


def test_a_body_over_the_limit_is_refused_without_keeping_it(embed_server):
    body = b'{"inputs": "' + b"a" * 2_100_000 + b'"}'
    answer = requests.post(
        embed_server + "/embed",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert_json_error(answer.status_code, answer.headers, answer.content, 413, "bytes")


# -- deadlines, and the log lines of the answers the server gives itself --------------------------

SECRET = "zebra-quartz-secret"  # a word that must never reach a log line


@pytest.fixture(scope="module")
def timed_server(minilm_bundle, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`bertless serve` with a read timeout of one second, and the file its log lines go to."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with local_server(minilm_bundle, env={"BERTLESS_READ_TIMEOUT": "1"}, log_path=log) as url:
        yield url, log


def assert_answered_then_closed(sock: socket.socket, status: int, words: str) -> None:
    assert_json_error(*read_answer(sock), status, words)
    assert sock.recv(1) == b"", "the server kept the connection open"


def test_a_body_that_stalls_gets_the_contracts_408_and_its_connection_is_closed(timed_server):
    """uvicorn has no body deadline: a client that stopped halfway kept its connection and the
    body it had sent for as long as it liked (150 such clients held 276 MB of a server)."""
    url, _ = timed_server
    with connect(url) as sock:
        sock.sendall(
            b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs": '
        )
        assert_answered_then_closed(sock, 408, "within 1 seconds")
    with connect(url) as sock:  # a chunked body that stops: the same
        sock.sendall(
            b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"inp\r\n'
        )
        assert_answered_then_closed(sock, 408, "within 1 seconds")


def test_a_head_that_trickles_in_gets_408_however_steadily_it_comes(timed_server):
    """One byte at a time keeps no deadline from passing (the issue's clients sent 1 byte/s)."""
    url, _ = timed_server
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        answer = b""
        for _ in range(100):  # 20 s at most, far past the one-second deadline
            try:
                sock.sendall(b"X")
                answer = sock.recv(65536)
                break
            except TimeoutError:
                continue
            except ConnectionError:  # closed while we wrote: its answer was sent before
                break
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error":"the request did not arrive whole' in answer


def test_every_answer_the_server_gives_itself_has_its_log_line_and_metrics(timed_server):
    url, log = timed_server
    before = log.read_bytes().count(b"\n")
    requests.get(url + "/health", headers={"X-Big": SECRET * 2000}, timeout=30)  # 431, whole
    with connect(url) as sock:  # 431 in pieces (h11's)
        sock.sendall(b"GET /" + SECRET.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        for _ in range(HEADER_BYTES // 1000 + 2):
            sock.sendall(b"X-Piece: " + b"a" * 1000 + b"\r\n")
        read_answer(sock)
    with connect(url) as sock:  # not HTTP (h11's 400)
        sock.sendall(SECRET.encode() + b"\r\n\r\n")
        read_answer(sock)
    with connect(url) as sock:  # a head that never ends (408)
        sock.sendall(b"GET /health HTTP/1.1\r\nX-A: " + SECRET.encode())
        read_answer(sock)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()[before:] if line.startswith("{")]
    assert sorted(line["status"] for line in lines) == [400, 408, 431, 431]
    assert all(line["route"] == "unmatched" for line in lines)
    assert SECRET not in text
    metrics = requests.get(url + "/metrics", timeout=30).text
    for status in (400, 408, 431):
        assert f'bertless_requests_total{{route="unmatched",status="{status}"}}' in metrics


def test_serve_ignores_functions_frameworks_environment_variables(minilm_bundle):
    """functions-framework's gunicorn application read WORKERS with int(): a WORKERS set for
    something else stopped `bertless serve` with a traceback before it answered anything."""
    env = {"WORKERS": "four", "CLOUD_RUN_TIMEOUT_SECONDS": "soon"}
    with local_server(minilm_bundle, env=env) as url:
        assert requests.get(url + "/health", timeout=60).json() == {"status": "ok"}
        vectors = requests.post(url + "/embed", json={"inputs": "hi"}, timeout=60).json()
        assert len(vectors) == 1 and len(vectors[0]) == 384


# -- the service on the event loop (greenlets parked on the model thread) -----------------------


def test_concurrent_requests_share_runs_and_each_gets_its_answer_alone(embed_server, minilm_bundle):
    """16 clients at once over HTTP: their texts share model runs (the server's /metrics), and
    each answer equals the Predictor's for that text alone, computed without any server."""
    texts = [f"client {i} says " + "something rather ordinary " * (1 + i % 3) for i in range(64)]
    alone = Predictor.load(minilm_bundle).encode(texts)

    def runs() -> tuple[float, float]:
        metrics = requests.get(embed_server + "/metrics", timeout=30).text
        found = dict(re.findall(r"^bertless_batch_size_(sum|count) (\S+)$", metrics, re.M))
        return float(found["sum"]), float(found["count"])

    def embed(index: int) -> list[float]:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        answer = session.post(embed_server + "/embed", json={"inputs": texts[index]}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()[0]

    sessions: dict[int, requests.Session] = {}
    rows_before, runs_before = runs()
    with ThreadPoolExecutor(16) as pool:
        got = np.array(list(pool.map(embed, range(64))))
    rows, count = runs()
    assert rows - rows_before == 64
    assert count - runs_before < 64, "no two requests shared a run"
    np.testing.assert_allclose(got, alone, atol=1e-5)


def test_a_full_queue_refuses_with_503_and_loses_nothing_it_accepted(minilm_bundle, tmp_path):
    """20 clients at once against a queue of 2: the refused get the contract's 503 with
    Retry-After; each accepted one gets the Predictor's answer for its texts, and /metrics and
    the log lines count exactly what was sent (no run lost, none left waiting)."""
    texts = [
        [f"client {i} text {j} " + "fairly long words " * 20 for j in range(32)] for i in range(20)
    ]
    expected = Predictor.load(minilm_bundle)
    log = tmp_path / "serve.log"
    env = {"BERTLESS_MAX_CONCURRENT_REQUESTS": "2"}
    with local_server(minilm_bundle, env=env, log_path=log) as url:
        start = threading.Barrier(20)

        def embed(index: int) -> requests.Response:
            start.wait(30)
            return requests.post(url + "/embed", json={"inputs": texts[index]}, timeout=120)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(embed, range(20)))
        metrics = requests.get(url + "/metrics", timeout=30).text
    accepted = [i for i, answer in enumerate(answers) if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code != 200]
    assert accepted and refused, [answer.status_code for answer in answers]
    for answer in refused:
        assert_json_error(answer.status_code, answer.headers, answer.content, 503, "busy")
        assert answer.headers["Retry-After"] == "1"
    for i in accepted:
        np.testing.assert_allclose(answers[i].json(), expected.encode(texts[i]), atol=1e-5)
    found = dict(
        re.findall(
            r'^bertless_requests_total\{route="/embed",status="(\d+)"\} (\S+)$', metrics, re.M
        )
    )
    assert {k: int(float(v)) for k, v in found.items()} == {
        "200": len(accepted),
        "503": len(refused),
    }
    rows = re.search(r"^bertless_batch_size_sum (\S+)$", metrics, re.M)[1]
    assert float(rows) == 32 * len(accepted)  # every accepted text ran, once
    assert re.search(r"^bertless_queue_depth 0$", metrics, re.M)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    statuses = sorted(line["status"] for line in lines if line["route"] == "/embed")
    assert statuses == sorted(answer.status_code for answer in answers)


def test_a_failed_model_run_is_a_500_and_the_next_request_is_answered(minilm_bundle):
    """The model's error reaches the service where it called the model (thrown into the
    request's greenlet), which answers the contract's 500; the app goes on serving."""
    service = Service.from_bundle(minilm_bundle)
    assert service.batcher is not None
    real, calls = service.batcher._runner, []

    def failing_once(encodings):
        calls.append(len(encodings))
        if len(calls) == 1:
            raise RuntimeError("the model broke")
        return real(encodings)

    service.batcher._runner = failing_once
    app = App(service)
    first, second = asyncio.run(_two_posts(app))
    assert first[0] == 500 and b"internal error" in first[1]
    assert second[0] == 200 and len(json.loads(second[1])[0]) == 384


async def _two_posts(app: App) -> list[tuple[int, bytes]]:
    return [await _post(app, "/embed", {"inputs": text}) for text in ("one", "two")]


async def _post(
    app: App, path: str, body: dict, leaves: asyncio.Event | None = None
) -> tuple[int, bytes] | None:
    """One ASGI exchange with APP, as uvicorn drives it: status and body of its answer, or None
    when nothing was sent. After the body, `receive` waits, as uvicorn's does, until the client
    leaves (`leaves` is set) and then says `http.disconnect`."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "headers": [(b"content-type", b"application/json")],
    }
    incoming = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    sent: list[dict] = []
    leaves = leaves or asyncio.Event()

    async def receive() -> dict:
        if incoming:
            return incoming.pop(0)
        await leaves.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return (sent[0]["status"], sent[1]["body"]) if sent else None


def test_a_client_that_leaves_while_its_texts_wait_is_dropped_unrun(minilm_bundle, capsys):
    """While one request's run is held, a second waits; its client leaves. It is answered
    nothing, logged 499, and its texts never reach the model; the first is answered."""
    service = Service.from_bundle(minilm_bundle)
    assert service.batcher is not None
    real, runs = service.batcher._runner, []
    started, release = threading.Event(), threading.Event()

    def held(encodings: list) -> np.ndarray:  # the first run waits for `release`
        runs.append(len(encodings))
        started.set()
        assert release.wait(30)
        return real(encodings)

    service.batcher._runner = held
    app = App(service)

    async def exchange() -> list:
        leaves = asyncio.Event()
        first = asyncio.ensure_future(_post(app, "/embed", {"inputs": "stays"}))
        await asyncio.to_thread(started.wait, 30)
        second = asyncio.ensure_future(_post(app, "/embed", {"inputs": ["a", "b"]}, leaves))
        while service.batcher.waiting() != 1:  # bounded by the test's own timeout below
            await asyncio.sleep(0.01)
        leaves.set()
        gone = await asyncio.wait_for(second, 30)  # answered before the held run ends
        release.set()
        return [await asyncio.wait_for(first, 30), gone]

    capsys.readouterr()
    stays, gone = asyncio.run(exchange())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert stays is not None and stays[0] == 200
    np.testing.assert_allclose(
        json.loads(stays[1]), Predictor.load(minilm_bundle).encode(["stays"]), atol=1e-5
    )
    assert gone is None
    assert runs == [1]  # the first request's one row; the second's two never ran
    assert sorted(line["status"] for line in lines) == [200, 499]
    assert service.batcher.waiting() == 0
    assert (
        'bertless_requests_total{route="/embed",status="499"} 1'
        in service.metrics.render().decode()
    )
