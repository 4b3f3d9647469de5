"""/openapi.json, generated from the pydantic schemas and the route table, never hand-written."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from bertless.core.schemas import ErrorBody

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "Body is not JSON, not UTF-8, or not an object",
    "401": "Missing or wrong API key",
    "413": "Too many inputs, body too large, or an input too long with truncate false",
    "415": "Content type is not JSON",
    "422": "JSON that breaks the schema",
    "424": "The route does not fit the bundle's task",
    "500": "Unexpected error",
}


def _schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(kind).json_schema(ref_template=REF, mode="serialization")
    components.update(schema.pop("$defs", {}))
    name = getattr(kind, "__name__", None)
    if name and schema.get("type") == "object" and "title" in schema:
        components[name] = schema
        return {"$ref": REF.format(model=name)}
    return schema


def openapi_document(
    routes: list[tuple[str, str, str, Any, Any]], title: str, version: str
) -> dict:
    """Routes are (method, path, summary, request type or None, response type)."""
    components: dict[str, Any] = {}
    error = {"content": {"application/json": {"schema": _schema(ErrorBody, components)}}}
    paths: dict[str, dict] = {}
    for method, path, summary, request, response in routes:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": _schema(response, components)}},
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
                "content": {"application/json": {"schema": _schema(request, components)}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
