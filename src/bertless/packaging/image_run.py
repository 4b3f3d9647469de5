"""An image's proof over HTTP: unpacked by umoci, its own entrypoint run in its root filesystem.

For Cloud Run and Azure Functions the image serves HTTP, so the proof is the platform's own way
in: `umoci unpack` (an OCI tool independent of the code that wrote the layout) turns the image
layout into a runtime bundle, a root filesystem plus the runtime spec (`config.json`) holding the
process the image runs: its entrypoint and command, environment and working directory. That
process runs chrooted into the root filesystem, with the platform's port variable pointing at a
free port on 127.0.0.1 (Cloud Run's `PORT`, the Functions host's `ASPNETCORE_URLS`), and every
route of the bundle's task is sent to it as an HTTP request.

The chroot needs root (or CAP_SYS_CHROOT) and umoci; where either is missing `unavailable` says
why and the caller proves the unpacked app with this machine's CPython instead. The process
shares this machine's network (no network namespace), which is what lets it be reached on
127.0.0.1; nothing else is isolated: this is a proof that the image's files and command serve,
not a sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bertless.packaging.proof import SAMPLES, Proof
from bertless.packaging.report import PackagingError
from bertless.platforms.images import ImageConvention

START_S = 180  # an image's server must answer within this after it starts
REQUEST_S = 120


def unavailable() -> str | None:
    """Why this machine cannot run an image's entrypoint in its root filesystem, or None."""
    if shutil.which("umoci") is None:
        return "umoci is not installed (scripts/ci-services.sh installs it)"
    if os.geteuid() != 0:
        return "chroot needs root"
    return None


def serve_and_ask(
    layout: Path,
    tag: str,
    convention: ImageConvention,
    routes: Sequence[tuple[str, str]],
    cloud: str,
) -> Proof:
    """Unpack `layout:tag`, start its process, send each route; raise if any answer fails."""
    import requests

    with tempfile.TemporaryDirectory(prefix="bertless-run-") as scratch:
        bundle = Path(scratch) / "bundle"
        unpacked = subprocess.run(
            ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
            capture_output=True,
            text=True,
        )
        if unpacked.returncode:
            tail = (unpacked.stderr.strip().splitlines() or ["no message"])[-1]
            raise PackagingError(f"umoci could not unpack the {cloud} image: {tail}")
        spec = json.loads((bundle / "config.json").read_text())
        process = spec["process"]
        rootfs = bundle / spec["root"]["path"]
        port = _free_port()
        env = dict(item.split("=", 1) for item in process.get("env", []))
        env.update(convention.listen_env(port))
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log:
            try:
                server = subprocess.Popen(
                    process["args"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_enter(str(rootfs), process.get("cwd") or "/"),
                    start_new_session=True,
                )
            except (OSError, subprocess.SubprocessError) as error:  # a base without the program
                missing = isinstance(error, OSError)
                why = f"{error.strerror}: {error.filename!r}" if missing else error
                raise PackagingError(
                    f"the {cloud} image cannot start `{' '.join(process['args'])}`: {why}; "
                    "is --base an image with what that command needs?"
                ) from None
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(server, port, log_path, cloud)
            answers = []
            for method, path in routes:
                body = SAMPLES.get(path) if method == "POST" else None
                answer = requests.request(method, url + path, json=body, timeout=REQUEST_S)
                answers.append((method, path, answer.status_code, answer.text))
        finally:
            _stop(server)
    failed = [a for a in answers if a[2] != 200]
    if failed:
        method, path, status, text = failed[0]
        raise PackagingError(
            f"the {cloud} image failed its proof: {method} {path} answered {status}: {text[:200]}."
        )
    command = " ".join(process["args"])
    return Proof(
        "passed",
        f"answered {len(answers)} requests over HTTP from `{command}`, run in the image's "
        "root filesystem as umoci unpacked it",
        command,
        tuple(
            {"method": m, "path": p, "via": "HTTP, in the image", "status": s}
            for m, p, s, _ in answers
        ),
    )


def _enter(rootfs: str, cwd: str):
    """What the child does before it execs the image's process: enter its root and folder."""

    def enter() -> None:
        os.chroot(rootfs)
        os.chdir(cwd)

    return enter


def _wait(server: subprocess.Popen, port: int, log: Path, cloud: str) -> None:
    """Until the port takes connections; a server that exits or stays silent is refused."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise PackagingError(
                f"the {cloud} image's process exited with {server.returncode} before it "
                f"served: {tail}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise PackagingError(f"the {cloud} image's process did not listen within {START_S} s.")


def _stop(server: subprocess.Popen) -> None:
    """The server and every process it started (gunicorn's workers, the host's worker): its
    own session, so its process group, even when the server itself has exited."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    server.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
