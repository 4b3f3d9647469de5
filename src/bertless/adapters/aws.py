"""AWS Lambda: one handler for every way an HTTP request reaches a function.

API Gateway REST APIs (and HTTP APIs on payload format 1.0), HTTP APIs on payload format 2.0 and
Function URLs, Application Load Balancer targets, and direct invocation through the Lambda API each
deliver a differently shaped event and expect a differently shaped answer. One small class per
shape recognises its events, reads the neutral `Request` out and writes the `Response` back in its
own format (Mangum's design); the service decides everything else. Query strings are not read: no
route of the contract takes one.

The handler is `bertless.adapters.aws.handler`. The bundle loads once, in the Lambda init phase,
when the runtime imports this module. Formats followed, from the AWS documentation:
- API Gateway developer guide, "Input format of a Lambda function for proxy integration" and
  "Output format ..." (set-up-lambda-proxy-integrations);
- API Gateway developer guide, HTTP API "Payload format version" 1.0 and 2.0
  (http-api-develop-integrations-lambda);
- Lambda developer guide, Function URL "Request and response payloads" (urls-invocation);
- Elastic Load Balancing, "Lambda functions as targets" of an ALB (lambda-functions).

Each request's log line is a CloudWatch Embedded Metric Format document (`embedded_metrics`), so
CloudWatch makes metrics of it with no agent and no API call.
"""

from __future__ import annotations

import base64
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from typing import Any, ClassVar

from bertless.core.config import bundle_location
from bertless.core.service import JSON, Request, Response, Service, error_response

SERVICE = Service.from_bundle(bundle_location())
# The CloudWatch Embedded Metric Format specification, read 2026-11-29:
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_NAMESPACE = "bertless"
# A custom domain's base path mapping (`/bertless` of https://api.example.com/bertless/embed): REST
# APIs and ALBs pass it in the path, and nothing in the event says where it ends.
BASE_PATH = os.environ.get("BERTLESS_BASE_PATH", "").rstrip("/")
UNKNOWN_EVENT = (
    "this event is not an API Gateway, Function URL or load balancer request; to invoke the "
    'function directly, send {"path": "/embed", "body": {"inputs": "text"}}.'
)

Event = dict[str, Any]


class MalformedEvent(ValueError):
    """An event of a known shape whose fields cannot be read."""


def _context(event: Event) -> Mapping[str, Any]:
    context = event.get("requestContext")
    return context if isinstance(context, dict) else {}


def _route(path: str, *prefixes: str) -> str:
    """`path` without the first of `prefixes` it starts with, whole segments only.

    A gateway puts at most one prefix before the route (a stage or a base path mapping), so at
    most one comes off: a stage named `v1` must not eat the `/v1` of `/v1/embeddings` as well.
    """
    for prefix in prefixes:
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return path[len(prefix) :] or "/"
    return path


def _request(method: Any, path: Any, headers: Any, body: bytes) -> Request:
    """A Request of fields read out of an event, checked to be text: the service trusts the
    types of its Request, and nothing an invoker sends may reach it as a 500."""
    headers = dict(headers or {})
    if not all(isinstance(text, str) for text in (method, path, *headers, *headers.values())):
        raise MalformedEvent("the method, path and headers must be text")
    return Request(method, path, headers, body)


def _joined(multi: Mapping[str, list[str]]) -> dict[str, str]:
    """Multi-value headers as one header each, the way HTTP folds repeated fields."""
    return {
        name: ("; " if name.lower() == "cookie" else ", ").join(values)
        for name, values in multi.items()
    }


