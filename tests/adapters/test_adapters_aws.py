"""The AWS handler on real event documents: which shape reads an event, where the route is in it,
the shapes' own answer formats, direct invocation, and events that cannot be read."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from conformance import EVENTS, aws_answer, aws_event, get, post

EMBED = post("/embed", {"inputs": "hello"})
SHAPE_OF = {
    "apigw_v1": "ApiGatewayV1",
    "http_api_v1": "ApiGatewayV1",
    "http_api_v2": "HttpApiV2",
    "function_url": "HttpApiV2",
    "alb": "Alb",
    "alb_multi": "Alb",
}


def document(shape: str) -> dict:
    return json.loads((EVENTS / f"{shape}.json").read_text())


def error_of(result: dict) -> dict:
    body = result["body"]
    return body if isinstance(body, dict) else json.loads(body)


@pytest.mark.parametrize("shape", SHAPE_OF)
def test_each_documented_event_is_read_by_its_own_shape(adapters, shape: str) -> None:
    event = document(shape)
    assert [s.__name__ for s in adapters.aws.SHAPES if s.infer(event)] == [SHAPE_OF[shape]]


@pytest.mark.parametrize("shape", SHAPE_OF)
def test_the_documentations_own_sample_gets_a_contract_answer(adapters, shape: str) -> None:
    """They ask for /my/path, /hello/world or / with text bodies: 404 or 405, never a crash."""
    result = adapters.aws.handler(document(shape), None)
    assert result["statusCode"] in (404, 405)
    assert error_of(result)["error_type"] == "Validation"


def test_rest_api_path_has_no_stage_even_when_the_stage_looks_like_a_route(adapters) -> None:
    """On the execute-api host, a stage named v1 is in requestContext.path but not in path."""
    event = aws_event("apigw_v1", post("/v1/embeddings", {"input": "hi"}), stage="v1")
    assert (event["path"], event["requestContext"]["path"]) == (
        "/v1/embeddings",
        "/v1/v1/embeddings",
    )
    assert adapters.aws.handler(event, None)["statusCode"] == 200


def test_rest_api_custom_domain_with_the_stage_as_base_path_is_stripped(adapters) -> None:
    event = aws_event("apigw_v1", get("/health"), stage="prod")
    event["path"] = event["requestContext"]["path"] = "/prod/health"
    assert adapters.aws.handler(event, None)["statusCode"] == 200


@pytest.mark.parametrize("shape", ["http_api_v1", "http_api_v2"])
def test_http_api_named_stage_is_stripped_from_the_path(adapters, shape: str) -> None:
    event = aws_event(shape, get("/health"), stage="prod")
    assert "/prod/health" in (event.get("path"), event.get("rawPath"))
    assert adapters.aws.handler(event, None)["statusCode"] == 200


def test_http_api_default_stage_route_is_the_raw_path(adapters) -> None:
    event = aws_event("http_api_v2", get("/v1/embeddings"), stage="$default")
    assert event["rawPath"] == "/v1/embeddings"
    assert adapters.aws.handler(event, None)["statusCode"] == 405


@pytest.mark.parametrize("shape", ["apigw_v1", "alb", "alb_multi"])
def test_base_path_of_a_custom_domain_is_stripped(adapters, monkeypatch, shape: str) -> None:
    monkeypatch.setattr(adapters.aws, "BASE_PATH", "/bertless")
    event = aws_event(shape, get("/bertless/health"))
    assert adapters.aws.handler(event, None)["statusCode"] == 200
    event = aws_event(shape, get("/bertlessx/health"))  # whole segments only
    assert adapters.aws.handler(event, None)["statusCode"] == 404


@pytest.mark.parametrize("shape", ["apigw_v1", "function_url", "alb"])
def test_a_base64_body_gives_the_same_answer_as_plain_text(adapters, shape: str) -> None:
    plain = aws_event(shape, EMBED)
    encoded = copy.deepcopy(plain)
    encoded.update(body=base64.b64encode(EMBED.body).decode(), isBase64Encoded=True)
    assert aws_answer(adapters.aws.handler(encoded, None)) == aws_answer(
        adapters.aws.handler(plain, None)
    )


def test_header_names_are_matched_whatever_their_case(adapters) -> None:
    event = aws_event("apigw_v1", EMBED)
    for key in ("headers", "multiValueHeaders"):
        event[key]["CONTENT-TYPE"] = event[key].pop("Content-Type")
    assert adapters.aws.handler(event, None)["statusCode"] == 200


def test_query_strings_are_not_part_of_the_route(adapters) -> None:
    event = aws_event("function_url", get("/health"))
    assert event["rawQueryString"] and event["queryStringParameters"]
    assert adapters.aws.handler(event, None)["statusCode"] == 200


def test_http_api_cookies_are_a_cookie_header_again(adapters) -> None:
    request = adapters.aws.HttpApiV2(aws_event("http_api_v2", get("/health"))).request
    assert request.header("Cookie") == "cookie1; cookie2"


def test_alb_multi_value_cookies_are_joined_as_one_cookie_header(adapters) -> None:
    request = adapters.aws.Alb(aws_event("alb_multi", get("/health"))).request
    assert request.header("cookie") == "name1=value1; name2=value2"


def test_alb_answers_in_the_header_form_it_was_asked_in(adapters) -> None:
    single = adapters.aws.handler(aws_event("alb", get("/health")), None)
    multi = adapters.aws.handler(aws_event("alb_multi", get("/health")), None)
    assert single["headers"]["Content-Type"] == "application/json"
    assert "multiValueHeaders" not in single
    assert multi["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert "headers" not in multi
    assert single["statusDescription"] == multi["statusDescription"] == "200 OK"


def test_proxy_answers_carry_text_bodies_unencoded(adapters) -> None:
    result = adapters.aws.handler(aws_event("http_api_v2", EMBED), None)
    assert result["isBase64Encoded"] is False
    assert len(json.loads(result["body"])[0]) == 384


# -- direct invocation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"path": "/embed", "body": {"inputs": "hello"}},
        {"route": "/embed", "inputs": "hello"},
        {"path": "/embed", "body": '{"inputs": "hello"}'},
        {"method": "POST", "path": "/embed", "inputs": "hello", "headers": {}},
    ],
    ids=["path and body", "route and fields", "body as JSON text", "explicit method"],
)
def test_direct_invocation_forms_are_the_same_request(adapters, event: dict) -> None:
    expected = adapters.aws.SERVICE.handle(EMBED)
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "application/json"
    assert result["body"] == json.loads(expected.body)


@pytest.mark.parametrize("event", [{"method": "GET", "path": "/info"}, {"route": "/info"}])
def test_direct_invocation_without_a_body_is_a_get(adapters, event: dict) -> None:
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 200
    assert result["body"]["task"] == "feature-extraction"


def test_direct_invocation_errors_are_answers_not_exceptions(adapters) -> None:
    result = adapters.aws.handler({"route": "/embed", "inputs": []}, None)
    assert result["statusCode"] == 422
    assert result["body"]["error_type"] == "Validation"


# -- events that cannot be read -----------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [{"hello": "world"}, {}, [1, 2], "embed this", None, {"version": "2.0", "rawPath": "/embed"}],
    ids=["unknown keys", "empty", "a list", "a string", "null", "v2 without requestContext"],
)
def test_an_event_of_no_known_shape_is_a_400_contract_error(adapters, event) -> None:
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 400
    assert result["headers"]["Content-Type"] == "application/json"
    assert result["body"]["error_type"] == "Validation"
    assert "directly" in result["body"]["error"]


@pytest.mark.parametrize("shape", ["apigw_v1", "http_api_v2", "alb"])
@pytest.mark.parametrize("body", ["missing", None, ""], ids=["no body", "body null", "empty"])
def test_a_post_without_a_body_is_the_contracts_400(adapters, shape: str, body) -> None:
    event = aws_event(shape, EMBED)
    event.pop("body")
    if body != "missing":
        event["body"] = body
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 400
    assert error_of(result) == {"error": "the body is not valid JSON.", "error_type": "Validation"}


@pytest.mark.parametrize("shape", ["apigw_v1", "function_url", "alb_multi"])
def test_a_body_marked_base64_that_is_not_is_a_400_in_the_events_format(adapters, shape) -> None:
    event = aws_event(shape, EMBED)
    event["isBase64Encoded"] = True  # '{"inputs": "hello"}' is not base64
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 400
    assert isinstance(result["body"], str)  # the shape's own format, not the direct one
    assert "base64" in error_of(result)["error"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("path", None, "no 'path' field"),
        ("headers", ["Content-Type: application/json"], "wrong kind of value"),
        ("headers", {"Content-Type": 1}, "must be text"),
        ("httpMethod", 5, "must be text"),
        ("body", {"inputs": "hello"}, "wrong kind of value"),
    ],
)
def test_a_malformed_api_gateway_event_is_a_400(adapters, field, value, reason) -> None:
    event = aws_event("apigw_v1", EMBED)
    event.pop("multiValueHeaders")
    if value is None:
        event.pop(field)
    else:
        event[field] = value
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 400
    assert reason in error_of(result)["error"]


@pytest.mark.parametrize(
    "event",
    [
        {"path": 5},
        {"path": "/embed", "method": ["POST"], "body": {}},
        {"path": "/embed", "headers": {"Authorization": 1}, "body": {}},
        {"path": "/embed", "headers": "Content-Type: application/json", "body": {}},
        {"path": "/embed", "body": "\udc80"},
    ],
    ids=["path", "method", "header value", "headers", "unencodable text"],
)
def test_a_direct_event_with_fields_of_the_wrong_kind_is_a_400(adapters, event: dict) -> None:
    result = adapters.aws.handler(event, None)
    assert result["statusCode"] == 400
    assert result["body"]["error"].startswith("the direct invocation event cannot be read")
