"""The proof's child: inside an unzipped artifact, send each request through the platform's adapter.

Run by `bertless.packaging.proof.prove` as `python -I -S -B answer_requests.py SPEC` in a clean
CPython of the platform's version, with the artifact's folder as working directory. `-I -S` leave
the standard library alone on `sys.path` (no environment variables, no site-packages, not even this
script's folder), so this script imports only the standard library at module scope and adds the
artifact's folders itself: what the build machine has installed cannot hide a missing file. `-B`
because Lambda's /var/task and Azure's mounted package are read-only: a function has only the
bytecode its zip ships, and this counts how many imported modules came from a shipped `.pyc`.

SPEC is a JSON file: {"cloud", "root", "site_dirs", "shipped" (the folders whose .pyc the
artifact ships), "entry_point", "requests": [[method, path, body], ...]}. The last line printed is
a JSON object: each answer, the top-level packages imported from the artifact, anything imported
from outside it, and [modules imported, of which precompiled].
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import re
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

Answer = tuple[str, int, str]  # how the request was sent, the status, the body
Call = Callable[[str, str, Any], list[Answer]]


def answer(spec: dict[str, Any]) -> dict[str, Any]:
    """Answer the spec's requests, then say where every imported module came from."""
    root = Path(spec["root"])
    inside = [str(root), *spec["site_dirs"]]
    sys.path[:0] = inside
    call = CALLERS[spec["cloud"]](root, spec["entry_point"])
    requests = []
    for method, path, body in spec["requests"]:
        for via, status, text in call(method, path, body):
            requests.append(
                {"method": method, "path": path, "via": via, "status": status, "body": text}
            )
    shipped = [d + os.sep for d in spec.get("shipped", [str(root)])]
    stdlib = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    modules, outside = set(), set()
    imported = compiled = 0
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "__main__":  # this program itself
            continue
        if any(file.startswith(d + os.sep) for d in inside):
            modules.add(name.partition(".")[0])
            if file.endswith(".py") and file.startswith(tuple(shipped)):
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


CALLERS: dict[str, Callable[[Path, str], Call]] = {"aws": _aws, "gcp": _gcp, "azure": _azure}
"""How each platform hands a request to the function: its event, its test client, its types."""

if __name__ == "__main__":
    print(json.dumps(answer(json.loads(Path(sys.argv[1]).read_text()))))
