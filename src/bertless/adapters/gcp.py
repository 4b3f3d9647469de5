"""Google Cloud Functions (and the local server): a functions-framework HTTP function.

The entry point is `handle`. The bundle loads once, when the worker imports this module.
"""

from __future__ import annotations

import flask
import functions_framework

from bertless.core.config import bundle_location
from bertless.core.service import Request, Service

SERVICE = Service.from_bundle(bundle_location())


# Cloud Run's trace header, "TRACE_ID/SPAN_ID;o=1": its trace id is what Cloud Logging joins
# a request's log lines by (https://cloud.google.com/trace/docs/trace-context, read 2026-11-29).
TRACE_HEADER = "X-Cloud-Trace-Context"


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    trace = (request.headers.get(TRACE_HEADER) or "").partition("/")[0]
    response = SERVICE.handle(
        Request(
            request.method,
            request.path,
            dict(request.headers),
            request.get_data(cache=False),
            request_id=trace or None,
        )
    )
    return flask.Response(response.body, response.status, response.headers)
