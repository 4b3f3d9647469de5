"""What each step of an AWS Lambda deploy does once the planner has decided it is needed.

Every function here makes one change (or the few calls that are one change, like a bucket with
its public access block) and waits until Lambda says the change is done, so the next step starts
from a settled function. None of them reads to decide: `deploy/aws.py` read and decided already.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bertless.deploy.plan import DeployError
from bertless.platforms.names import LAMBDA_ALIAS

if TYPE_CHECKING:
    import boto3

    from bertless.packaging.layer import LayerZip
    from bertless.packaging.package import Artifact

BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
ROLE_PROPAGATION_S = 60  # a new IAM role can take seconds before Lambda may assume it

# The two statements a public Function URL needs (since October 2025 both are required):
# https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
PUBLIC_STATEMENTS: dict[str, dict[str, Any]] = {
    "bertless-public-url": {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
    "bertless-public-invoke": {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
}


class Clients:
    """The boto3 clients a deploy needs, all pointed at the same region and endpoint."""

    def __init__(self, session: boto3.session.Session, region: str, endpoint_url: str | None):
        def client(name: str) -> Any:
            return session.client(name, region_name=region, endpoint_url=endpoint_url)

        self.awslambda = client("lambda")
        self.iam = client("iam")
        self.s3 = client("s3")
        self.region = region


def wait(clients: Clients, waiter: str, name: str, **extra: str) -> None:
    """Block on a boto3 waiter; a failed update surfaces as one sentence, the alias unmoved."""
    from botocore.exceptions import WaiterError

    try:
        clients.awslambda.get_waiter(waiter).wait(FunctionName=name, **extra)
    except WaiterError as error:
        state = error.last_response.get("Configuration", error.last_response)
        reason = state.get("LastUpdateStatusReason") or state.get("StateReason") or str(error)
        raise DeployError(
            f"Lambda did not get {name} ready ({reason}); "
            f"alias {LAMBDA_ALIAS} still serves the old version"
        ) from None


def create_bucket(clients: Clients, bucket: str) -> None:
    """A bucket for large zips: public access blocked, encrypted with S3's own keys."""
    s3 = clients.s3
    where = (
        {}
        if clients.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    )
    s3.create_bucket(Bucket=bucket, **where)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def upload(clients: Clients, artifact: Artifact, bucket: str, key: str) -> None:
    """The zip to S3 (multipart when large, through boto3's transfer manager)."""
    clients.s3.upload_file(
        str(artifact.path),
        bucket,
        key,
        ExtraArgs={"ServerSideEncryption": "AES256", "ContentType": "application/zip"},
    )


def publish_layer(
    clients: Clients, layer: LayerZip, description: str, runtime: str, arch: str
) -> str:
    """A new version of the runtime's layer, from the zip's bytes; returns its version ARN."""
    published = clients.awslambda.publish_layer_version(
        LayerName=layer.name,
        Description=description,
        Content={"ZipFile": layer.path.read_bytes()},
        CompatibleRuntimes=[runtime],
        CompatibleArchitectures=[arch],
    )
    return published["LayerVersionArn"]


def create_role(clients: Clients, role: str, function: str) -> str:
    """An execution role that may only write its own logs; returns its ARN."""
    arn = clients.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
        Description=f"bertless execution role for {function}",
    )["Role"]["Arn"]
    clients.iam.attach_role_policy(RoleName=role, PolicyArn=BASIC_EXECUTION_POLICY)
    return arn


def create_function(
    clients: Clients,
    name: str,
    settings: dict[str, Any],
    arch: str,
    code: dict[str, Any],
    fresh_role: bool,
) -> None:
    """CreateFunction, retrying while a just-created role is not yet assumable by Lambda."""
    awslambda = clients.awslambda
    deadline = time.monotonic() + (ROLE_PROPAGATION_S if fresh_role else 0)
    while True:
        try:
            awslambda.create_function(
                FunctionName=name,
                Code=code,
                Architectures=[arch],
                Publish=False,
                Description="deployed by bertless",
                **settings,
            )
            break
        except awslambda.exceptions.InvalidParameterValueException as error:
            if "assume" not in str(error) or time.monotonic() > deadline:
                raise DeployError(f"Lambda refused to create {name}: {error}") from None
            time.sleep(3)
    wait(clients, "function_active_v2", name)


