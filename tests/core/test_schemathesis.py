"""Property-based: schemathesis generates requests from /openapi.json against the running server.

It looks for 5xx answers, answers that break the documented schema, and status codes or content
types the document does not list; the test adds: no traceback in any body. (Schemathesis's
pytest plugin does not load under pytest 9, so the operations are driven from hypothesis here.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


# A schema-valid body may still carry more inputs than the batch limit or a text longer than the
# model takes: the contract answers those 413, so the positive-data check counts 413 as expected.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "413"]}}}
)


def test_every_check_is_on():
    """`--checks all`: every check schemathesis has runs, but the timing one, which needs a
    limit and would make the test timed."""
    checks = CONFIG.projects.default.checks
    names = [name for name in dir(checks) if hasattr(getattr(checks, name), "enabled")]
    assert len(names) >= 14  # schemathesis 4.x has 15
    assert {n for n in names if not getattr(checks, n).enabled} == {"max_response_time"}


def fuzz_every_operation(base_url: str) -> list[str]:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=CONFIG)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def check(case) -> None:
            response = case.call_and_validate()
            assert "Traceback" not in response.text

        check()
        checked.append(operation.label)
    return checked


@pytest.mark.parametrize("server", ["embed_server", "classify_server"])
def test_server_keeps_its_contract_under_generated_requests(server, request):
    checked = fuzz_every_operation(request.getfixturevalue(server))
    assert {"POST /", "GET /info", "GET /health"} <= set(checked)
