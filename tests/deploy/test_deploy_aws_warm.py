"""`bertless deploy aws --snapstart / --provisioned N` against moto's server mode.

moto 5.2.5 keeps no SnapStart setting (it always answers ApplyOn "None"), so the SnapStart test
reads the request bertless sent. moto has no provisioned-concurrency API at all: its two calls are
answered by a recording stand-in (a botocore before-send hook on the deploy's session) that gives
Lambda's documented answer and keeps what it was sent; every other call goes to moto.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from test_deploy_aws import REGION, aws_env, target, versions  # noqa: F401 (aws_env: a fixture)

from bertless.deploy import aws
from bertless.deploy.plan import Apply, PreflightError, deploy

PROVISIONED = ("GetProvisionedConcurrencyConfig", "PutProvisionedConcurrencyConfig")


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self):
        yield self.data


class ProvisionedStandIn:
    """Stands in for Lambda's provisioned-concurrency calls, which moto lacks; says so by name."""

    def __init__(self):
        self.sent: list[tuple[str, str, dict]] = []  # (operation, url, body)
        self.requested: int | None = None

    def __call__(self, request, event_name, **_):
        name = event_name.rsplit(".", 1)[-1]
        if name not in PROVISIONED:
            return None  # to moto
        body = json.loads(request.body or b"{}")
        self.sent.append((name, request.url, body))
        if name == "PutProvisionedConcurrencyConfig":
            self.requested = body["ProvisionedConcurrentExecutions"]
        if self.requested is None:
            error = {"Type": "User", "message": "No Provisioned Concurrency Config found"}
            headers = {"x-amzn-ErrorType": "ProvisionedConcurrencyConfigNotFoundException"}
            return AWSResponse(request.url, 404, headers, _Body(json.dumps(error).encode()))
        answer = {
            "RequestedProvisionedConcurrentExecutions": self.requested,
            "AvailableProvisionedConcurrentExecutions": 0,
            "AllocatedProvisionedConcurrentExecutions": 0,
            "Status": "IN_PROGRESS",
            "LastModified": "2026-11-29T00:00:00+0000",
        }
        status = 202 if name.startswith("Put") else 200
        return AWSResponse(request.url, status, {}, _Body(json.dumps(answer).encode()))


def session_sending_to(stand_in=None, sent=None) -> boto3.session.Session:
    """A session whose clients note every request body (by operation) and route to `stand_in`."""
    session = boto3.session.Session(region_name=REGION)

    def note(request, event_name, **_):
        if sent is not None:
            sent.append((event_name.rsplit(".", 1)[-1], request.body))

    session.events.register("before-send.lambda", note, unique_id="note")
    if stand_in is not None:
        session.events.register("before-send.lambda", stand_in, unique_id="stand-in")
    return session


def deploy_with(name, artifact, endpoint, options, sent=None, stand_in=None):
    """A deploy of function `name` (moto's server is shared by the session: one name a test)."""
    deployer = aws.AwsDeployer(options, credentials=session_sending_to(stand_in, sent))
    return deploy(deployer, artifact, target(name, endpoint), Apply())


@pytest.fixture
def awslambda(moto_endpoint, aws_env):  # noqa: F811 (aws_env: the imported fixture)
    return boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)


def test_snapstart_asks_lambda_for_published_versions_and_the_alias_serves_one(
    artifacts, moto_endpoint, awslambda
):
    sent: list = []
    options = aws.AwsOptions(snapstart=True)
    deploy_with("snap", artifacts("aws", python="3.12"), moto_endpoint, options, sent)
    (create,) = [json.loads(body) for name, body in sent if name == "CreateFunction"]
    assert create["SnapStart"] == {"ApplyOn": "PublishedVersions"}  # API_SnapStart.html
    alias = awslambda.get_alias(FunctionName="snap", Name="live")
    assert alias["FunctionVersion"] in versions(awslambda, "snap")
    assert alias["FunctionVersion"] != "$LATEST"


def test_without_snapstart_the_setting_is_left_alone(artifacts, moto_endpoint, awslambda):
    sent: list = []
    deploy_with("no-snap", artifacts("aws"), moto_endpoint, aws.AwsOptions(), sent)
    (create,) = [json.loads(body) for name, body in sent if name == "CreateFunction"]
    assert "SnapStart" not in create


@pytest.mark.parametrize(
    ("python", "options", "words"),
    [
        ("3.11", aws.AwsOptions(snapstart=True), "SnapStart needs Python 3.12 or later"),
        ("3.12", aws.AwsOptions(snapstart=True, provisioned=2), "cannot serve one version"),
        ("3.12", aws.AwsOptions(provisioned=-1), "0 or more"),
    ],
)
@pytest.mark.usefixtures("aws_env")
def test_what_lambda_would_refuse_is_one_sentence_before_any_request(
    artifacts, moto_endpoint, python, options, words
):
    sent: list = []
    with pytest.raises(PreflightError, match=words) as refused:
        deploy_with("refused", artifacts("aws", python=python), moto_endpoint, options, sent)
    assert "\n" not in str(refused.value)
    assert sent == []


def test_provisioned_2_configures_the_alias_and_a_repeat_leaves_it(
    artifacts, moto_endpoint, awslambda
):
    stand_in = ProvisionedStandIn()
    artifact = artifacts("aws")
    options = aws.AwsOptions(provisioned=2)
    result = deploy_with("provisioned", artifact, moto_endpoint, options, stand_in=stand_in)
    steps = {(step.action, step.what) for step in result.plan.steps}
    assert ("create", "provisioned concurrency on live") in steps
    ((operation, url, body),) = stand_in.sent  # a first deploy has no alias to read
    assert operation == "PutProvisionedConcurrencyConfig"
    # PUT /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=live (the API reference)
    parts = urlsplit(url)
    assert parts.path.endswith("/functions/provisioned/provisioned-concurrency")
    assert parse_qs(parts.query) == {"Qualifier": ["live"]}
    assert body == {"ProvisionedConcurrentExecutions": 2}

    again = deploy_with("provisioned", artifact, moto_endpoint, options, stand_in=stand_in)
    provisioned = [s for s in again.plan.steps if s.what == "provisioned concurrency on live"]
    assert [s.action for s in provisioned] == ["unchanged"]
    put, get = "PutProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig"
    assert [op for op, _, _ in stand_in.sent] == [put, get]
