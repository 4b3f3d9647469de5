"""/openapi.json states the running limits, and the validation agrees with what it states."""

from __future__ import annotations

import json

import pytest

from bertless import Predictor
from bertless.core.config import Config
from bertless.core.openapi import service_document
from bertless.core.service import Request, Service

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def small(minilm_bundle) -> Service:
    """The default bundle configured with small limits: 4 inputs, 1,000-byte bodies."""
    config = Config(
        max_batch_size=4, max_body_bytes=1000, auto_truncate=False, api_key=None, cors_origins=()
    )
    return Service(Predictor.load(minilm_bundle), config)


def status(service: Service, path: str, body: object) -> int:
    return service.handle(Request("POST", path, JSON, json.dumps(body).encode())).status


def test_the_document_states_the_configured_limits(small):
    document = small.handle(Request("GET", "/openapi.json")).json()
    schemas = document["components"]["schemas"]
    text, texts = schemas["EmbedRequest"]["properties"]["inputs"]["anyOf"]
    assert texts["maxItems"] == 4 and texts["items"]["maxLength"] == 1000
    assert text["maxLength"] == 1000
    assert schemas["SimilarityInputs"]["properties"]["sentences"]["maxItems"] == 4
    assert schemas["RerankRequest"]["properties"]["texts"]["maxItems"] == 4
    sizes = schemas["OpenAIEmbeddingRequest"]["properties"]["dimensions"]["anyOf"][0]
    assert sizes["enum"] == [384]  # MiniLM lists no Matryoshka sizes: only its own


def test_validation_agrees_with_the_limits(small):
    assert status(small, "/embed", {"inputs": ["x"] * 4}) == 200
    assert status(small, "/embed", {"inputs": ["x"] * 5}) == 413
    sentences = {"source_sentence": "s", "sentences": ["x"] * 4}  # the source comes on top
    assert status(small, "/similarity", {"inputs": sentences}) == 200
    assert status(small, "/rerank", {"query": "q", "texts": ["x"] * 4}) == 200
    assert status(small, "/rerank", {"query": "q", "texts": ["x"] * 5}) == 413


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"inputs": "x", "truncate": 0}, 422),  # a boolean is true or false
        ({"inputs": "x", "normalize": "yes"}, 422),
        ({"inputs": "x", "truncate": True}, 200),
        ({"inputs": "x", "dimensions": 384.0}, 200),  # JSON Schema's integer: no fraction
        ({"inputs": "x", "dimensions": "384"}, 422),
        ({"inputs": "x", "dimensions": 384.5}, 422),
    ],
)
def test_types_are_as_strict_as_the_document(small, body, expected):
    assert status(small, "/embed", body) == expected


def bounds_named_as_pydantic_does(schema: object) -> list[str]:
    """Keys of SCHEMA, at any depth, that are pydantic's names for bounds, not JSON Schema's."""
    if isinstance(schema, list):
        return [key for item in schema for key in bounds_named_as_pydantic_does(item)]
    if not isinstance(schema, dict):
        return []
    own = [key for key in schema if key in ("ge", "gt", "le", "lt")]
    return own + [key for value in schema.values() for key in bounds_named_as_pydantic_does(value)]


def test_bounds_are_in_json_schemas_words():
    """JSON Schema 2020-12 (validation vocabulary) names a lower bound `minimum`; a reader ignores
    `ge`, and schemathesis generated top_k 0 from it, which the service refuses."""
    config = Config(
        max_batch_size=4, max_body_bytes=1000, auto_truncate=False, api_key=None, cors_origins=()
    )
    document = service_document(None, config)  # no bundle: every route, the classifier's too

    assert bounds_named_as_pydantic_does(document) == []
    parameters = document["components"]["schemas"]["ClassificationParameters"]
    assert parameters["properties"]["top_k"]["anyOf"][0] == {"type": "integer", "minimum": 1}
