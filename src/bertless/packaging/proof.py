"""Proof before upload: the artifact, unzipped into an empty folder, answers real requests.

A clean interpreter of the platform's Python version runs with `-I -S` (no environment variables,
no user or system site-packages, no script folder on the path) and that folder alone on
`sys.path`, imports the entry point and sends one request per route of the bundle's task through
the platform's own adapter. What the build machine happens to have installed cannot hide a missing
file that way. It runs with `-B` as well: Lambda's /var/task and Azure's mounted package are
read-only, so a function only has the bytecode its zip ships, and the proof counts how many of the
modules it imported from the artifact came from shipped `.pyc`.

This module writes the child's spec, runs it and reads its answer; the children themselves are
scripts in `_child/`, run by path: `answer_requests.py` (the proof, standard library only),
`compile_bytecode.py` (`precompile`: the target's own CPython must compile, since the `.pyc` magic
number is per version) and `peak_memory.py` (the bundle's measured memory, in the build's Python).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bertless.packaging.report import PackagingError

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

CHILDREN = Path(__file__).resolve().parent / "_child"
"""The scripts packaging runs in other interpreters, by path."""


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
    layer: Path | None = None,
) -> Proof:
    """Unzip `artifact` (or take the folder it names), answer each route in a clean interpreter;
    raise if any answer fails.

    `install(requirements_txt, folder)` puts the platform-installed packages into `folder` for
    clouds that install them at deploy (Google); it is None where the zip vendors everything.
    `layer` is a Lambda layer zip: unzipped into its own `opt/` folder, whose `python/` comes on
    `sys.path` after the function's folder, as Lambda puts /opt/python after /var/task.
    """
    interpreter = find_interpreter(python)
    if interpreter is None:
        return Proof("skipped", f"no CPython {python} on this machine (PATH or pyenv)")
    missing = [path for method, path in routes if method == "POST" and path not in SAMPLES]
    if missing:
        raise PackagingError(f"the proof has no sample request for {', '.join(missing)}.")
    with tempfile.TemporaryDirectory(prefix="bertless-proof-") as scratch:
        root = Path(scratch) / "function"
        if artifact.is_dir():  # already unpacked: an image's task root in its root filesystem
            root = artifact
        else:
            with zipfile.ZipFile(artifact) as archive:
                archive.extractall(root)
        site_dirs = (
            [root / ".python_packages" / "lib" / "site-packages"] if cloud == "azure" else []
        )
        shipped = [root]  # where the artifact's own .pyc sit
        if layer is not None:
            opt = Path(scratch) / "opt"
            with zipfile.ZipFile(layer) as archive:
                archive.extractall(opt)
            site_dirs.append(opt / "python")
            shipped.append(opt / "python")
        if install is not None:
            site_dirs.append(Path(scratch) / "installed")
            install(root / "requirements.txt", site_dirs[-1])
        spec = {
            "cloud": cloud,
            "root": str(root),
            "site_dirs": [str(d) for d in site_dirs],
            "shipped": [str(d) for d in shipped],
            "entry_point": entry_point,
            "requests": [[m, p, SAMPLES.get(p) if m == "POST" else None] for m, p in routes],
        }
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "HOME": scratch}
        done = subprocess.run(
            [interpreter, "-I", "-S", "-B", str(CHILDREN / "answer_requests.py"), str(spec_path)],
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
            [interpreter, "-I", "-S", str(CHILDREN / "compile_bytecode.py"), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        result = json.loads(_last_line(done, "compiling the artifact's bytecode failed"))
        failed = set(result["failed"])
        compiled = {name: Path(pyc).read_bytes() for name, _, pyc in files if name not in failed}
    return Bytecode(result["cache_tag"], compiled, tuple(sorted(failed)))


def measure_peak_memory(bundle: Path, threads: int, concurrency: int = 1) -> float:
    """Peak resident memory (MB) of a process that loads the bundle and runs its worst request,
    CONCURRENCY of them at once.

    The worst request is the largest batch the service accepts, every text at the model's
    maximum length. Measured in a fresh subprocess so this build's own memory is not counted.
    """
    env = {**os.environ, "BERTLESS_THREADS": str(threads)}
    child = [sys.executable, "-I", str(CHILDREN / "peak_memory.py"), str(bundle)]
    done = subprocess.run(
        [*child, str(concurrency)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    return float(_last_line(done, "measuring the bundle's memory failed"))


def _last_line(done: subprocess.CompletedProcess, failure: str) -> str:
    """What a child printed last; if it failed, `failure` and its last error line."""
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackagingError(f"{failure}: {tail}")
    return done.stdout.strip().splitlines()[-1]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])
