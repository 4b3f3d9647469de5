"""`bertless deploy aws` against moto's server mode: real boto3 over real HTTP.

moto cannot run function code here (it would need Docker), so every deploy passes smoke=False:
the smoke request is the one step these tests cannot exercise against moto.
"""

from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest

from bertless.deploy import aws
from bertless.deploy.plan import (
    Apply,
    DeployError,
    Plan,
    PreflightError,
    Result,
    Show,
    Target,
    deploy,
)
from bertless.platforms import limits

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials for moto, and no way for boto3 to find real ones or probe IMDS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # a client left unpointed fails here, not at AWS
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv(limits.AWS_DIRECT_UPLOAD_ENV, raising=False)


@pytest.fixture
def awslambda(moto_endpoint, aws_env):
    return boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)


def target(name: str, endpoint: str, **extra) -> Target:
    return Target(name=name, region=REGION, endpoint_url=endpoint, smoke=False, **extra)


def deploy_aws(artifact, to: Target, options: aws.AwsOptions | None = None) -> Result:
    """A real deploy (the Apply executor) through boto3's default chain, as the CLI runs it."""
    result = deploy(aws.AwsDeployer(options or aws.AwsOptions()), artifact, to, Apply())
    assert result is not None
    return result


def recording_session(operations: list[str]) -> boto3.session.Session:
    """A boto3 session that notes the name of every API operation its clients call."""
    session = boto3.session.Session(region_name=REGION)
    session.events.register(
        "before-call", lambda model, **_: operations.append(model.name), unique_id="recorder"
    )
    return session


def only_reads(operations: list[str]) -> bool:
    return bool(operations) and all(op.startswith(("Get", "List", "Head")) for op in operations)


def functions(awslambda) -> list[str]:
    return [f["FunctionName"] for f in awslambda.list_functions()["Functions"]]


def versions(awslambda, name: str) -> list[str]:
    listed = awslambda.list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in listed if v["Version"] != "$LATEST"]


def test_first_deploy_creates_function_version_alias_and_private_url(
    artifacts, moto_endpoint, awslambda
):
    artifact = artifacts("aws")
    result = deploy_aws(artifact, target("first", moto_endpoint))

    config = awslambda.get_function_configuration(FunctionName="first")
    zipped = artifact.path.read_bytes()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "lambda_function.handler"
    assert config["MemorySize"] == 512
    assert versions(awslambda, "first") == ["1"]
    assert awslambda.get_alias(FunctionName="first", Name="live")["FunctionVersion"] == "1"
    url = awslambda.get_function_url_config(FunctionName="first", Qualifier="live")
    assert url["AuthType"] == "AWS_IAM"
    assert result.url == url["FunctionUrl"]
    assert result.version == "1" and result.changed

    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_endpoint)
    role = config["Role"].rsplit("/", 1)[1]
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]


def test_second_deploy_of_same_artifact_changes_nothing(artifacts, moto_endpoint, awslambda):
    artifact = artifacts("aws")
    deploy_aws(artifact, target("again", moto_endpoint))
    before = awslambda.get_function_configuration(FunctionName="again")["LastModified"]

    result = deploy_aws(artifact, target("again", moto_endpoint))

    assert not result.changed
    assert versions(awslambda, "again") == ["1"]
    assert awslambda.get_function_configuration(FunctionName="again")["LastModified"] == before
    assert {step.action for step in result.plan.steps} == {"unchanged"}


def test_changed_artifact_publishes_version_2_and_moves_alias(artifacts, moto_endpoint, awslambda):
    deploy_aws(artifacts("aws", b"v1"), target("moves", moto_endpoint))
    changed = artifacts("aws", b"v2")

    result = deploy_aws(changed, target("moves", moto_endpoint))

    assert result.version == "2"
    assert versions(awslambda, "moves") == ["1", "2"]
    assert awslambda.get_alias(FunctionName="moves", Name="live")["FunctionVersion"] == "2"
    live = awslambda.get_function_configuration(FunctionName="moves", Qualifier="live")
    assert live["CodeSha256"] == aws.code_sha256(changed)


def test_memory_change_alone_publishes_a_new_version(artifacts, moto_endpoint, awslambda):
    artifact = artifacts("aws")
    deploy_aws(artifact, target("resized", moto_endpoint))

    deploy_aws(artifact, target("resized", moto_endpoint, memory_mb=1024))

    live = awslambda.get_function_configuration(FunctionName="resized", Qualifier="live")
    assert live["MemorySize"] == 1024
    assert versions(awslambda, "resized") == ["1", "2"]


def test_a_deploy_stopped_after_updating_latest_is_finished_by_the_next(
    artifacts, moto_endpoint, awslambda
):
    """`$LATEST` already has the new code but the alias does not: publish and move it anyway."""
    deploy_aws(artifacts("aws", b"v1"), target("halfway", moto_endpoint))
    changed = artifacts("aws", b"v2")
    awslambda.update_function_code(FunctionName="halfway", ZipFile=changed.path.read_bytes())

    result = deploy_aws(changed, target("halfway", moto_endpoint))

    assert [(step.action, step.what) for step in result.plan.steps[:3]] == [
        ("unchanged", "function halfway"),
        ("create", "version"),
        ("update", "alias live"),
    ]
    live = awslambda.get_function_configuration(FunctionName="halfway", Qualifier="live")
    assert live["CodeSha256"] == aws.code_sha256(changed) and result.version == "2"


