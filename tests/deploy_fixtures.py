"""Shared fixtures for the deploy tests: artifacts, local cloud endpoints, a request recorder.

The servers are real programs on free loopback ports, started once per session: moto's server
mode for AWS, gcp-storage-emulator for Cloud Storage, Azurite for Blob Storage. An emulator that
is missing is an error, never a skip (scripts/ci-services.sh installs them). Control planes with no
emulator (Cloud Functions, ARM) get stand-ins written in the test modules on top of `StandIn`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bertless.local.server import free_port, stop

ENTRY_POINTS = {"aws": "lambda_function.handler", "gcp": "handle", "azure": "function_app.app"}
# Azurite's documented, public development key: it opens nothing outside this machine.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class LocalArtifact:
    """Same shape as `bertless.packaging.package.Artifact`, for a zip built here in milliseconds."""

    cloud: str
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    entry_point: str
    python: str
    arch: str
    memory_mb: int
    report_path: Path
    layer: None = None  # AWS's runtime layer zip: the packaging tests build real ones
    peak_memory_mb: float | None = None  # as measured by `bertless package`: unknown here
    concurrency: int = 1
    image_uri: None = None  # a zip, not an image


def write_image_report(
    packaged: Any,
    folder: Path,
    seed: str,
    repository: str,
    base: str,
    uncompressed_bytes: int,
    pushed: bool = True,
) -> tuple[Path, str]:
    """An image report as `packaging.image.build_image` writes it, around a real artifact's
    report, for a digest made up from `seed`: the clouds' stand-ins (and moto) never pull the
    image, so the deploy tests need none built. Returns the report's path and the digest."""
    from bertless.packaging.image import ImageBuild
    from bertless.packaging.report import Report

    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    build = ImageBuild(
        digest=digest,
        layout=str(folder / "layout"),
        tag="latest",
        base=base,
        layers=[],
        uncompressed_bytes=uncompressed_bytes,
        pushed_to=f"{repository}:1" if pushed else None,
        pushed_bytes=0,
        check=None,
        proof={"status": "passed"},
        artifact=asdict(Report.read(packaged.report_path)),
    )
    path = folder / f"minilm-{seed}-image.json"
    path.write_text(json.dumps(asdict(build)))
    return path, digest


def make_artifact(
    folder: Path,
    cloud: str,
    payload: bytes = b"v1",
    python: str = "3.12",
    memory_mb: int = 512,
    **measured: Any,
) -> LocalArtifact:
    """A small deterministic zip with an entry file; `payload` changes its hash."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(payload).hexdigest()[:8]
    path = folder / f"{cloud}-{digest}-{len(payload)}.zip"
    module = ENTRY_POINTS[cloud].split(".")[0]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(f"{module}.py", date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(info, "def handler(event, context):\n    return {}\n")
        archive.writestr(zipfile.ZipInfo("payload.bin", date_time=(1980, 1, 1, 0, 0, 0)), payload)
    data = path.read_bytes()
    report = path.with_suffix(".json")
    report.write_text(json.dumps({"cloud": cloud}))
    return LocalArtifact(
        cloud=cloud,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        zipped_bytes=len(data),
        unzipped_bytes=len(payload) + 64,
        entry_point=ENTRY_POINTS[cloud],
        python=python,
        arch="x86_64",
        memory_mb=memory_mb,
        report_path=report,
        **measured,  # peak_memory_mb, concurrency: as `bertless package` would record them
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> Callable[..., LocalArtifact]:
    """`artifacts(cloud, payload=b"v1", python="3.12", memory_mb=512)`: a fresh small artifact."""
    return lambda cloud, *args, **kwargs: make_artifact(
        tmp_path / "artifacts", cloud, *args, **kwargs
    )


class DeployCli:
    """`bertless deploy ...` through the command's own parser."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch

    def parse(self, argv: list[str]) -> argparse.Namespace:
        from bertless.cli import deploy as deploy_command

        top = argparse.ArgumentParser(prog="bertless")
        deploy_command.add_parser(top.add_subparsers(dest="command"))
        return top.parse_args(["deploy", *argv])

    def __call__(self, artifact: LocalArtifact, argv: list[str]) -> int:
        """Parse and run, with the artifact handed in (packaging has tests of its own)."""
        from bertless.cli import deploy as deploy_command

        args = self.parse(argv)
        self.monkeypatch.setattr(deploy_command, "_artifact", lambda args, console: artifact)
        return args.run(args)


