"""Stand-in base images for the image tests, built here from this machine's files.

No registry outside this machine is reachable, so neither Docker Hub's `python:X.Y-slim` (Cloud
Run's) nor Microsoft's Functions image can be pulled. These STAND-INS carry what those bases give
an app: a CPython of the target version under /usr/local (where `python:X.Y-slim` has it), copied
from this machine's pyenv build with its standard library and the shared libraries it and its
extension modules load (ldd's closure, plus libstdc++ and libgcc_s, which Debian's slim base
has), so the image's own command runs chrooted in its root filesystem. The Azure one adds
`azure_host_standin.py` as its entrypoint, in place of Microsoft's .NET Functions host.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from bertless.packaging import oci
from bertless.packaging.proof import find_interpreter

HERE = Path(__file__).parent
LEFT_OUT = {"test", "site-packages", "__pycache__", "idlelib", "tkinter", "turtledemo", "ensurepip"}
LEFT_OUT_PREFIX = ("config-", "lib2to3")
GLIBC = ("librt.so.1", "libdl.so.2", "libpthread.so.0", "libutil.so.1", "libresolv.so.2")


def python_files(python: str) -> list[tuple[str, bytes | Path]]:
    """CPython `python` as `python:X.Y-slim` lays it out, and the libraries it loads."""
    interpreter = find_interpreter(python)
    assert interpreter, f"no CPython {python} here"
    ask = "import sys, sysconfig; print(sysconfig.get_path('stdlib')); print(sys.base_prefix)"
    stdlib, prefix = subprocess.run(
        [interpreter, "-I", "-c", ask], capture_output=True, text=True, check=True
    ).stdout.split()
    files: list[tuple[str, bytes | Path]] = []
    for name in (f"python{python}", "python3", "python"):
        files.append((f"usr/local/bin/{name}", Path(interpreter)))
    libpython = sorted(Path(prefix, "lib").glob(f"libpython{python}.so*"))
    for library in libpython:
        files.append((f"usr/local/lib/{library.name}", library))
    for path in sorted(Path(stdlib).rglob("*")):
        relative = path.relative_to(stdlib)
        if path.is_file() and not _left_out(relative.parts):
            files.append((f"usr/local/lib/python{python}/{relative.as_posix()}", path))
    loaded = [interpreter, *map(str, libpython), *map(str, Path(stdlib).glob("lib-dynload/*.so"))]
    for library in sorted(_shared_libraries(loaded)):
        files.append((library.lstrip("/"), Path(library).resolve()))
    files.append(("tmp/.keep", b""))
    return files


def python_base(python: str, extra=(), entrypoint=None, env=None) -> oci.Image:
    """A base holding CPython `python` in one layer (and `extra` files in another)."""
    empty = oci.Image(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": [
                    "PATH=/usr/local/bin:/usr/bin:/bin",
                    "LD_LIBRARY_PATH=/usr/local/lib",  # python:slim runs ldconfig instead
                    "LANG=C.UTF-8",
                    *(f"{k}={v}" for k, v in (env or {}).items()),
                ],
                **({"Entrypoint": entrypoint} if entrypoint else {}),
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        (),
    )
    layers = [python_layer(python), *([oci.tar_layer(extra)] if extra else [])]
    return oci.append(empty, layers, cmd=None, env={}, workdir="/")


@functools.cache
def python_layer(python: str) -> tuple[oci.Blob, str]:
    """The interpreter's layer, built once: both stand-in bases start with it."""
    return oci.tar_layer(python_files(python))


def azure_base(python: str) -> oci.Image:
    """The stand-in of Microsoft's Functions base: Python, and the stand-in host as entrypoint."""
    host = "azure-functions-host/standin_host.py"
    return python_base(
        python,
        extra=[(host, HERE / "azure_host_standin.py")],
        entrypoint=["python", "/" + host],
        env={"ASPNETCORE_URLS": "http://+:80", "HOME": "/home"},
    )


def _left_out(parts: tuple[str, ...]) -> bool:
    return bool(LEFT_OUT & set(parts)) or parts[0].startswith(LEFT_OUT_PREFIX)


def _shared_libraries(binaries: list[str]) -> set[str]:
    """Every library `ldd` says these load (by the path they load it from), and the rest of
    glibc's, libstdc++ and libgcc_s, which Debian's slim base carries."""
    found: set[str] = set()
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for name in (*GLIBC, "libstdc++.so.6", "libgcc_s.so.1"):
        match = re.search(rf"{re.escape(name)} \(libc6,x86-64\) => (\S+)", cache)
        if match:
            found.add(match.group(1))
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        found.update(re.findall(r"(/\S+) \(0x", out))
    return {f for f in found if "/.pyenv/" not in f}
