"""`bertless serve`: the GCP adapter under the real functions-framework server (gunicorn).

Each worker imports the adapter, and so loads the model, after gunicorn forks it: an onnxruntime
session created before a fork would carry thread pools that do not survive into the child.
"""

from __future__ import annotations

import os
from pathlib import Path

from bertless.adapters import __path__ as adapters_path


def serve(bundle: Path, host: str, port: int, workers: int, threads: int | None = None) -> None:
    from functions_framework import create_app
    from functions_framework._http.gunicorn import GunicornApplication

    os.environ["BERTLESS_BUNDLE"] = str(Path(bundle).resolve())
    source = str(Path(adapters_path[0]) / "gcp.py")

    class PerWorker(GunicornApplication):
        def load(self):
            return create_app(target="handle", source=source, signature_type="http")

    options = {"workers": workers, "preload_app": False}
    if threads:
        options["threads"] = threads
    PerWorker(None, host, port, False, **options).run()
