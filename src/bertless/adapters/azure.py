"""Azure Functions, Python v2 programming model: one HTTP trigger for every route and method.

The function app is `app`; the worker finds it in the artifact's `function_app.py`, which imports
it from here. The bundle loads once, when the worker imports this module.

The trigger's route is the catch-all `{*path}`, so the host hands over the path below its route
prefix as the route parameter `path`, whatever that prefix is: `/api` by default, nothing when
host.json sets `extensions.http.routePrefix` to "" (bertless's artifact does, so URLs match the
other clouds), or whatever the `AzureFunctionsJobHost__extensions__http__routePrefix` app setting
says. The route is read from that parameter, never from the URL, so no prefix can leak into it.

The host asks for a function key unless `BERTLESS_PUBLIC=1`: secure by default.
"""

from __future__ import annotations

import azure.functions as func

from bertless.core.config import bundle_location, env_bool
from bertless.core.service import Request, Service

SERVICE = Service.from_bundle(bundle_location())


def auth_level() -> func.AuthLevel:
    """FUNCTION (a key in `x-functions-key` or `?code=`), or ANONYMOUS when BERTLESS_PUBLIC=1."""
    return func.AuthLevel.ANONYMOUS if env_bool("BERTLESS_PUBLIC") else func.AuthLevel.FUNCTION


app = func.FunctionApp(http_auth_level=auth_level())


@app.route(route="{*path}", methods=list(func.HttpMethod))
def bertless(req: func.HttpRequest, context=None) -> func.HttpResponse:
    """The worker passes `context` (it binds a parameter of that name); its invocation id is
    the one the host's own log lines carry for this request.

    `context` has no annotation on purpose: the worker refuses to load a function whose
    `context` annotation is anything but the class `Context` itself, and `Context | None` (or
    `Context = None` under Python 3.10, whose type hints add the Optional) is not.
    """
    response = SERVICE.handle(
        Request(
            req.method,
            "/" + (req.route_params.get("path") or ""),
            dict(req.headers),
            req.get_body(),
            request_id=context.invocation_id if context else None,
        )
    )
    return func.HttpResponse(response.body, status_code=response.status, headers=response.headers)
