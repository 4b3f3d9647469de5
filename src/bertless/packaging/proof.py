"""Proof before upload: the artifact, unzipped into an empty folder, answers real requests.

A clean interpreter of the platform's Python version runs with `-I -S` (no environment variables,
no user or system site-packages) and that folder alone on `sys.path`, imports the entry point
and sends one request per route of the bundle's task through the platform's own adapter. What
the build machine happens to have installed cannot hide a missing file that way.

The proof runs with `-B` as well: Lambda's /var/task and Azure's mounted package are read-only,
so a function only has the bytecode its zip ships, and the proof counts how many of the modules it
imported from the artifact came from shipped `.pyc`.

This file is also the program that interpreter runs (`python -I -S proof.py SPEC`), so it imports
only the standard library at module scope. The peak-memory measurement and the bytecode compiler
(`precompile`, which must run in the target's own CPython: the `.pyc` magic number is per version)
live here too: they are the other subprocesses that packaging runs.
"""

from __future__ import annotations

import asyncio
import glob
import importlib
import inspect
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLES: dict[str, Any] = {
    "/embed": {"inputs": ["bertless packs a model.", "It answers on every cloud."]},
    "/predict": {"inputs": ["I love this.", "I hate this."]},
    "/similarity": {
        "inputs": {"source_sentence": "A cat sits.", "sentences": ["A cat is sitting.", "Tax."]}
    },
    "/rerank": {"query": "What is a cat?", "texts": ["A cat is an animal.", "Stocks fell."]},
    "/v1/embeddings": {"input": ["bertless packs a model."]},
    "/": {"inputs": "bertless packs a model."},
}
"""A real request body for each POST route of the contract; a route without one fails the proof."""

Answer = tuple[str, int, str]  # how the request was sent, the status, the body
Call = Callable[[str, str, Any], list[Answer]]


@dataclass(frozen=True)
class Proof:
    status: str  # "passed" or "skipped"
    reason: str
    interpreter: str | None = None
    requests: tuple[dict[str, Any], ...] = ()
    modules: tuple[str, ...] = ()  # top-level packages the function imported from the artifact
    imported_sources: int = 0  # modules the function imported from the zip's .py files
    precompiled: int = 0  # of those, how many loaded the artifact's shipped .pyc

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Bytecode:
    cache_tag: str  # "cpython-312": the interpreter's, in every .pyc's file name
    compiled: dict[str, bytes]  # .pyc contents by the zip name of their .py
    failed: tuple[str, ...]  # .py files the interpreter could not compile (left to fail at import)