def update_code(clients: Clients, name: str, arch: str, code: dict[str, Any]) -> None:
    """New code on `$LATEST`; the alias keeps serving the published version meanwhile."""
    clients.awslambda.update_function_code(FunctionName=name, Architectures=[arch], **code)
    wait(clients, "function_updated_v2", name)


def update_configuration(clients: Clients, name: str, settings: dict[str, Any]) -> None:
    """The settings bertless owns on `$LATEST`; others on the function are left alone."""
    clients.awslambda.update_function_configuration(FunctionName=name, **settings)
    wait(clients, "function_updated_v2", name)


def publish(clients: Clients, name: str, code_sha256: str) -> str:
    """Publish `$LATEST` as a version, refused by Lambda if its code is not the expected zip."""
    version = clients.awslambda.publish_version(
        FunctionName=name, CodeSha256=code_sha256, Description=f"bertless {code_sha256}"
    )["Version"]
    wait(clients, "published_version_active", name, Qualifier=version)
    return version


def point_alias(clients: Clients, name: str, version: str, previous: str | None) -> None:
    """Move the alias from version `previous` (or create it); from this call on, the new
    version serves all requests, and the alias remembers `previous` for a rollback."""
    if previous is None:
        clients.awslambda.create_alias(
            FunctionName=name,
            Name=LAMBDA_ALIAS,
            FunctionVersion=version,
            Description=describe(None),
        )
    else:
        route(clients, name, version, None, 0.0, previous)


def describe(previous: str | None) -> str:
    """The alias's description, which records the version that served before (Lambda keeps no
    history of an alias; `deploy/aws_rollout.py` reads it back for a rollback)."""
    return f"bertless alias; served before: version {previous}" if previous else "bertless alias"


def route(
    clients: Clients,
    name: str,
    version: str,
    canary: str | None,
    weight: float,
    previous: str | None,
) -> None:
    """One UpdateAlias: `version` serves, `canary` (if any) takes `weight` of the requests
    (RoutingConfig.AdditionalVersionWeights, a weight from 0 to 1)."""
    clients.awslambda.update_alias(
        FunctionName=name,
        Name=LAMBDA_ALIAS,
        FunctionVersion=version,
        Description=describe(previous),
        RoutingConfig={"AdditionalVersionWeights": {canary: weight} if canary else {}},
    )


def set_url(clients: Clients, name: str, auth: str, exists: bool) -> None:
    """The alias's Function URL with the auth type asked for."""
    awslambda = clients.awslambda
    configure = (
        awslambda.update_function_url_config if exists else awslambda.create_function_url_config
    )
    configure(FunctionName=name, Qualifier=LAMBDA_ALIAS, AuthType=auth)


def open_permission(clients: Clients, name: str, sid: str) -> None:
    """One of the statements that let anyone invoke a public URL."""
    clients.awslambda.add_permission(
        FunctionName=name,
        Qualifier=LAMBDA_ALIAS,
        StatementId=sid,
        Principal="*",
        **PUBLIC_STATEMENTS[sid],
    )


def close_permission(clients: Clients, name: str, sid: str) -> None:
    """Remove a public statement, when a function goes private again."""
    clients.awslambda.remove_permission(FunctionName=name, Qualifier=LAMBDA_ALIAS, StatementId=sid)


@contextlib.contextmanager
def as_sentence() -> Iterator[None]:
    """botocore's errors, during a read or a step, as the one sentence a user sees."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise DeployError(f"AWS refused the deploy: {error}") from None


def step(action: Callable[..., object], *args: object) -> Callable[[], object]:
    """A step's `run`: `action(*args)`, its botocore errors turned into one sentence."""

    def run() -> object:
        with as_sentence():
            return action(*args)

    return run
