"""/openapi.json, generated from the msgspec schemas and the route table, never hand-written."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

import msgspec

from bertless.core import options
from bertless.core.bundle import Manifest
from bertless.core.config import Config
from bertless.core.routes import served
from bertless.core.schemas import LIMIT, schema_hook
from bertless.core.version import __version__ as VERSION

REF = "#/components/schemas/{name}"
ERROR_STATUSES = {
    "400": "Body is not JSON, not UTF-8, or not an object",
    "401": "Missing or wrong API key",
    "413": "Too many inputs, body too large, or an input too long with truncate false",
    "415": "Content type is not JSON",
    "422": "JSON that breaks the schema, or a value this bundle cannot serve (dimensions)",
    "424": "The route does not fit the bundle's task",
    "500": "Unexpected error",
}


# What each limit marker of the schemas becomes: inputs per request, characters per text, and
# the vector sizes the bundle gives.
LIMIT_KEYS = {"inputs": "maxItems", "text": "maxLength", "dimensions": "enum"}


def _limited(schema: Any, limits: Mapping[str, Any]) -> Any:
    """SCHEMA with every limit marker replaced by its configured figure."""
    if isinstance(schema, list):
        return [_limited(item, limits) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _limited(value, limits) for key, value in schema.items() if key != LIMIT}
    if limits.get(schema.get(LIMIT)) is not None:  # None: unknown (no bundle), no limit said
        out[LIMIT_KEYS[schema[LIMIT]]] = limits[schema[LIMIT]]
    return out


def _members(kind: Any) -> tuple[Any, ...]:
    """The types of a union, or KIND alone. msgspec documents no union of two Structs (untagged)
    or of two list types, so the document states such a union itself, as anyOf its members."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def _schemas(kinds: list[Any]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The schema of each of KINDS, and the components their references name."""
    members = list(dict.fromkeys(m for kind in kinds for m in _members(kind)))
    found, components = msgspec.json.schema_components(
        members, schema_hook=schema_hook, ref_template=REF
    )
    by_member = dict(zip(members, found, strict=True))
    schemas = {}
    for kind in kinds:
        parts = [by_member[m] for m in _members(kind)]
        schemas[kind] = parts[0] if len(parts) == 1 else {"anyOf": parts}
    return schemas, components


def openapi_document(
    routes: list[tuple[str, str, str, Any, Any, Any]],
    title: str,
    version: str,
    limits: Mapping[str, Any],
) -> dict:
    """Routes are (method, path, summary, request type or None, response type, error body
    type); `limits` gives the running configuration's value for each marker in LIMIT_KEYS."""
    schema, components = _schemas([k for route in routes for k in route[3:] if k is not None])
    paths: dict[str, dict] = {}
    for method, path, summary, request, response, error_body in routes:
        error = {"content": {"application/json": {"schema": schema[error_body]}}}
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": schema[response]}},
                },
                **{
                    status: {"description": text, **error}
                    for status, text in ERROR_STATUSES.items()
                },
            },
        }
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema[request]}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    document = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return _limited(document, limits)


def service_document(manifest: Manifest | None, config: Config) -> dict:
    """The document of a service: the routes its bundle serves (all of them when it failed to
    load) and the limits of its running configuration."""
    limits = {
        "inputs": config.max_batch_size,
        "text": config.max_body_bytes,
        "dimensions": options.dimension_sizes(manifest) if manifest else None,
    }
    routes = [
        (r.method, r.path, r.summary, r.request, r.response, r.error) for r in served(manifest)
    ]
    return openapi_document(routes, "bertless", VERSION, limits)
