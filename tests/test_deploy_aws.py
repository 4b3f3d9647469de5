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
from bertless.deploy.plan import PreflightError, Target

pytest_plugins = ["deploy_fixtures"]

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
    monkeypatch.delenv(aws.limits.AWS_DIRECT_UPLOAD_ENV, raising=False)


@pytest.fixture
def awslambda(moto_endpoint, aws_env):
    return boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)


def target(name: str, endpoint: str, **extra) -> Target:
    return Target(name=name, region=REGION, endpoint_url=endpoint, smoke=False, **extra)


def versions(awslambda, name: str) -> list[str]:
    listed = awslambda.list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in listed if v["Version"] != "$LATEST"]


def test_first_deploy_creates_function_version_alias_and_private_url(
    artifacts, moto_endpoint, awslambda
):
    artifact = artifacts("aws")
    result = aws.deploy(artifact, target("first", moto_endpoint), aws.AwsOptions())

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
    aws.deploy(artifact, target("again", moto_endpoint), aws.AwsOptions())
    before = awslambda.get_function_configuration(FunctionName="again")["LastModified"]

    result = aws.deploy(artifact, target("again", moto_endpoint), aws.AwsOptions())

    assert not result.changed
    assert versions(awslambda, "again") == ["1"]
    assert awslambda.get_function_configuration(FunctionName="again")["LastModified"] == before
    assert {step.action for step in result.plan.steps} == {"unchanged"}


def test_changed_artifact_publishes_version_2_and_moves_alias(artifacts, moto_endpoint, awslambda):
    aws.deploy(artifacts("aws", b"v1"), target("moves", moto_endpoint), aws.AwsOptions())
    changed = artifacts("aws", b"v2")

    result = aws.deploy(changed, target("moves", moto_endpoint), aws.AwsOptions())

    assert result.version == "2"
    assert versions(awslambda, "moves") == ["1", "2"]
    assert awslambda.get_alias(FunctionName="moves", Name="live")["FunctionVersion"] == "2"
    live = awslambda.get_function_configuration(FunctionName="moves", Qualifier="live")
    assert live["CodeSha256"] == aws.code_sha256(changed)


def test_memory_change_alone_publishes_a_new_version(artifacts, moto_endpoint, awslambda):
    artifact = artifacts("aws")
    aws.deploy(artifact, target("resized", moto_endpoint), aws.AwsOptions())

    aws.deploy(artifact, target("resized", moto_endpoint, memory_mb=1024), aws.AwsOptions())

    live = awslambda.get_function_configuration(FunctionName="resized", Qualifier="live")
    assert live["MemorySize"] == 1024
    assert versions(awslambda, "resized") == ["1", "2"]


def test_zip_over_direct_upload_limit_goes_through_a_private_encrypted_bucket(
    artifacts, moto_endpoint, awslambda, monkeypatch
):
    artifact = artifacts("aws", b"x" * 4096)
    monkeypatch.setenv(aws.limits.AWS_DIRECT_UPLOAD_ENV, "1000")

    result = aws.deploy(
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
    monkeypatch.setenv(aws.limits.AWS_DIRECT_UPLOAD_ENV, "1000")
    artifact = artifacts("aws", b"x" * 4096)
    with pytest.raises(PreflightError, match="--bucket"):
        aws.deploy(artifact, target("big", recorder.url), aws.AwsOptions())
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

    aws.deploy(artifact, target("open", moto_endpoint), aws.AwsOptions())  # private again
    assert awslambda.get_function_url_config(FunctionName="open", Qualifier="live")["AuthType"] == (
        "AWS_IAM"
    )
    with pytest.raises(awslambda.exceptions.ResourceNotFoundException):
        awslambda.get_policy(FunctionName="open", Qualifier="live")


def test_dry_run_prints_the_plan_and_sends_nothing(
    artifacts, recorder, aws_env, deploy_cli, capsys
):
    artifact = artifacts("aws")
    argv = ["aws", "x", "--name", "planned", "--dry-run", "--endpoint-url", recorder.url]

    assert deploy_cli(artifact, argv) == 0

    out = capsys.readouterr().out
    assert "dry run: nothing touched" in out
    assert "function planned" in out and "alias live" in out
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
        aws.deploy(
            artifact,
            Target(endpoint_url=recorder.url, smoke=False, **spec),
            aws.AwsOptions(),
        )
    assert message in str(refused.value)
    assert str(refused.value).count(". ") == 0  # one sentence
    assert recorder.calls == []


def test_every_flag_defaults_from_its_environment_variable(
    artifacts, recorder, aws_env, deploy_cli, monkeypatch, capsys
):
    monkeypatch.setenv("COLUMNS", "200")
    for flag, value in {
        "NAME": "from-env",
        "DRY_RUN": "1",
        "ENDPOINT_URL": recorder.url,
        "MEMORY": "1024",
        "PUBLIC": "true",
    }.items():
        monkeypatch.setenv(f"BERTLESS_{flag}", value)

    assert deploy_cli(artifacts("aws"), ["aws", "x"]) == 0

    out = capsys.readouterr().out
    assert "function from-env" in out and "1024 MB" in out and "auth NONE (public)" in out
    assert recorder.calls == []


def test_a_source_that_is_neither_artifact_nor_bundle_is_refused(tmp_path, deploy_cli):
    args = deploy_cli.parse(["aws", str(tmp_path / "nothing"), "--name", "fine"])
    with pytest.raises(PreflightError, match="neither an artifact nor a bundle directory"):
        args.run(args)