def _body_in(event: Event) -> bytes:
    """The request body; a missing or null body is empty, and the service says if that matters."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise MalformedEvent("the body is marked base64 but is not valid base64") from None


def _body_out(body: bytes) -> tuple[str, bool]:
    """The response body as every shape carries it: text when it is UTF-8, else base64."""
    try:
        return body.decode(), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def _proxy_answer(response: Response) -> dict[str, Any]:
    """The answer both API Gateway payload formats and Function URLs take."""
    body, encoded = _body_out(response.body)
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": body,
        "isBase64Encoded": encoded,
    }


class Shape(ABC):
    """One kind of event: it recognises its events, reads the request, writes the answer."""

    name: ClassVar[str]

    def __init__(self, event: Any) -> None:
        self.event = event

    @classmethod
    @abstractmethod
    def infer(cls, event: Event) -> bool: ...

    @property
    @abstractmethod
    def request(self) -> Request: ...

    @abstractmethod
    def answer(self, response: Response) -> dict[str, Any]: ...


class ApiGatewayV1(Shape):
    """API Gateway REST proxy integration, and HTTP API payload format 1.0.

    `multiValueHeaders` holds every header, repeated ones included, so it is read when present.
    On the execute-api host `path` has no stage in it; on a custom domain it is the whole URL
    path, equal to `requestContext.path`, and only then can a `/{stage}` still lead it (HTTP API
    named stages, or a base path named after the stage).
    """

    name = "API Gateway"

    @classmethod
    def infer(cls, event: Event) -> bool:
        return "httpMethod" in event and "requestContext" in event and "elb" not in _context(event)

    @property
    def request(self) -> Request:
        event = self.event
        context = event["requestContext"]
        stage = context.get("stage") or "$default"
        staged = stage != "$default" and event["path"] == context.get("path")
        multi = event.get("multiValueHeaders")
        return _request(
            event["httpMethod"],
            _route(event["path"], BASE_PATH, f"/{stage}" if staged else ""),
            _joined(multi) if multi else event.get("headers") or {},
            _body_in(event),
        )

    def answer(self, response: Response) -> dict[str, Any]:
        return _proxy_answer(response)


class HttpApiV2(Shape):
    """HTTP API payload format 2.0, which Function URLs share.

    A named stage always leads `rawPath`, on custom domains too; `$default` (and every Function
    URL) has none. Cookies arrive apart from the headers and go back into a `Cookie` header.
    """

    name = "HTTP API"

    @classmethod
    def infer(cls, event: Event) -> bool:
        return event.get("version") == "2.0" and "http" in _context(event)

    @property
    def request(self) -> Request:
        event = self.event
        context = event["requestContext"]
        stage = context.get("stage") or "$default"
        headers = dict(event.get("headers") or {})
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
        return _request(
            context["http"]["method"],
            _route(event["rawPath"], BASE_PATH, "" if stage == "$default" else f"/{stage}"),
            headers,
            _body_in(event),
        )

    def answer(self, response: Response) -> dict[str, Any]:
        return _proxy_answer(response)


class Alb(Shape):
    """An Application Load Balancer target group of type `lambda`.

    With multi-value headers enabled on the target group the event carries `multiValueHeaders`
    instead of `headers`, and the answer must too ("You must use multiValueHeaders if you have
    enabled multi-value headers and headers otherwise"). `statusDescription` is required.
    """

    name = "load balancer"

    @classmethod
    def infer(cls, event: Event) -> bool:
        return "elb" in _context(event)

    @property
    def multi(self) -> bool:
        return "multiValueHeaders" in self.event

    @property
    def request(self) -> Request:
        event = self.event
        return _request(
            event["httpMethod"],
            _route(event["path"], BASE_PATH),
            _joined(event["multiValueHeaders"]) if self.multi else event.get("headers") or {},
            _body_in(event),
        )

    def answer(self, response: Response) -> dict[str, Any]:
        body, encoded = _body_out(response.body)
        headers = response.headers
        return {
            "statusCode": response.status,
            "statusDescription": f"{response.status} {HTTPStatus(response.status).phrase}",
            **(
                {"multiValueHeaders": {name: [value] for name, value in headers.items()}}
                if self.multi
                else {"headers": headers}
            ),
            "body": body,
            "isBase64Encoded": encoded,
        }


class Direct(Shape):
    """A direct invocation through the Lambda API (boto3 `invoke`, the CLI, Step Functions).

    The event names the route in `path` (or `route`) and carries the body in `body`, or the
    contract's fields beside the route: `{"path": "/embed", "body": {"inputs": "hi"}}` and
    `{"route": "/embed", "inputs": "hi"}` are the same request. `method` defaults to POST when
    there is a body and GET when not (`{"path": "/info"}`); `headers` is optional (Authorization).
    A body that is a string is sent as it is, as raw JSON text.

    The answer is `{"statusCode", "headers", "body"}` with `body` parsed: an SDK caller gets its
    vectors from one `json.load` of the payload, and reads failures from `statusCode` instead of
    from a function error, which Lambda would retry on asynchronous invocations.
    """

    name = "direct invocation"
    FIELDS = ("path", "route", "method", "headers", "body")

    @classmethod
    def infer(cls, event: Event) -> bool:
        return ("path" in event or "route" in event) and not (
            "requestContext" in event or "httpMethod" in event
        )

    @property
    def request(self) -> Request:
        event = self.event
        body = (
            event["body"]
            if "body" in event
            else {k: v for k, v in event.items() if k not in self.FIELDS} or None
        )
        if isinstance(body, str):
            data = body.encode()
        else:
            data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = dict(event.get("headers") or {})
        if not any(str(name).lower() == "content-type" for name in headers):
            headers["Content-Type"] = JSON
        return _request(
            event.get("method") or ("GET" if body is None else "POST"),
            event.get("route") or event["path"],
            headers,
            data,
        )

    def answer(self, response: Response) -> dict[str, Any]:
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": json.loads(response.body) if response.body else None,
        }


SHAPES: tuple[type[Shape], ...] = (Alb, HttpApiV2, ApiGatewayV1, Direct)


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"it has no {error.args[0]!r} field"
    if isinstance(error, MalformedEvent):
        return str(error)
    return "a field holds the wrong kind of value"


def embedded_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """A request's log record as an EMF document: the `_aws` member tells CloudWatch which
    members are metrics (duration, inputs, tokens, one request, errors) and which dimension
    (the route) they are kept by."""
    return {
        **record,
        "requests": 1,
        "errors": int(record["status"] >= 500),
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": [["route"]],
                    "Metrics": [
                        {"Name": "duration_ms", "Unit": "Milliseconds"},
                        {"Name": "inputs", "Unit": "Count"},
                        {"Name": "tokens", "Unit": "Count"},
                        {"Name": "requests", "Unit": "Count"},
                        {"Name": "errors", "Unit": "Count"},
                    ],
                }
            ],
        },
    }


SERVICE.log_format = embedded_metrics


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: the first shape that recognises the event reads and answers it.

    An event no shape knows gets a 400 in the direct-invocation format, since a caller of the
    Lambda API is the only one who can send one; a known shape whose fields cannot be read gets
    a 400 in its own format. Neither is ever a traceback.
    """
    shape_class = next(
        (shape for shape in SHAPES if isinstance(event, dict) and shape.infer(event)), None
    )
    if shape_class is None:
        return Direct(event).answer(error_response(400, "Validation", UNKNOWN_EVENT))
    shape = shape_class(event)
    try:
        request = shape.request
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        message = f"the {shape.name} event cannot be read: {_reason(error)}."
        return shape.answer(error_response(400, "Validation", message))
    # The id the invocation has in Lambda's own log lines (START/END/REPORT), for joining.
    request_id = getattr(context, "aws_request_id", None)
    return shape.answer(SERVICE.handle(replace(request, request_id=request_id)))
