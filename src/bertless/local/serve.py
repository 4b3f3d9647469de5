"""`bertless serve`: the service on uvicorn's event loop under gunicorn, as functions-framework
3.10 serves ASGI functions (see `local.asgi` for why not its default threaded worker).

Each worker builds the application, and so loads the model, after gunicorn forks it: an
onnxruntime session created before a fork would carry thread pools that do not survive into the
child.

The gunicorn application is ours rather than functions-framework's `UvicornApplication`, which
reads `WORKERS` and `CLOUD_RUN_TIMEOUT_SECONDS` from the environment with `int()`: a `WORKERS`
set for something else stopped `bertless serve` with a traceback. The settings are the ones it
uses: no worker timeout (a long request is not a stuck worker) and gunicorn's errors only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gunicorn.app.base


class Application(gunicorn.app.base.BaseApplication):
    """gunicorn running `local.asgi`'s application with its worker class."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from bertless.local import asgi

        return asgi.app()


def serve(bundle: Path, host: str, port: int, workers: int) -> None:
    from bertless.local import asgi

    os.environ["BERTLESS_BUNDLE"] = str(Path(bundle).resolve())
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": f"{asgi.__name__}.Worker",
        "preload_app": False,
        "timeout": 0,
        "loglevel": "error",
    }
    Application(options).run()
