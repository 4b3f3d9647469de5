"""The conformance suite's one list of cases, and how an answer is read from every adapter.

A case is a request, the bundle it runs on, and what the contract says of the answer (status,
content type, a check of the body). test_conformance.py sends every case through every adapter
and requires the very bytes the local server answers. The AWS events are the real documents in
events/aws/ (see its README) with this request's method, path, headers and body filled in.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import flask
from azure.functions.decorators.function_app import Function

from bertless.core.http import dumps
from bertless.core.service import Request

JSON = "application/json"
EVENTS = Path(__file__).parent / "events" / "aws"
AWS_SHAPES = ("apigw_v1", "http_api_v1", "http_api_v2", "function_url", "alb", "alb_multi")
# Headers a transport adds or that differ per call: never part of what an adapter must agree on.
TRANSPORT = {"content-length", "date", "server", "connection", "server-timing"}


@dataclass(frozen=True)
class Case:
    name: str
    bundle: str  # "embed" or "classify": which session bundle answers it
    request: Request
    status: int
    check: Callable[[Any], bool]  # of the parsed JSON body
    content_type: str = JSON


@dataclass(frozen=True)
class Answer:
    """What a client sees: status, the headers that matter (lower-case names), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def answer(status: int, headers: Mapping[str, str], body: bytes) -> Answer:
    kept = {name.lower(): value for name, value in headers.items()}
    return Answer(status, {k: v for k, v in kept.items() if k not in TRANSPORT}, body)


def assert_same(expected: Answer, got: Answer) -> None:
    """The comparison every adapter must pass: same status, headers and body bytes."""
    assert got.status == expected.status, f"status {got.status}, expected {expected.status}"
    assert got.headers == expected.headers, f"headers {got.headers}, expected {expected.headers}"
    assert got.body == expected.body, f"body {got.body[:200]!r}, expected {expected.body[:200]!r}"


def assert_meets(case: Case, got: Answer) -> None:
    """The contract's own expectation of a case, independent of any adapter."""
    assert got.status == case.status, f"{case.name}: {got.status} {got.body[:300]!r}"
    assert got.headers.get("content-type") == case.content_type
    assert case.check(json.loads(got.body)), f"{case.name}: {got.body[:300]!r}"


def get(path: str) -> Request:
    return Request("GET", path, {"Accept": JSON}, b"")


def post(path: str, body: Any, content_type: str = JSON) -> Request:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", path, {"Content-Type": content_type, "Accept": JSON}, data)


def _vectors(count: int) -> Callable[[Any], bool]:
    return lambda body: len(body) == count and all(len(v) == 384 for v in body)


def _error(error_type: str = "Validation") -> Callable[[Any], bool]:
    return lambda body: body["error_type"] == error_type and body["error"].endswith(".")


def _ranked(body: list) -> bool:
    scores = [entry["score"] for entry in body]
    return {entry["label"] for entry in body} == LABELS and scores == sorted(scores, reverse=True)


