"""The HTTP exchange without a web framework: `Request`, `Response`, the errors of the exchange
itself, the one way a value or an error becomes JSON bytes, and the one way JSON bytes become a
validated request (`decode`: msgspec parses and validates in one pass; a refusal is one sentence
naming the field, in the contract's words whatever msgspec's are).

Kept apart from `service` so that the rules of the contract (routing, limits, the work) read on
their own, and adapters build responses with the same encoder the service uses.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from bertless.core import schemas
from bertless.core.errors import BertlessError, InputError

JSON = "application/json"
T = TypeVar("T")


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


_encoder = msgspec.json.Encoder()


def dumps(value: Any) -> bytes:
    """Compact JSON, by msgspec: a vector of 384 floats took 160 us with the standard library's
    encoder and 12 us with msgspec's, on every embedding answer.

    msgspec writes a NaN or an infinity as null, so none may reach here: the predictor refuses
    a model's non-finite values (BackendError) before anything is computed from them."""
    return _encoder.encode(value)


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


def parse(body: bytes) -> dict:
    """BODY as a JSON object, or the 400 that says why it is not one."""
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise _not_json(body, error) from None
    if not isinstance(data, dict):
        raise HttpError(400, f"the body must be a JSON object, not a JSON {_json_name(data)}.")
    return data


def decode(body: bytes, kind: type[T]) -> T:
    """BODY, JSON bytes, as KIND in one pass (msgspec parses and validates together), or an
    error: 400 when it is not a JSON object, else 422 with one sentence naming the field."""
    try:
        return _decoder(kind).decode(body)
    except msgspec.ValidationError as error:  # before DecodeError, its base class
        # The slow path of a refused body: msgspec stops at the first wrong value, so parsing
        # the body whole says whether it is JSON at all (400 before 422), and gives the value.
        raise _refusal(error, kind, parse(body)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        # msgspec raises all three; RecursionError even in a field the schema skips.
        raise _not_json(body, error) from None


def convert(data: dict, kind: type[T]) -> T:
    """DATA, a parsed JSON object, as KIND (the root route, which picks KIND from DATA)."""
    try:
        return msgspec.convert(data, kind, dec_hook=schemas.decode_hook)
    except msgspec.ValidationError as error:
        raise _refusal(error, kind, data) from None


@functools.cache
def _decoder(kind: type) -> msgspec.json.Decoder:
    """One decoder per request shape, made at its first request: a cold start makes one."""
    return msgspec.json.Decoder(kind, dec_hook=schemas.decode_hook)


def _not_json(body: bytes, error: Exception) -> HttpError:
    if isinstance(error, RecursionError):
        return HttpError(400, "the body is nested too deeply.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return HttpError(400, "the body is not UTF-8 text.")
    return HttpError(400, "the body is not valid JSON.")


def _refusal(error: msgspec.ValidationError, kind: type, data: dict) -> InputError:
    """The 422 of DATA, refused as KIND: a field's own refusal sentence (schemas' `refusals`)
    where it has one for the value, else msgspec's report in the contract's words."""
    what, path = _split(str(error))
    refusal = kind.refusals.get(path[0]) if path else None
    sentence = refusal(data.get(path[0])) if refusal else None
    if sentence:
        path = path[:1]
    where = ".".join(str(p) for p in path) or "body"
    return InputError(f"{where}: {sentence or _sentence(what, kind, path)}.")


def _split(message: str) -> tuple[str, list[str | int]]:
    """msgspec's message as (what, field path): "Expected `str`, got `int` - at `$.inputs[0]`"
    is ("Expected `str`, got `int`", ["inputs", 0]). A value read by schemas.decode_hook says
    its own path inside the field first: "... - at `$[1][0]` - at `$.inputs`"."""
    what, *wheres = message.split(" - at `")
    path: list[str | int] = []
    for where in reversed(wheres):
        for name, index in re.findall(r"\.([^.\[`]+)|\[(\d+)\]", where):
            path.append(name or int(index))
    missing = re.fullmatch(r"Object missing required field `(.+)`", what)
    if missing:
        return "Field required", [*path, missing.group(1)]
    return what, path


# msgspec's names of JSON types, as a client reads them.
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "an object",
}


def _sentence(what: str, kind: type, path: list[str | int]) -> str:
    """msgspec's description of a problem in the contract's words."""
    if match := re.fullmatch(r"Expected `(\w+)` of length ([<>])= (\d+)", what):
        noun = {"str": "String", "array": "List"}.get(match[1], "Value")
        unit = {"str": "character", "array": "item"}.get(match[1], "item")
        bound = "at least" if match[2] == ">" else "at most"
        return f"{noun} should have {bound} {match[3]} {unit}{'' if match[3] == '1' else 's'}"
    if match := re.fullmatch(r"Expected `int` >= (-?\d+)", what):
        return f"Input should be greater than or equal to {match[1]}"
    if match := re.fullmatch(r"Expected `([\w |]+)`, got `(\w+)`", what):
        expected = [_TYPE_WORDS.get(t, t) for t in match[1].split(" | ")]
        wanted = ", ".join(expected[:-1]) + " or " + expected[-1] if expected[1:] else expected[0]
        return f"Input should be {wanted}, not {_TYPE_WORDS.get(match[2], match[2])}"
    if what.startswith("Invalid enum value"):
        values = _literal_values(kind, path)
        if values:
            return "Input should be " + " or ".join(repr(v) for v in values)
    return what


def _literal_values(kind: type, path: list[str | int]) -> list[Any]:
    """The values a Literal field at PATH of KIND takes, for the sentence that lists them."""
    mi = msgspec.inspect
    node: Any = mi.type_info(kind)
    for part in path:
        while isinstance(node, mi.Metadata):
            node = node.type
        if isinstance(node, mi.UnionType):
            node = next(t for t in node.types if not isinstance(t, mi.NoneType))
        if isinstance(node, mi.StructType) and isinstance(part, str):
            node = next((f.type for f in node.fields if f.encode_name == part), None)
        else:
            return []
    while isinstance(node, mi.Metadata):
        node = node.type
    types = node.types if isinstance(node, mi.UnionType) else (node,)
    return [v for t in types if isinstance(t, mi.LiteralType) for v in t.values]


def _json_name(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null"
    )
