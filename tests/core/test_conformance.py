"""Every case of the contract through every adapter: the same status, headers and body bytes.

The reference is the local server (`bertless serve`, over HTTP). The GCP function runs
in-process in a Flask request context; the AWS handler gets every documented event shape; the
Azure function is found in the real FunctionApp's registry and called with a real HttpRequest.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from conformance import (
    AWS_SHAPES,
    CASE,
    CASES,
    Answer,
    Case,
    answer,
    assert_meets,
    assert_same,
    aws_caller,
    call_azure,
    call_direct,
    call_gcp,
)

from bertless.core.service import Request

ADAPTERS: dict[str, Callable[[SimpleNamespace, Request], Answer]] = {
    "gcp": call_gcp,
    "azure": call_azure,
    **{f"aws-{shape}": aws_caller(shape) for shape in AWS_SHAPES},
    "aws-direct": call_direct,
}


def _applies(adapter: str, case: Case) -> bool:
    """A direct invocation is JSON, so it cannot carry a body that is not UTF-8."""
    if adapter != "aws-direct":
        return True
    try:
        case.request.body.decode()
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="session")
def reference(embed_server: str, classify_server: str) -> Callable[[Case], Answer]:
    """The local server's answer to a case, asked once per case."""
    answers: dict[str, Answer] = {}
    servers = {"embed": embed_server, "classify": classify_server}

    def ask(case: Case) -> Answer:
        if case.name not in answers:
            url = urlsplit(servers[case.bundle])
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            request = case.request
            connection.request(request.method, request.path, request.body, dict(request.headers))
            response = connection.getresponse()
            answers[case.name] = answer(
                response.status, dict(response.getheaders()), response.read()
            )
            connection.close()
        return answers[case.name]

    return ask


@pytest.fixture
def serving(adapters: SimpleNamespace, classifier_service, monkeypatch) -> Callable[[Case], None]:
    """Points every adapter at the case's bundle: the embedding one they loaded at import, or the
    shared classifier service patched into their SERVICE."""

    def serve(case: Case) -> None:
        if case.bundle == "classify":
            for module in vars(adapters).values():
                monkeypatch.setattr(module, "SERVICE", classifier_service)

    return serve


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_local_server_meets_the_contract(case: Case, reference) -> None:
    assert_meets(case, reference(case))


@pytest.mark.parametrize(
    ("adapter", "case"),
    [(name, case) for case in CASES for name in ADAPTERS if _applies(name, case)],
    ids=lambda value: value.name if isinstance(value, Case) else value,
)
def test_adapter_answers_exactly_as_the_local_server(
    adapter: str, case: Case, adapters, serving, reference
) -> None:
    serving(case)
    assert_same(reference(case), ADAPTERS[adapter](adapters, case.request))


# -- the suite can fail -------------------------------------------------------------------------


def _drops_content_type(got: Answer) -> Answer:
    return Answer(
        got.status, {k: v for k, v in got.headers.items() if k != "content-type"}, got.body
    )


def _answers_200(got: Answer) -> Answer:
    return Answer(200, got.headers, got.body)


@pytest.fixture(params=[_drops_content_type, _answers_200], ids=["drops a header", "200 for 404"])
def broken_gcp(request) -> Callable[[SimpleNamespace, Request], Answer]:
    """The GCP adapter, deliberately broken after it answers."""
    return lambda adapters, req: request.param(call_gcp(adapters, req))


def test_comparison_fails_for_a_broken_adapter(adapters, reference, broken_gcp) -> None:
    case = CASE["unknown route 404"]
    assert_same(reference(case), call_gcp(adapters, case.request))
    with pytest.raises(AssertionError):
        assert_same(reference(case), broken_gcp(adapters, case.request))


def test_comparison_fails_for_one_changed_body_byte(adapters, reference) -> None:
    case = CASE["embed one text"]
    got = call_gcp(adapters, case.request)
    with pytest.raises(AssertionError):
        assert_same(reference(case), Answer(got.status, got.headers, got.body[:-2] + b"0]"))


def test_adapters_loaded_their_bundle_at_import(adapters, minilm_bundle) -> None:
    for module in (adapters.aws, adapters.gcp, adapters.azure):
        assert module.SERVICE.predictor.bundle.path.resolve() == minilm_bundle.resolve()