@pytest.fixture
def deploy_cli(monkeypatch: pytest.MonkeyPatch) -> DeployCli:
    return DeployCli(monkeypatch)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answered: up
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start within 60 s") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def _server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def _serve(
    command: list[str], probe: str, log: Path, what: str, env: dict | None = None
) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            _wait_until_up(probe, process, log, what)
            yield
        finally:
            stop(process)


@pytest.fixture(scope="session")
def moto_endpoint(_server_logs: Path) -> Iterator[str]:
    """moto in server mode: real boto3 over real HTTP, as against AWS."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}  # so AWSLambdaBasicExecutionRole exists
    for _ in _serve(command, url + "/moto-api/", _server_logs / "moto.log", "moto", env):
        yield url


@pytest.fixture(scope="session")
def gcs_endpoint(_server_logs: Path) -> Iterator[str]:
    """gcp-storage-emulator (PyPI): the JSON and XML Cloud Storage APIs, in memory."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]
    for _ in _serve(command, url + "/", _server_logs / "gcs.log", "gcp-storage-emulator"):
        yield url


def azurite_command() -> str:
    """Azurite's blob server: BERTLESS_AZURITE, the cache ci-services.sh installs to, or PATH."""
    candidates = [
        os.environ.get("BERTLESS_AZURITE"),
        str(Path.home() / ".cache/bertless/azurite/node_modules/.bin/azurite-blob"),
        shutil.which("azurite-blob"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError(
        "azurite-blob not found: run scripts/ci-services.sh "
        "(npm install --prefix ~/.cache/bertless/azurite azurite)"
    )


@pytest.fixture(scope="session")
def azurite_connection_string(
    _server_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Azurite (npm) serving Blob Storage; the connection string the SDK's standard env takes."""
    port = free_port()
    command = [
        azurite_command(),
        "--silent",
        "--location",
        str(tmp_path_factory.mktemp("azurite")),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--disableTelemetry",
        "--skipApiVersionCheck",
    ]
    probe = f"http://127.0.0.1:{port}/devstoreaccount1?comp=list"
    for _ in _serve(command, probe, _server_logs / "azurite.log", "azurite"):
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )


@dataclass
class Call:
    """One request a stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object


Route = Callable[[Call], tuple[int, object]]


@dataclass
class StandIn:
    """A loopback HTTP server that records every request and answers through `route`.

    A route rejects a request that breaks the API's documented shape by raising AssertionError:
    the client gets a 400 with the reason, and the reason is kept in `violations` for the test.
    """

    route: Route
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("PUT", "PATCH", "DELETE", "POST")]


@contextlib.contextmanager
def _serve_stand_in(route: Route) -> Iterator[StandIn]:
    """Run `route` behind a ThreadingHTTPServer on a free loopback port until the block ends."""
    stand_in = StandIn(route)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body: object = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            call = Call(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            stand_in.calls.append(call)
            try:
                status, answer = stand_in.route(call)
            except AssertionError as violation:
                stand_in.violations.append(f"{call.method} {call.path}: {violation}")
                status, answer = 400, {"error": {"code": 400, "message": str(violation)}}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder() -> Iterator[StandIn]:
    """An endpoint that refuses everything and remembers it: proof that nothing was sent."""
    with _serve_stand_in(lambda call: (500, {"error": {"message": "recorder"}})) as stand_in:
        yield stand_in


@pytest.fixture
def serve_stand_in() -> Callable[[Route], contextlib.AbstractContextManager[StandIn]]:
    """`with serve_stand_in(route) as server:` a recording stand-in for an API with no emulator."""
    return _serve_stand_in
