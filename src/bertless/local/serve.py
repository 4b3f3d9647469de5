"""`bertless serve`: the service on uvicorn's event loop under gunicorn, as functions-framework
3.10 serves ASGI functions (see `local.asgi` for why not its default threaded worker).

Each worker builds the application, and so loads the model, after gunicorn forks it: an
onnxruntime session created before a fork would carry thread pools that do not survive into the
child.
"""

from __future__ import annotations

import os
from pathlib import Path


def serve(bundle: Path, host: str, port: int, workers: int) -> None:
    from functions_framework._http.gunicorn import UvicornApplication

    from bertless.local import asgi

    os.environ["BERTLESS_BUNDLE"] = str(Path(bundle).resolve())

    class PerWorker(UvicornApplication):
        def load(self):
            return asgi.app()

    options = {"workers": workers, "preload_app": False, "worker_class": f"{asgi.__name__}.Worker"}
    PerWorker(None, host, port, False, **options).run()
