"""The HTTP exchange without a web framework: `Request`, `Response`, the errors of the exchange
itself, and the one way a value or an error becomes JSON bytes.

Kept apart from `service` so that the rules of the contract (routing, limits, the work) read on
their own, and adapters build responses with the same encoder the service uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from bertless.core.errors import BertlessError, InputError
from bertless.core.schemas import built

JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """A platform-neutral HTTP request; header names are matched case-insensitively."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # The platform's id of this invocation (Lambda's aws_request_id, Cloud Run's trace, Azure's
    # invocation id), which the request's log line carries so the two can be joined.
    request_id: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(BertlessError):
    """A failure of the HTTP exchange itself (route, method, media type, auth, JSON syntax)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = "Validation"
        self.headers = headers or {}


class WrongTaskError(BertlessError):
    status = 424
    error_type = "Validation"


def dumps(value: Any) -> bytes:
    """Compact JSON; a NaN or infinity is an error, because JSON cannot carry it."""
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except ValueError:
        raise BertlessError(
            "the model produced a value JSON cannot carry (NaN or infinity)."
        ) from None


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = dumps({"error": message, "error_type": error_type})
    return Response(status, {"Content-Type": JSON, **(headers or {})}, body)


def openai_error(response: Response) -> Response:
    """An error response of the contract in the OpenAI route's shape (schemas.OpenAIErrorBody)."""
    error = response.json()
    body = {"message": error["error"], "code": response.status, "type": error["error_type"]}
    return Response(response.status, response.headers, dumps(body))


def validate(data: dict, model: type[BaseModel]) -> BaseModel:
    """DATA as MODEL, or an error whose one sentence names the field at fault."""
    try:
        return built(model).model_validate(data)
    except ValidationError as error:
        raise InputError(_validation_message(error)) from None
    except RecursionError:
        raise HttpError(400, "the body is nested too deeply.") from None


def _validation_message(error: ValidationError) -> str:
    """One sentence from pydantic's report: the most specific problem, named by its field path.

    For a union (`inputs` may be a text or a list) pydantic reports one error per member; the
    deepest location is the one the client meant, and the member tags are noise to a client.
    """
    problems = error.errors()
    # Deepest first; among equals, a broken rule (too short) over a type the client didn't mean.
    first = max(problems, key=lambda p: (len(p["loc"]), not p["type"].endswith("_type")))
    where = ".".join(str(p) for p in first["loc"] if not _is_union_tag(p)) or "body"
    return f"{where}: {first['msg']}."


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or "-" in part)
