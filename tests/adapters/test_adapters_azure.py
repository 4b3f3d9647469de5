"""The Azure function as the real azure.functions package registers and calls it."""

from __future__ import annotations

import json
import subprocess
import sys

import azure.functions as func
import pytest
from conformance import azure_function


def call(adapters, method: str, url: str, route: str | None, body: bytes = b"", **headers):
    """A request as the host hands it over: the URL as sent, the `{*path}` match as `path`."""
    request = func.HttpRequest(
        method,
        url,
        headers=headers,
        route_params={} if route is None else {"path": route},
        body=body,
    )
    return azure_function(adapters.azure.app).get_user_function()(request)


def test_one_http_trigger_takes_every_route_and_method_behind_a_function_key(adapters) -> None:
    function = azure_function(adapters.azure.app)
    binding = json.loads(function.get_function_json())["bindings"][0]
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == "{*path}"
    assert set(binding["methods"]) == {m.value for m in func.HttpMethod}
    assert binding["authLevel"] == "FUNCTION"


def test_bertless_public_makes_the_function_anonymous(tmp_path) -> None:
    """Read at import, as the worker imports it: a fresh interpreter with the variable set."""
    script = (
        "import json; from bertless.adapters import azure; "
        "print(json.loads(azure.app.get_functions()[0].get_function_json())"
        "['bindings'][0]['authLevel'])"
    )
    env = {"BERTLESS_PUBLIC": "1", "BERTLESS_BUNDLE": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "ANONYMOUS"


@pytest.mark.parametrize(
    "url",
    [
        "https://bertless.azurewebsites.net/api/health",  # the host's default route prefix
        "https://bertless.azurewebsites.net/health",  # routePrefix "" in host.json
        "https://bertless.azurewebsites.net/ml/health",  # any other prefix an app setting sets
    ],
)
def test_the_route_is_the_catch_all_match_whatever_the_prefix(adapters, url: str) -> None:
    response = call(adapters, "GET", url, "health")
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}


def test_the_bare_prefix_is_the_root_route(adapters) -> None:
    response = call(adapters, "GET", "https://bertless.azurewebsites.net/api/", None)
    assert response.status_code == 405  # the root takes POST only
    assert response.headers["Allow"] == "POST"


def test_a_post_without_a_body_gets_the_contracts_error(adapters) -> None:
    """Azure passes a request with no body as b"": the service, not the adapter, answers it."""
    url = "https://bertless.azurewebsites.net/api/embed"
    response = call(adapters, "POST", url, "embed", b"", **{"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.get_body()) == {
        "error": "the body is not valid JSON.",
        "error_type": "Validation",
    }


def test_an_embedding_comes_back_as_json_bytes(adapters) -> None:
    url = "https://bertless.azurewebsites.net/api/embed"
    body = json.dumps({"inputs": ["a", "b"]}).encode()
    response = call(adapters, "POST", url, "embed", body, **{"content-type": "application/json"})
    assert response.status_code == 200
    assert [len(v) for v in json.loads(response.get_body())] == [384, 384]
