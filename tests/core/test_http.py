"""Reading a request body: one pass of msgspec, the contract's sentences, and a document that
says exactly what the validation takes (checked against an independent JSON Schema validator)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from bertless.core import schemas
from bertless.core.config import Config
from bertless.core.errors import InputError
from bertless.core.http import HttpError, convert, decode
from bertless.core.openapi import service_document


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("kind", "sent", "status", "sentence"),
    [
        (schemas.EmbedRequest, {"inputs": ["ok", ""]}, 422, "inputs.1: String should have at "
         "least 1 character."),
        (schemas.EmbedRequest, {"text": "x"}, 422, "inputs: Field required."),
        (schemas.EmbedRequest, {"inputs": []}, 422, "inputs: List should have at least 1 item."),
        (schemas.EmbedRequest, {"inputs": "x", "truncate": 0}, 422, "truncate: Input should be "
         "a boolean or null, not an integer."),
        (schemas.EmbedRequest, {"inputs": "x", "dimensions": 8.5}, 422, "dimensions: Input "
         "should be an integer, not a number."),
        (schemas.EmbedRequest, {"inputs": "x", "prompt_name": "query"}, 422, "prompt_name: a "
         "bundle has no named prompts, put the prompt before the text."),
        (schemas.EmbedRequest, {"inputs": "x", "truncation_direction": "left"}, 422,
         "truncation_direction: long texts are cut at the end only (Right), not at the start."),
        (schemas.EmbedRequest, {"inputs": "x", "truncation_direction": "Up"}, 422,
         "truncation_direction: Input should be 'Right' or 'right'."),
        # Inside a value read by the decode hook, the path goes on into the value.
        (schemas.PredictRequest, {"inputs": [["a"], ["b", ""]]}, 422,
         "inputs.1.1: String should have at least 1 character."),
        (schemas.PredictRequest, {"inputs": [["a", "b", "c"]]}, 422,
         "inputs.0: List should have at most 2 items."),
        (schemas.PredictRequest, {"inputs": ["a", ["b"]]}, 422,
         "inputs.1: Input should be a string, not a list."),
        (schemas.PredictRequest, {"inputs": "x", "parameters": {"top_k": 0}}, 422,
         "parameters.top_k: Input should be greater than or equal to 1."),
        (schemas.SimilarityRequest, {"inputs": {"sentences": ["a"]}}, 422,
         "inputs.source_sentence: Field required."),
        (schemas.OpenAIEmbeddingRequest, {"input": [[101, 2023], [102]]}, 422,
         "input: token ids are not accepted, send the texts (LangChain's OpenAIEmbeddings: set "
         "check_embedding_ctx_length=False)."),
        (schemas.OpenAIEmbeddingRequest, {"input": "x", "encoding_format": "int8"}, 422,
         "encoding_format: Input should be 'base64' or 'float'."),
        # Not JSON is 400 even where msgspec met a wrong value before the broken part.
        (schemas.EmbedRequest, b'{"inputs": 3, oops', 400, "the body is not valid JSON."),
        (schemas.EmbedRequest, b'{"inputs": "\xff"}', 400, "the body is not UTF-8 text."),
        (schemas.EmbedRequest, b'["x"]', 400, "the body must be a JSON object, not a JSON list."),
    ],
)  # fmt: skip
def test_a_refused_body_gets_one_sentence_naming_its_field(kind, sent, status, sentence):
    with pytest.raises((InputError, HttpError)) as raised:
        decode(sent if isinstance(sent, bytes) else body(sent), kind)
    assert (raised.value.status, str(raised.value)) == (status, sentence)


@pytest.mark.parametrize(
    ("inputs", "single", "items"),
    [
        ("x", True, ["x"]),
        (["a", "b"], True, [("a", "b")]),  # exactly two texts: one pair, as in TEI
        (["a"], False, ["a"]),
        (["a", "b", "c"], False, ["a", "b", "c"]),
        ([["a"], ["b", "c"]], False, ["a", ("b", "c")]),
    ],
)
def test_predict_inputs_read_as_tei_reads_them(inputs, single, items):
    got = decode(body({"inputs": inputs}), schemas.PredictRequest).inputs
    assert (got.single, got.items) == (single, items)


def test_integers_written_with_a_zero_fraction_are_integers():
    request = decode(body({"inputs": "x", "dimensions": 8.0}), schemas.EmbedRequest)
    assert request.dimensions == 8 and isinstance(request.dimensions, int)
    request = decode(body({"inputs": "x", "parameters": {"top_k": 2.0}}), schemas.PredictRequest)
    assert request.parameters.top_k == 2


# Bodies at the edges of every rule, for each request shape: the document must accept exactly
# those the service accepts.
EDGES = {
    schemas.EmbedRequest: [
        {"inputs": "x"},
        {"inputs": ["x", "y"]},
        {"inputs": []},
        {"inputs": ""},
        {"inputs": ["x", ""]},
        {"inputs": 3},
        {"inputs": "x", "normalize": False, "truncate": None},
        {"inputs": "x", "truncate": 0},
        {"inputs": "x", "normalize": "yes"},
        {"inputs": "x", "dimensions": 8},
        {"inputs": "x", "dimensions": 8.0},
        {"inputs": "x", "dimensions": 8.5},
        {"inputs": "x", "dimensions": "8"},
        {"inputs": "x", "dimensions": True},
        {"inputs": "x", "prompt_name": None},
        {"inputs": "x", "prompt_name": "query"},
        {"inputs": "x", "truncation_direction": "Right"},
        {"inputs": "x", "truncation_direction": "Left"},
        {"inputs": "x", "something_new": [1, 2]},
        {"text": "x"},
    ],
    schemas.PredictRequest: [
        {"inputs": "x"},
        {"inputs": ["a", "b"]},
        {"inputs": ["a", "b", "c"]},
        {"inputs": [["a"], ["b", "c"]]},
        {"inputs": [["a", "b", "c"]]},
        {"inputs": [[]]},
        {"inputs": [["a"], "b"]},
        {"inputs": ["a", ["b"]]},
        {"inputs": [["a", ""]]},
        {"inputs": "x", "raw_scores": 1},
        {"inputs": "x", "parameters": {"top_k": 1}},
        {"inputs": "x", "parameters": {"top_k": 1.0}},
        {"inputs": "x", "parameters": {"top_k": 0}},
        {"inputs": "x", "parameters": {"function_to_apply": "none"}},
        {"inputs": "x", "parameters": {"function_to_apply": "tanh"}},
        {"inputs": "x", "parameters": None},
    ],
    schemas.SimilarityRequest: [
        {"inputs": {"source_sentence": "a", "sentences": ["b"]}},
        {"inputs": {"source_sentence": "a", "sentences": []}},
        {"inputs": {"source_sentence": "", "sentences": ["b"]}},
        {"inputs": {"sentences": ["b"]}},
        {"inputs": "a"},
    ],
    schemas.RerankRequest: [
        {"query": "q", "texts": ["a"], "return_text": True},
        {"query": "q", "texts": []},
        {"query": "q", "texts": ["a"], "raw_scores": "no"},
    ],
    schemas.OpenAIEmbeddingRequest: [
        {"input": "x", "model": "m", "encoding_format": "base64", "dimensions": 8},
        {"input": ["x"], "model": None},
        {"input": [1, 2]},
        {"input": "x", "encoding_format": "int8"},
        {"input": "x", "model": 3},
    ],
}


def refusal(sent: dict, kind: type, parsed: bool = False) -> str | None:
    """Why SENT is refused as KIND, or None; `parsed`: read from parsed JSON, as the root does."""
    try:
        convert(sent, kind) if parsed else decode(body(sent), kind)
    except InputError as error:
        return str(error)
    return None


@pytest.mark.parametrize("kind", list(EDGES), ids=lambda kind: kind.__name__)
def test_the_root_routes_reading_of_parsed_json_says_the_same(kind):
    """The root route parses first to pick the shape, then converts: same answers as decode."""
    for sent in EDGES[kind]:
        assert refusal(sent, kind, parsed=True) == refusal(sent, kind)


@pytest.mark.parametrize("kind", list(EDGES), ids=lambda kind: kind.__name__)
def test_the_document_accepts_exactly_what_the_validation_accepts(kind):
    config = Config(
        max_batch_size=32, max_body_bytes=10_000, auto_truncate=True, api_key=None, cors_origins=()
    )
    document = service_document(None, config)
    schema = {"$ref": f"#/components/schemas/{kind.__name__}", **document}
    validator = jsonschema.Draft202012Validator(schema)
    disagree = [s for s in EDGES[kind] if validator.is_valid(s) != (refusal(s, kind) is None)]
    assert disagree == []