LABELS = {"negative", "neutral", "positive"}
LONG = "the quick brown fox jumps over the lazy dog " * 200
CASES: list[Case] = [
    Case("embed one text", "embed", post("/embed", {"inputs": "hello"}), 200, _vectors(1)),
    Case("embed a list", "embed", post("/embed", {"inputs": ["a", "b c"]}), 200, _vectors(2)),
    Case(
        "openai embeddings",
        "embed",
        post("/v1/embeddings", {"input": ["hi", "there"]}),
        200,
        lambda body: [d["index"] for d in body["data"]] == [0, 1] and body["object"] == "list",
    ),
    Case(
        "similarity",
        "embed",
        post("/similarity", {"inputs": {"source_sentence": "cat", "sentences": ["dog", "car"]}}),
        200,
        lambda body: len(body) == 2,
    ),
    Case(
        "rerank by embeddings",
        "embed",
        post("/rerank", {"query": "pets", "texts": ["stocks", "cats"], "return_text": True}),
        200,
        lambda body: {r["index"] for r in body} == {0, 1} and all("text" in r for r in body),
    ),
    Case("root embeds", "embed", post("/", {"inputs": "hello"}), 200, _vectors(1)),
    Case("trailing slash", "embed", post("/embed/", {"inputs": "hello"}), 200, _vectors(1)),
    Case("health", "embed", get("/health"), 200, lambda body: body == {"status": "ok"}),
    Case("info", "embed", get("/info"), 200, lambda body: body["task"] == "feature-extraction"),
    Case(
        "openapi",
        "embed",
        get("/openapi.json"),
        200,
        lambda body: body["openapi"].startswith("3.1"),
    ),
    Case("unknown route 404", "embed", get("/nope"), 404, _error()),
    Case("wrong method 405", "embed", get("/embed"), 405, _error()),
    Case(
        "not JSON media type 415",
        "embed",
        post("/embed", b"hello", content_type="text/plain"),
        415,
        _error(),
    ),
    Case("not JSON 400", "embed", post("/embed", b"{inputs: hello"), 400, _error()),
    Case("not UTF-8 400", "embed", post("/embed", b'{"inputs": "\xff\xfe"}'), 400, _error()),
    Case("not an object 400", "embed", post("/embed", ["hello"]), 400, _error()),
    Case("empty list 422", "embed", post("/embed", {"inputs": []}), 422, _error()),
    Case("no inputs 422", "embed", post("/embed", {"text": "hello"}), 422, _error()),
    Case("too many inputs 413", "embed", post("/embed", {"inputs": ["a"] * 1000}), 413, _error()),
    Case(
        "too long text 413",
        "embed",
        post("/embed", {"inputs": LONG, "truncate": False}),
        413,
        _error(),
    ),
    Case("predict on embeddings 424", "embed", post("/predict", {"inputs": "hi"}), 424, _error()),
    Case("predict one text", "classify", post("/predict", {"inputs": "great"}), 200, _ranked),
    Case(
        "predict a batch",
        "classify",
        post("/predict", {"inputs": [["good"], ["bad", "pair"]]}),
        200,
        lambda body: len(body) == 2 and all(_ranked(row) for row in body),
    ),
    Case(
        "root predicts, a list per input",
        "classify",
        post("/", {"inputs": "fine"}),
        200,
        lambda body: len(body) == 1 and _ranked(body[0]),
    ),
    Case(
        "classifier info",
        "classify",
        get("/info"),
        200,
        lambda body: set(body["labels"]) == LABELS,
    ),
    Case("embed on a classifier 424", "classify", post("/embed", {"inputs": "hi"}), 424, _error()),
    Case(
        "rerank on three labels 424",
        "classify",
        post("/rerank", {"query": "q", "texts": ["a"]}),
        424,
        _error(),
    ),
]
CASE = {case.name: case for case in CASES}


# -- how each adapter is called ----------------------------------------------------------------

FLASK = flask.Flask("conformance")


def call_gcp(adapters: SimpleNamespace, request: Request) -> Answer:
    with FLASK.test_request_context(
        request.path, method=request.method, headers=dict(request.headers), data=request.body
    ):
        response = adapters.gcp.handle(flask.request)
    return answer(response.status_code, response.headers, response.get_data())


@cache
def azure_function(app: func.FunctionApp) -> Function:
    """The app's one function, as the worker indexes it (once: indexing twice is an error)."""
    (function,) = app.get_functions()
    return function


def call_azure(adapters: SimpleNamespace, request: Request) -> Answer:
    """As the host calls it: the default `/api` prefix in the URL, the route in `path`."""
    route = request.path.lstrip("/")
    response = azure_function(adapters.azure.app).get_user_function()(
        func.HttpRequest(
            request.method,
            "https://bertless.azurewebsites.net/api" + request.path,
            headers=dict(request.headers),
            route_params={"path": route} if route else {},
            body=request.body,
        )
    )
    return answer(response.status_code, response.headers, response.get_body())


