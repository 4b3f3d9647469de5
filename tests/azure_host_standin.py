"""STAND-IN for the Azure Functions host, not Microsoft's: the entrypoint of the tests' stand-in
for `mcr.microsoft.com/azure-functions/python` (no registry outside this machine is reachable, and
the real host is a .NET program that does not run here).

It does what the real image does with a Python app, as far as an HTTP request goes: it reads the
app from $AzureWebJobsScriptRoot, puts the app's `.python_packages/lib/site-packages` on
`sys.path` (the Python worker's CUSTOMER_PACKAGES_PATH), indexes `function_app.app` for its one
HTTP trigger, strips host.json's route prefix, and listens where $ASPNETCORE_URLS says
(`http://+:80` in the real base). It does not check function keys (the real host does, outside
development mode), and every answer carries `x-stand-in: azure-functions-host`.

Standard library only at module scope: it runs in the image's interpreter, chrooted, before the
app's packages are on the path.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

ROOT = os.environ["AzureWebJobsScriptRoot"]  # noqa: SIM112  (the host's own name)
sys.path[:0] = [ROOT, os.path.join(ROOT, ".python_packages", "lib", "site-packages")]
os.chdir(ROOT)

import azure.functions as func  # noqa: E402  (from the app's packages, just put on the path)


def http_function():
    """The app's one HTTP-triggered function, its route parameter, and host.json's prefix."""
    app = importlib.import_module("function_app").app
    found = [
        (f, b) for f in app.get_functions() for b in f.get_bindings() if b.type == "httpTrigger"
    ]
    (function, trigger), *_ = found
    parameter = re.search(r"\{\*?(\w+)", trigger.route or "")
    with open(os.path.join(ROOT, "host.json")) as file:
        prefix = json.load(file).get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return function.get_user_function(), parameter.group(1) if parameter else None, prefix


USER, PARAMETER, PREFIX = http_function()


class Context:
    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


class Handler(BaseHTTPRequestHandler):
    def handle_one(self) -> None:
        url = urlsplit(self.path)
        path = url.path.removeprefix("/" + PREFIX if PREFIX else "")
        length = int(self.headers.get("Content-Length") or 0)
        request = func.HttpRequest(
            self.command,
            f"http://{self.headers.get('Host', 'localhost')}{self.path}",
            headers=dict(self.headers),
            params=dict(parse_qsl(url.query)),
            route_params={PARAMETER: path.lstrip("/")} if PARAMETER else {},
            body=self.rfile.read(length),
        )
        response = USER(request, Context())
        if inspect.iscoroutine(response):
            response = asyncio.run(response)
        body = response.get_body()
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-stand-in", "azure-functions-host")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = handle_one

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("stand-in host: " + format % args + "\n")


if __name__ == "__main__":
    listen = urlsplit(os.environ.get("ASPNETCORE_URLS", "http://+:80").replace("+", "0.0.0.0"))
    print(f"STAND-IN Azure Functions host (tests), serving {ROOT} on {listen.netloc}", flush=True)
    ThreadingHTTPServer((listen.hostname, listen.port or 80), Handler).serve_forever()
