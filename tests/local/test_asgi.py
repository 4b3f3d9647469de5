"""`bertless serve` on uvicorn: slow clients wait only for themselves, and the errors the server
answers itself are the contract's JSON. Spoken to over raw sockets where a client library would
refuse to send what is tested."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import requests

from bertless.local.asgi import HEADER_BYTES, HEADER_FIELDS


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


def test_a_body_over_the_limit_is_refused_without_keeping_it(embed_server):
    body = b'{"inputs": "' + b"a" * 2_100_000 + b'"}'
    answer = requests.post(
        embed_server + "/embed",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert_json_error(answer.status_code, answer.headers, answer.content, 413, "bytes")


def test_serve_ignores_functions_frameworks_environment_variables(minilm_bundle):
    """functions-framework's gunicorn application read WORKERS with int(): a WORKERS set for
    something else stopped `bertless serve` with a traceback before it answered anything."""
    from bertless.local.server import local_server

    env = {"WORKERS": "four", "CLOUD_RUN_TIMEOUT_SECONDS": "soon"}
    with local_server(minilm_bundle, env=env) as url:
        assert requests.get(url + "/health", timeout=60).json() == {"status": "ok"}
        vectors = requests.post(url + "/embed", json={"inputs": "hi"}, timeout=60).json()
        assert len(vectors) == 1 and len(vectors[0]) == 384
