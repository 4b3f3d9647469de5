"""`bertless serve` in a child process, for as long as a block runs.

The quick start, the local latency sweep and the tests all need a real server over loopback,
started the way a user starts it and stopped whatever happens in between. Its output goes to a
temporary file rather than a pipe (a full pipe would stall the server), so that when it exits
before answering, the error can quote its last lines.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from bertless.core.errors import BertlessError


class LocalServerError(BertlessError):
    """The server exited before answering, or never answered."""


class ServerURL(str):
    """The server's base URL, which also knows the server's process id (for memory checks)."""

    pid: int


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_server(
    bundle: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    wrapper: Sequence[str] = (),
    timeout: float = 60,
    log_path: Path | None = None,
) -> Iterator[ServerURL]:
    """Serve `bundle` on 127.0.0.1 until the block ends; yields the URL once /health answers.

    `wrapper` is a command the server runs under (the sweep's cgroup CPU quota). An unhealthy
    answer counts as answering: a broken bundle's 503s are what some callers want to see.
    `log_path` keeps the server's output (its log lines) in that file for the caller to read.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "bertless", "serve", str(bundle), "--port", str(port)]
    with open(log_path, "w+b") if log_path else tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*wrapper, *command, "--workers", str(workers)],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = ServerURL(f"http://127.0.0.1:{port}")
        url.pid = process.pid
        try:
            _wait_until_answering(url, process, log, timeout)
            yield url
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """Ask a child to end, and make it if it has not within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_answering(url: str, process: subprocess.Popen, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
            raise LocalServerError(
                f"bertless serve exited before answering: {' / '.join(tail) or 'no output'}"
            )
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:  # URLError, refused or reset connections, timeouts
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"bertless serve did not answer /health within {timeout:.0f} s"
                ) from None
            time.sleep(0.1)