def aws_caller(shape: str) -> Callable[[SimpleNamespace, Request], Answer]:
    def call(adapters: SimpleNamespace, request: Request) -> Answer:
        return aws_answer(adapters.aws.handler(aws_event(shape, request), None))

    return call


def call_direct(adapters: SimpleNamespace, request: Request) -> Answer:
    return aws_answer(adapters.aws.handler(direct_event(request), None))


# -- AWS: real event documents, filled in -----------------------------------------------------


@cache
def _document(shape: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{shape}.json").read_text())


def _wire(body: bytes) -> tuple[str, bool]:
    """A body as a gateway puts it in an event: text, or base64 when it is not UTF-8."""
    try:
        return body.decode(), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def _merged(sample: Mapping[str, Any], mine: Mapping[str, Any]) -> dict[str, Any]:
    """The sample's headers, less those describing its own body, plus the request's."""
    drop = {"content-type", "content-length", *(k.lower() for k in mine)}
    return {**{k: v for k, v in sample.items() if k.lower() not in drop}, **mine}


def aws_event(shape: str, request: Request, stage: str | None = None) -> dict[str, Any]:
    """The documented sample event of `shape`, carrying `request` as that service would.

    `stage` renames the sample's stage; the path goes where the service puts it for that stage
    (REST: `path` without it, `requestContext.path` with it; HTTP API: `rawPath` with it).
    """
    event = copy.deepcopy(_document(shape))
    body, encoded = _wire(request.body)
    context = event["requestContext"]
    if stage is not None:
        context["stage"] = stage
    prefix = "" if context.get("stage", "$default") == "$default" else "/" + context["stage"]
    single = dict(request.headers)
    multi = {k: [v] for k, v in single.items()}
    if shape in ("apigw_v1", "http_api_v1"):
        staged = shape == "http_api_v1"  # an HTTP API keeps the stage in `path`, REST does not
        event["path"] = (prefix if staged else "") + request.path
        event["httpMethod"] = request.method
        context.update(httpMethod=request.method, path=prefix + request.path)
        event["headers"] = _merged(event["headers"], single)
        event["multiValueHeaders"] = _merged(event["multiValueHeaders"], multi)
        event["body"] = body or None
    elif shape in ("http_api_v2", "function_url"):  # HTTP APIs send header names lower-case
        event["rawPath"] = prefix + request.path
        context["http"].update(method=request.method, path=prefix + request.path)
        sample = {k.lower(): v for k, v in event["headers"].items()}
        event["headers"] = _merged(sample, {k.lower(): v for k, v in single.items()})
        event.pop("body")
        if body:
            event["body"] = body
    else:  # the load balancer sends header names lower-case
        event["httpMethod"] = request.method
        event["path"] = request.path
        if shape == "alb_multi":
            mine = {k.lower(): v for k, v in multi.items()}
            event["multiValueHeaders"] = _merged(event["multiValueHeaders"], mine)
        else:
            event["headers"] = _merged(event["headers"], {k.lower(): v for k, v in single.items()})
        event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def direct_event(request: Request) -> dict[str, Any]:
    """A direct invocation of `request`: its JSON body parsed, any other body sent as text."""
    text = request.body.decode()
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    event = {"method": request.method, "path": request.path, "headers": dict(request.headers)}
    if body is not None:
        event["body"] = body
    return event


def aws_answer(result: dict[str, Any]) -> Answer:
    """What the client would see of a handler's result, in any of the shapes' formats."""
    if "multiValueHeaders" in result:
        headers = {k: ", ".join(v) for k, v in result["multiValueHeaders"].items()}
    else:
        headers = result["headers"]
    body = result["body"]
    if isinstance(body, str):
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    else:  # a direct invocation's parsed body, in the service's own encoding
        data = b"" if body is None else dumps(body)
    return answer(result["statusCode"], headers, data)
