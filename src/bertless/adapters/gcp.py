"""Google Cloud Functions (and the local server): a functions-framework HTTP function.

The entry point is `handle`. The bundle loads once, when the worker imports this module.
"""

from __future__ import annotations

import flask
import functions_framework

from bertless.core.config import bundle_location
from bertless.core.service import Request, Service

SERVICE = Service.from_bundle(bundle_location())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    response = SERVICE.handle(
        Request(request.method, request.path, dict(request.headers), request.get_data(cache=False))
    )
    return flask.Response(response.body, response.status, response.headers)