def test_an_error_answer_while_planning_is_one_sentence(artifacts, recorder, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(DeployError) as refused:
        deploy_aws(artifacts("aws"), target("refused", recorder.url))
    assert str(refused.value).startswith("AWS refused the deploy: ")
    assert "GetFunctionConfiguration" in str(refused.value)
    assert [call.method for call in recorder.calls] == ["GET"]


def test_zip_over_direct_upload_limit_goes_through_a_private_encrypted_bucket(
    artifacts, moto_endpoint, awslambda, monkeypatch
):
    artifact = artifacts("aws", b"x" * 4096)
    monkeypatch.setenv(limits.AWS_DIRECT_UPLOAD_ENV, "1000")

    result = deploy_aws(
        artifact, target("big", moto_endpoint), aws.AwsOptions(bucket="bertless-artifacts")
    )

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    key = f"bertless/big/{artifact.sha256}.zip"
    assert s3.get_object(Bucket="bertless-artifacts", Key=key)["Body"].read() == (
        artifact.path.read_bytes()
    )
    block = s3.get_public_access_block(Bucket="bertless-artifacts")
    assert all(block["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket="bertless-artifacts")
    default = rules["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert default["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    config = awslambda.get_function_configuration(FunctionName="big")
    assert config["CodeSha256"] == aws.code_sha256(artifact)
    assert any(step.what == f"s3://bertless-artifacts/{key}" for step in result.plan.steps)


def test_zip_over_limit_without_bucket_is_refused_before_any_request(
    artifacts, recorder, aws_env, monkeypatch
):
    monkeypatch.setenv(limits.AWS_DIRECT_UPLOAD_ENV, "1000")
    artifact = artifacts("aws", b"x" * 4096)
    with pytest.raises(PreflightError, match="--bucket"):
        deploy_aws(artifact, target("big", recorder.url))
    assert recorder.calls == []


def test_public_opens_the_url_with_resource_policy_and_says_so_loudly(
    artifacts, moto_endpoint, awslambda, deploy_cli, capsys
):
    artifact = artifacts("aws")
    code = deploy_cli(
        artifact,
        ["aws", "x", "--name", "open", "--public", "--no-smoke", "--endpoint-url", moto_endpoint],
    )

    assert code == 0
    url = awslambda.get_function_url_config(FunctionName="open", Qualifier="live")
    assert url["AuthType"] == "NONE"
    policy = json.loads(awslambda.get_policy(FunctionName="open", Qualifier="live")["Policy"])
    actions = {s["Action"]: s for s in policy["Statement"]}
    assert actions["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert actions["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    out = capsys.readouterr().out
    assert "PUBLIC: anyone on the internet can call" in out
    assert url["FunctionUrl"] in out

    deploy_aws(artifact, target("open", moto_endpoint))  # private again
    assert awslambda.get_function_url_config(FunctionName="open", Qualifier="live")["AuthType"] == (
        "AWS_IAM"
    )
    with pytest.raises(awslambda.exceptions.ResourceNotFoundException):
        awslambda.get_policy(FunctionName="open", Qualifier="live")


# What a deploy must do in each case, written out: the dry run and the deploy could agree on
# something wrong; this list is the reference they are both held to.
EXPECTED = {
    "first": [
        ("create", "role bertless-twin-first"),
        ("create", "function twin-first"),
        ("create", "version"),
        ("create", "alias live"),
        ("create", "Function URL on live"),
    ],
    "repeat": [
        ("unchanged", "function twin-repeat"),
        ("unchanged", "alias live"),
        ("unchanged", "Function URL on live"),
    ],
    "changed": [
        ("update", "function twin-changed code"),
        ("create", "version"),
        ("update", "alias live"),
        ("unchanged", "Function URL on live"),
    ],
    "changed through S3": [
        ("unchanged", "bucket twin-bucket"),
        ("upload", "s3://twin-bucket/bertless/twin-changed-through-S3/{sha}.zip"),
        ("update", "function twin-changed-through-S3 code"),
        ("create", "version"),
        ("update", "alias live"),
        ("unchanged", "Function URL on live"),
    ],
}


@pytest.mark.parametrize("history", list(EXPECTED))
def test_dry_run_steps_equal_the_steps_the_deploy_took(
    artifacts, moto_endpoint, awslambda, monkeypatch, history
):
    name = "twin-" + history.replace(" ", "-")
    to = target(name, moto_endpoint)
    options = aws.AwsOptions(bucket="twin-bucket")
    if history.endswith("S3"):
        monkeypatch.setenv(limits.AWS_DIRECT_UPLOAD_ENV, "1000")
    first = artifacts("aws", b"v1" * 1000)
    if history != "first":
        deploy_aws(first, to, options)
    artifact = artifacts("aws", b"v2" * 1000) if history.startswith("changed") else first
    before = functions(awslambda), versions(awslambda, name) if history != "first" else []

    reads: list[str] = []
    shown: list[Plan] = []
    dry = aws.AwsDeployer(options, recording_session(reads))
    assert deploy(dry, artifact, to, Show(), shown=shown.append) is None
    assert only_reads(reads), reads
    assert (functions(awslambda), versions(awslambda, name) if history != "first" else []) == before

    result = deploy_aws(artifact, to, options)

    assert shown[0].steps == result.plan.steps
    wanted = [(action, what.format(sha=artifact.sha256)) for action, what in EXPECTED[history]]
    assert [(step.action, step.what) for step in result.plan.steps] == wanted
    again = aws.AwsDeployer(options).plan(artifact, to, lambda _: None)
    assert {step.action for step in again.steps} == {"unchanged"}, again.steps
    live = awslambda.get_function_configuration(FunctionName=name, Qualifier="live")
    assert live["CodeSha256"] == aws.code_sha256(artifact)


@pytest.fixture
def cli_operations(monkeypatch, aws_env) -> list[str]:
    """The API operations `bertless deploy aws` calls, through a recording boto3 session."""
    operations: list[str] = []
    deployer = aws.AwsDeployer
    monkeypatch.setattr(
        aws, "AwsDeployer", lambda options: deployer(options, recording_session(operations))
    )
    return operations


def test_dry_run_prints_the_plan_and_sends_only_reads(
    artifacts, moto_endpoint, awslambda, deploy_cli, cli_operations, capsys
):
    artifact = artifacts("aws")
    argv = ["aws", "x", "--name", "planned", "--dry-run", "--endpoint-url", moto_endpoint]

    assert deploy_cli(artifact, argv) == 0

    out = capsys.readouterr().out
    assert "dry run: nothing touched" in out
    assert "function planned" in out and "alias live" in out
    assert only_reads(cli_operations), cli_operations
    assert "planned" not in functions(awslambda)


def test_a_dry_run_without_credentials_is_refused_before_any_request(
    artifacts, recorder, aws_env, deploy_cli, monkeypatch
):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    argv = ["aws", "x", "--name", "planned", "--dry-run", "--endpoint-url", recorder.url]
    with pytest.raises(PreflightError, match="no AWS credentials found"):
        deploy_cli(artifacts("aws"), argv)
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "has space"}, "aws refuses the name 'has space'"),
        ({"name": "x" * 65}, "1 to 64 letters"),
        ({"region": "us-middle-7"}, "aws has no region 'us-middle-7'"),
        ({"cloud": "gcp"}, "was packaged for gcp, not aws"),
        ({"python": "3.9"}, "no Python 3.9 runtime"),
        ({"memory_mb": 64}, "memory must be 128 to 10240 MB"),
        ({"credentials": None}, "no AWS credentials found"),
    ],
)
def test_bad_input_is_one_sentence_before_any_request(
    artifacts, recorder, aws_env, monkeypatch, change, message
):
    if "credentials" in change:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key)
    artifact = artifacts(change.get("cloud", "aws"), python=change.get("python", "3.12"))
    spec = {"name": "fine", "region": REGION, "memory_mb": None}
    spec.update({k: v for k, v in change.items() if k in spec})
    with pytest.raises(PreflightError) as refused:
        deploy_aws(artifact, Target(endpoint_url=recorder.url, smoke=False, **spec))
    assert message in str(refused.value)
    assert str(refused.value).count(". ") == 0  # one sentence
    assert recorder.calls == []