def find_interpreter(python: str) -> str | None:
    """A CPython of exactly this version: `pythonX.Y` on PATH, else one pyenv installed.

    Returns the interpreter's own path (not a pyenv shim), so the proof runs it directly.
    """
    candidates = [shutil.which(f"python{python}")]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(glob.glob(str(pyenv / "versions" / f"{python}.*" / "bin" / "python3")))
    ask = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run(
                [candidate, "-I", "-S", "-c", ask], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version, _, executable = found.stdout.strip().partition(" ")
        if found.returncode == 0 and version == python and executable:
            return executable
    return None


def skip_reason(python: str, arch: str, glibc: str) -> str | None:
    """Why this machine cannot stand in for the platform, or None when it can."""
    machine = "aarch64" if arch == "arm64" else "x86_64"
    if platform.machine() != machine:
        return f"this machine is {platform.machine()}, the target is {machine}"
    _, host = platform.libc_ver()
    if host and _version(host) < _version(glibc):
        return f"this machine's glibc {host} is older than the target's {glibc}"
    if find_interpreter(python) is None:
        return f"no CPython {python} on this machine (PATH or pyenv)"
    return None


def prove(
    cloud: str,
    artifact: Path,
    entry_point: str,
    python: str,
    routes: Sequence[tuple[str, str]],
    install: Callable[[Path, Path], None] | None = None,
) -> Proof:
    """Unzip `artifact`, answer each route in a clean interpreter; raise if any answer fails.

    `install(requirements_txt, folder)` puts the platform-installed packages into `folder` for
    clouds that install them at deploy (Google); it is None where the zip vendors everything.
    """
    from bertless.packaging.report import PackagingError

    interpreter = find_interpreter(python)
    if interpreter is None:
        return Proof("skipped", f"no CPython {python} on this machine (PATH or pyenv)")
    missing = [path for method, path in routes if method == "POST" and path not in SAMPLES]
    if missing:
        raise PackagingError(f"the proof has no sample request for {', '.join(missing)}.")
    with tempfile.TemporaryDirectory(prefix="bertless-proof-") as scratch:
        root = Path(scratch) / "function"
        with zipfile.ZipFile(artifact) as archive:
            archive.extractall(root)
        site_dirs = (
            [root / ".python_packages" / "lib" / "site-packages"] if cloud == "azure" else []
        )
        if install is not None:
            site_dirs.append(Path(scratch) / "installed")
            install(root / "requirements.txt", site_dirs[-1])
        spec = {
            "cloud": cloud,
            "root": str(root),
            "site_dirs": [str(d) for d in site_dirs],
            "entry_point": entry_point,
            "requests": [[m, p, SAMPLES.get(p) if m == "POST" else None] for m, p in routes],
        }
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "HOME": scratch}
        done = subprocess.run(
            [interpreter, "-I", "-S", "-B", str(Path(__file__).resolve()), str(spec_path)],
            capture_output=True,
            text=True,
            cwd=root,
            env=env,
            timeout=900,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackagingError(
            f"the {cloud} artifact failed its proof in a clean CPython {python}: {tail}"
        )
    result = json.loads(lines[-1])
    failed = [r for r in result["requests"] if r["status"] != 200]
    if failed or result["outside"]:
        what = (
            f"{failed[0]['method']} {failed[0]['path']} ({failed[0]['via']}) answered "
            f"{failed[0]['status']}: "
            f"{failed[0]['body'][:200]}"
            if failed
            else f"it imported {', '.join(result['outside'])} from outside the artifact"
        )
        raise PackagingError(f"the {cloud} artifact failed its proof in CPython {python}: {what}.")
    imported, compiled = result["bytecode"]
    return Proof(
        "passed",
        f"answered {len(result['requests'])} requests in a clean CPython {python}; "
        f"{compiled} of the {imported} Python modules it imported from the zip loaded its .pyc",
        interpreter,
        tuple({k: r[k] for k in ("method", "path", "via", "status")} for r in result["requests"]),
        tuple(result["modules"]),
        imported,
        compiled,
    )


def precompile(interpreter: str, sources: Sequence[tuple[str, Path | bytes]]) -> Bytecode:
    """Compile each `(zip name, source)` with `interpreter` into an unchecked-hash `.pyc`.

    Unchecked-hash (PEP 552): the runtime loads the `.pyc` without reading the source's mtime,
    which a zip does not keep reliably, nor hashing the source; the zip name is the file name the
    code carries, so the same sources always give the same bytes.
    """
    with tempfile.TemporaryDirectory(prefix="bertless-bytecode-") as scratch:
        files = []
        for index, (name, source) in enumerate(sources):
            if isinstance(source, bytes):
                path = Path(scratch) / f"{index}.py"
                path.write_bytes(source)
                source = path
            files.append([name, str(source), str(Path(scratch) / f"{index}.pyc")])
        spec_path = Path(scratch) / "compile.json"
        spec_path.write_text(json.dumps(files))
        done = subprocess.run(
            [interpreter, "-I", "-S", str(Path(__file__).resolve()), "--compile", str(spec_path)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        result = json.loads(_last_line(done, "compiling the artifact's bytecode failed"))
        failed = set(result["failed"])
        compiled = {name: Path(pyc).read_bytes() for name, _, pyc in files if name not in failed}
    return Bytecode(result["cache_tag"], compiled, tuple(sorted(failed)))


def measure_peak_memory(bundle: Path, threads: int) -> float:
    """Peak resident memory (MB) of a process that loads the bundle and runs its worst request.

    The worst request is the largest batch the service accepts, every text at the model's
    maximum length. Measured in a fresh subprocess so this build's own memory is not counted.
    """
    env = {**os.environ, "BERTLESS_THREADS": str(threads)}
    done = subprocess.run(
        # -P: this file's folder (deploy/, with aws.py and azure.py in it) stays off sys.path
        [sys.executable, "-P", str(Path(__file__).resolve()), "--measure", str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    return float(_last_line(done, "measuring the bundle's memory failed"))


def _last_line(done: subprocess.CompletedProcess, failure: str) -> str:
    """What a run of this file printed last; if it failed, `failure` and its last error line."""
    from bertless.packaging.report import PackagingError

    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackagingError(f"{failure}: {tail}")
    return done.stdout.strip().splitlines()[-1]


def _measure(bundle: str) -> float:
    from bertless.core.config import Config
    from bertless.core.predictor import Predictor

    predictor = Predictor.load(bundle)
    manifest = predictor.manifest
    batch = Config.from_env(manifest).max_batch_size
    texts = ["word " * (2 * manifest.max_length)] * batch
    if manifest.task == "feature-extraction":
        predictor.embed(texts, batch, truncate=True)
    else:
        predictor.classify(texts, batch, truncate=True)
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark into a child
    # across fork and exec, so ru_maxrss would report the build process's memory
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


# -- what runs inside the clean interpreter ------------------------------------------------------


def _answer(spec: dict[str, Any]) -> dict[str, Any]:
    root = Path(spec["root"])
    inside = [str(root), *spec["site_dirs"]]
    sys.path[:0] = inside
    call = {"aws": _aws, "gcp": _gcp, "azure": _azure}[spec["cloud"]](root, spec["entry_point"])
    requests = []
    for method, path, body in spec["requests"]:
        for via, status, text in call(method, path, body):
            requests.append(
                {"method": method, "path": path, "via": via, "status": status, "body": text}
            )
    stdlib = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    modules, outside = set(), set()
    imported = compiled = 0
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "__main__":  # this program itself
            continue
        if any(file.startswith(d + os.sep) for d in inside):
            modules.add(name.partition(".")[0])
            if file.endswith(".py") and file.startswith(str(root) + os.sep):
                # run with -B: a .pyc beside the source can only be one the zip shipped
                cached = getattr(module, "__cached__", None)
                imported += 1
                compiled += bool(cached and os.path.isfile(cached))
        elif not any(file.startswith(d + os.sep) for d in stdlib) or "-packages" in file:
            outside.add(name)
    return {
        "requests": requests,
        "modules": sorted(modules),
        "outside": sorted(outside),
        "bytecode": [imported, compiled],
    }


def _compile(files: list[list[str]]) -> dict[str, Any]:
    import py_compile

    failed = []
    for name, source, pyc in files:
        try:
            py_compile.compile(
                source,
                cfile=pyc,
                dfile=name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            failed.append(name)
    return {"cache_tag": sys.implementation.cache_tag, "failed": failed}


def _entry(entry_point: str) -> Any:
    module, _, attribute = entry_point.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _aws(root: Path, entry_point: str) -> Call:
    handler = _entry(entry_point)

    class Context:
        function_name = "bertless-proof"
        memory_limit_in_mb = "1024"
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bertless-proof"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    def call(method: str, path: str, body: Any) -> list[Answer]:
        """Each request twice: as an HTTP API (and Function URL) event, and invoked directly."""
        http = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "host": "proof.invalid"},
            "requestContext": {
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1"},
                "requestId": "proof",
                "stage": "$default",
            },
            "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False,
        }
        direct = {"path": path, "method": method, **({"body": body} if body is not None else {})}
        answers = []
        for via, event in (("HTTP API event", http), ("direct invocation", direct)):
            result = handler(event, Context())
            text = result.get("body")
            text = text if isinstance(text, str) else json.dumps(text)
            answers.append((via, int(result["statusCode"]), text))
        return answers

    return call


def _gcp(root: Path, entry_point: str) -> Call:
    from functions_framework import create_app

    client = create_app(entry_point, str(root / "main.py"), "http").test_client()

    def call(method: str, path: str, body: Any) -> list[Answer]:
        response = client.open(path, method=method, json=body)
        return [("functions-framework test client", response.status_code, response.get_data(True))]

    return call


def _azure(root: Path, entry_point: str) -> Call:
    import azure.functions as func

    functions = [
        (f, b)
        for f in _entry(entry_point).get_functions()
        for b in f.get_bindings()
        if b.type == "httpTrigger"
    ]
    if len(functions) != 1:
        raise RuntimeError(f"expected one HTTP-triggered function, found {len(functions)}")
    function, trigger = functions[0]
    user = function.get_user_function()
    parameter = re.search(r"\{\*?(\w+)", trigger.route or "")

    def call(method: str, path: str, body: Any) -> list[Answer]:
        request = func.HttpRequest(
            method,
            "http://localhost" + path,
            headers={"Content-Type": "application/json"},
            params={},
            route_params={parameter.group(1): path.lstrip("/")} if parameter else {},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        response = user(request)
        if inspect.iscoroutine(response):
            response = asyncio.run(response)
        return [("func.HttpRequest", response.status_code, response.get_body().decode())]

    return call


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


if __name__ == "__main__":
    if sys.argv[1] == "--measure":
        print(_measure(sys.argv[2]))
    elif sys.argv[1] == "--compile":
        print(json.dumps(_compile(json.loads(Path(sys.argv[2]).read_text()))))
    else:
        print(json.dumps(_answer(json.loads(Path(sys.argv[1]).read_text()))))