def test_every_flag_defaults_from_its_environment_variable(
    artifacts, moto_endpoint, deploy_cli, cli_operations, monkeypatch, capsys
):
    monkeypatch.setenv("COLUMNS", "200")
    for flag, value in {
        "NAME": "from-env",
        "DRY_RUN": "1",
        "ENDPOINT_URL": moto_endpoint,
        "MEMORY": "1024",
        "PUBLIC": "true",
    }.items():
        monkeypatch.setenv(f"BERTLESS_{flag}", value)

    assert deploy_cli(artifacts("aws"), ["aws", "x"]) == 0

    out = capsys.readouterr().out
    assert "function from-env" in out and "1024 MB" in out and "auth NONE (public)" in out
    assert only_reads(cli_operations), cli_operations


def test_a_source_that_is_neither_artifact_nor_bundle_is_refused(tmp_path, deploy_cli):
    args = deploy_cli.parse(["aws", str(tmp_path / "nothing"), "--name", "fine"])
    with pytest.raises(PreflightError, match="neither an artifact nor a bundle directory"):
        args.run(args)


def test_the_smoke_request_is_signed_with_the_deploying_sessions_credentials():
    session = boto3.session.Session(
        aws_access_key_id="AKIDDEPLOYER", aws_secret_access_key="secret", region_name=REGION
    )
    headers = aws._signed_headers(session, REGION, "https://abc.lambda-url.us-east-1.on.aws/")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDDEPLOYER/")
    assert f"/{REGION}/lambda/aws4_request" in headers["Authorization"]
