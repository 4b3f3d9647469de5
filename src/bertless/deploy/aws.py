"""Deploy an artifact to AWS Lambda: code, version, alias `live`, Function URL.

The order is what keeps a deploy safe to repeat and to interrupt:
1. upload (directly, or through S3 when the zip is over the direct-upload limit);
2. create or update `$LATEST`, waiting with boto3's waiters until Lambda says it is ready;
3. publish a version and only then move alias `live` to it, so a failed update leaves the old
   version serving;
4. a Function URL on the alias: AWS_IAM unless `public`.

Lambda reports `CodeSha256` as base64 of the zip's sha256, so comparing it with the artifact's
hash tells whether the code changed without downloading anything. Credentials come from boto3's
default chain; `endpoint_url` goes to every client, so the same code runs against a local stand-in.
API reference: https://docs.aws.amazon.com/lambda/latest/api/ (CreateFunction, UpdateFunctionCode,
PublishVersion, CreateAlias, CreateFunctionUrlConfig, AddPermission); Function URL auth:
https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html (since October 2025 a public URL also
needs lambda:InvokeFunction with InvokedViaFunctionUrl).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.deploy.plan import (
    DeployError,
    Plan,
    PreflightError,
    Progress,
    Result,
    Target,
    check_artifact,
    smoke,
)
from bertless.deploy.preflight import check_name, check_region
from bertless.platforms import limits

if TYPE_CHECKING:
    import boto3

    from bertless.packaging.package import Artifact

ALIAS = "live"
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
PUBLIC_URL_SID = "bertless-public-url"
PUBLIC_INVOKE_SID = "bertless-public-invoke"
ROLE_PROPAGATION_S = 60  # a new IAM role can take seconds before Lambda may assume it


@dataclass(frozen=True)
class AwsOptions:
    """AWS-only choices: an existing execution role, and the S3 bucket for large zips."""

    role_arn: str | None = None
    bucket: str | None = None


def code_sha256(artifact: Artifact) -> str:
    """The artifact's hash in Lambda's own form (base64 of the raw sha256)."""
    return base64.b64encode(bytes.fromhex(artifact.sha256)).decode()


def direct_upload_limit() -> int | None:
    """Lambda's zipped direct-upload cap (tests lower it through limits' documented override)."""
    return limits.package_limits("aws").zip_direct_upload.value


def plan(artifact: Artifact, target: Target, options: AwsOptions) -> Plan:
    """What a deploy would do, from the inputs alone: no credentials read, no request sent."""
    import boto3

    session = boto3.session.Session(region_name=target.region)  # reads local config only
    region, memory = _preflight(artifact, target, options, session, credentials=False)
    steps = Plan("aws", target.name, region)
    _plan_upload(steps, artifact, target, options)
    if options.role_arn:
        steps.add("check", "execution role", options.role_arn)
    else:
        steps.add("create", f"role {_role_name(target.name)}", "if absent; AWSLambdaBasic only")
    steps.add(
        "create",
        f"function {target.name}",
        f"or update if it exists; {_runtime(artifact)} {artifact.arch} {memory} MB",
    )
    steps.add("create", "version", "published once the function is ready")
    steps.add("update", f"alias {ALIAS}", "moved to the new version")
    steps.add("create", f"Function URL on {ALIAS}", "auth NONE (public)" if target.public else "")
    return steps


def deploy(
    artifact: Artifact,
    target: Target,
    options: AwsOptions,
    session: boto3.session.Session | None = None,
    progress: Progress | None = None,
) -> Result:
    """Create or update the function so alias `live` serves `artifact`; say so if it already did."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or boto3.session.Session(region_name=target.region)
    region, memory = _preflight(artifact, target, options, session)
    try:
        return _deploy(artifact, target, options, session, region, memory, progress)
    except (BotoCoreError, ClientError) as error:
        raise DeployError(f"AWS refused the deploy: {error}") from None


def _deploy(
    artifact: Artifact,
    target: Target,
    options: AwsOptions,
    session: boto3.session.Session,
    region: str,
    memory: int,
    progress: Progress | None,
) -> Result:
    say = progress or (lambda _: None)
    clients = _Clients(session, region, target.endpoint_url)
    steps = Plan("aws", target.name, region)
    wanted = _configuration(artifact, target, memory)

    say("reading the function")
    current = _get_function(clients.awslambda, target.name)
    role = options.role_arn or (current and current["Role"]) or _ensure_role(clients, target, steps)
    wanted["Role"] = role
    expected = code_sha256(artifact)
    if current is None:
        say("creating the function")
        code = _code(clients, artifact, target, options, steps)
        _create(clients, target, wanted, artifact.arch, code, not options.role_arn, steps)
    else:
        if current.get("LastUpdateStatus") == "InProgress":  # another update is still running
            _wait(clients, "function_updated_v2", target.name)
        if current["CodeSha256"] != expected or current.get("Architectures") != [artifact.arch]:
            say("updating the code")
            code = _code(clients, artifact, target, options, steps)
            clients.awslambda.update_function_code(
                FunctionName=target.name, Architectures=[artifact.arch], **code
            )
            _wait(clients, "function_updated_v2", target.name)
            steps.add("update", f"function {target.name} code", artifact.sha256[:12])
        drift = _drift(current, wanted)
        if drift:
            say("updating the configuration")
            clients.awslambda.update_function_configuration(FunctionName=target.name, **wanted)
            _wait(clients, "function_updated_v2", target.name)
            steps.add("update", f"function {target.name} configuration", ", ".join(drift))
        if not steps.changed:
            steps.add("unchanged", f"function {target.name}", artifact.sha256[:12])

    say("publishing")
    version = _publish(clients, target.name, expected, wanted, steps)
    say("configuring the Function URL")
    url = _function_url(clients, target, steps)
    result = Result(steps, url, version=version, auth="NONE" if target.public else "AWS_IAM")
    if target.public:
        result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
    if target.smoke:
        say("smoke request")
        smoke(url, None if target.public else _signed_headers(session, region, url))
    return result


class _Clients:
    """The boto3 clients a deploy needs, all pointed at the same endpoint."""

    def __init__(self, session: boto3.session.Session, region: str, endpoint_url: str | None):
        def client(name: str) -> Any:
            return session.client(name, region_name=region, endpoint_url=endpoint_url)

        self.awslambda = client("lambda")
        self.iam = client("iam")
        self.s3 = client("s3")
        self.region = region


def _preflight(
    artifact: Artifact,
    target: Target,
    options: AwsOptions,
    session: boto3.session.Session,
    credentials: bool = True,
) -> tuple[str, int]:
    """Every check that needs no request: name, region, artifact, size, credentials."""
    check_name("aws", target.name)
    memory = check_artifact(artifact, "aws", target.memory_mb)
    region = target.region or session.region_name
    if not region:
        raise PreflightError("no AWS region: pass --region or set AWS_REGION")
    check_region("aws", region)
    if not 1 <= target.timeout_s <= limits.AWS.timeout_s.value:
        raise PreflightError(f"Lambda timeout must be 1 to {limits.AWS.timeout_s.value} s")
    limit = direct_upload_limit()
    if limit is not None and artifact.zipped_bytes > limit and not options.bucket:
        raise PreflightError(
            f"{artifact.path.name} is {artifact.zipped_bytes:,} bytes, over Lambda's direct "
            f"upload limit of {limit:,}; pass --bucket NAME to upload it through S3"
        )
    if credentials and session.get_credentials() is None:
        raise PreflightError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws configure`"
        )
    return region, memory


def _runtime(artifact: Artifact) -> str:
    return limits.require_runtime("aws", artifact.python).identifier


def _role_name(function: str) -> str:
    return f"bertless-{function}"[:64]


def _configuration(artifact: Artifact, target: Target, memory: int) -> dict[str, Any]:
    """The function settings bertless owns; anything else on the function is left alone."""
    return {
        "Runtime": _runtime(artifact),
        "Handler": artifact.entry_point,
        "MemorySize": memory,
        "Timeout": target.timeout_s,
        "Environment": {"Variables": dict(target.environment)},
    }


def _drift(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings whose current value differs from the wanted one."""
    have = dict(current)
    have["Environment"] = {"Variables": current.get("Environment", {}).get("Variables", {})}
    return [key for key, value in wanted.items() if have.get(key) != value]


def _get_function(awslambda: Any, name: str, qualifier: str | None = None) -> dict | None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    try:
        return awslambda.get_function_configuration(FunctionName=name, **extra)
    except awslambda.exceptions.ResourceNotFoundException:
        return None


def _wait(clients: _Clients, waiter: str, name: str, **extra: str) -> None:
    """Block on a boto3 waiter; a failed update surfaces as one sentence, the alias unmoved."""
    from botocore.exceptions import WaiterError

    try:
        clients.awslambda.get_waiter(waiter).wait(FunctionName=name, **extra)
    except WaiterError as error:
        state = error.last_response.get("Configuration", error.last_response)
        reason = state.get("LastUpdateStatusReason") or state.get("StateReason") or str(error)
        raise DeployError(
            f"Lambda did not get {name} ready ({reason}); "
            f"alias {ALIAS} still serves the old version"
        ) from None


def _plan_upload(steps: Plan, artifact: Artifact, target: Target, options: AwsOptions) -> None:
    limit = direct_upload_limit()
    if limit is not None and artifact.zipped_bytes > limit:
        steps.add("create", f"bucket {options.bucket}", "if absent; private, SSE-S3")
        steps.add(
            "upload",
            f"s3://{options.bucket}/{_s3_key(target.name, artifact)}",
            "unless already there",
            artifact.zipped_bytes,
        )
    else:
        steps.add("upload", "zip", "directly in the API call", artifact.zipped_bytes)


def _s3_key(name: str, artifact: Artifact) -> str:
    """Content-addressed, so a re-deploy finds its zip already there."""
    return f"bertless/{name}/{artifact.sha256}.zip"


def _code(
    clients: _Clients, artifact: Artifact, target: Target, options: AwsOptions, steps: Plan
) -> dict[str, Any]:
    """The Code argument: the bytes themselves, or an S3 object for a zip over the limit."""
    limit = direct_upload_limit()
    if limit is None or artifact.zipped_bytes <= limit:
        steps.add("upload", "zip", "directly", artifact.zipped_bytes)
        return {"ZipFile": artifact.path.read_bytes()}
    assert options.bucket  # _preflight refused a large zip without one
    _ensure_bucket(clients, options.bucket, steps)
    key = _s3_key(target.name, artifact)
    try:
        clients.s3.head_object(Bucket=options.bucket, Key=key)
        steps.add("unchanged", f"s3://{options.bucket}/{key}", "already uploaded")
    except clients.s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        clients.s3.upload_file(
            str(artifact.path),
            options.bucket,
            key,
            ExtraArgs={"ServerSideEncryption": "AES256", "ContentType": "application/zip"},
        )
        steps.add("upload", f"s3://{options.bucket}/{key}", "", artifact.zipped_bytes)
    return {"S3Bucket": options.bucket, "S3Key": key}


def _ensure_bucket(clients: _Clients, bucket: str, steps: Plan) -> None:
    """Create the bucket if it is missing, private and encrypted; an existing one is left as is."""
    s3 = clients.s3
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"cannot use bucket {bucket}: {error}") from None
    extra = (
        {}
        if clients.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    )
    s3.create_bucket(Bucket=bucket, **extra)
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
    steps.add("create", f"bucket {bucket}", "public access blocked, SSE-S3")


def _ensure_role(clients: _Clients, target: Target, steps: Plan) -> str:
    """An execution role that may only write its own logs (AWSLambdaBasicExecutionRole)."""
    iam = clients.iam
    name = _role_name(target.name)
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
        Description=f"bertless execution role for {target.name}",
    )["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION_POLICY)
    steps.add("create", f"role {name}", "AWSLambdaBasicExecutionRole only")
    return arn


def _create(
    clients: _Clients,
    target: Target,
    wanted: dict[str, Any],
    arch: str,
    code: dict[str, Any],
    fresh_role: bool,
    steps: Plan,
) -> None:
    """CreateFunction, retrying while a just-created role is not yet assumable by Lambda."""
    awslambda = clients.awslambda
    deadline = time.monotonic() + (ROLE_PROPAGATION_S if fresh_role else 0)
    while True:
        try:
            awslambda.create_function(
                FunctionName=target.name,
                Code=code,
                Architectures=[arch],
                Publish=False,
                Description="deployed by bertless",
                **wanted,
            )
            break
        except awslambda.exceptions.InvalidParameterValueException as error:
            if "assume" not in str(error) or time.monotonic() > deadline:
                raise DeployError(f"Lambda refused to create {target.name}: {error}") from None
            time.sleep(3)
    _wait(clients, "function_active_v2", target.name)
    steps.add("create", f"function {target.name}", f"{wanted['Runtime']} {wanted['MemorySize']} MB")


def _publish(
    clients: _Clients, name: str, expected: str, wanted: dict[str, Any], steps: Plan
) -> str:
    """Publish `$LATEST` and move `live` to it, unless `live` already serves exactly that."""
    awslambda = clients.awslambda
    live = _get_function(awslambda, name, ALIAS)
    if live and live["CodeSha256"] == expected and not _drift(live, wanted):
        steps.add("unchanged", f"alias {ALIAS}", f"version {live['Version']}")
        return live["Version"]
    version = awslambda.publish_version(
        FunctionName=name, CodeSha256=expected, Description=f"bertless {expected}"
    )["Version"]
    _wait(clients, "published_version_active", name, Qualifier=version)
    steps.add("create", f"version {version}", "")
    if live is None:
        awslambda.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        steps.add("create", f"alias {ALIAS}", f"-> version {version}")
    else:
        awslambda.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        steps.add("update", f"alias {ALIAS}", f"version {live['Version']} -> {version}")
    return version


def _function_url(clients: _Clients, target: Target, steps: Plan) -> str:
    """The alias's Function URL with the wanted auth type, and the resource policy to match."""
    awslambda = clients.awslambda
    auth = "NONE" if target.public else "AWS_IAM"
    where = {"FunctionName": target.name, "Qualifier": ALIAS}
    try:
        config = awslambda.get_function_url_config(**where)
    except awslambda.exceptions.ResourceNotFoundException:
        config = awslambda.create_function_url_config(AuthType=auth, **where)
        steps.add("create", f"Function URL on {ALIAS}", f"auth {auth}")
    else:
        if config["AuthType"] != auth:
            config = awslambda.update_function_url_config(AuthType=auth, **where)
            steps.add("update", f"Function URL on {ALIAS}", f"auth {auth}")
    _public_permissions(awslambda, target, steps)
    return config["FunctionUrl"]


def _public_permissions(awslambda: Any, target: Target, steps: Plan) -> None:
    """Add the two statements a public URL needs, or remove them when it goes private again."""
    where = {"FunctionName": target.name, "Qualifier": ALIAS}
    try:
        policy = json.loads(awslambda.get_policy(**where)["Policy"])
        present = {statement["Sid"] for statement in policy.get("Statement", [])}
    except awslambda.exceptions.ResourceNotFoundException:
        present = set()
    statements = {
        PUBLIC_URL_SID: {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
        PUBLIC_INVOKE_SID: {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
    }
    for sid, statement in statements.items():
        if target.public and sid not in present:
            awslambda.add_permission(StatementId=sid, Principal="*", **statement, **where)
            steps.add("open", f"permission {sid}", "anyone may invoke the URL")
        elif not target.public and sid in present:
            awslambda.remove_permission(StatementId=sid, **where)
            steps.add("close", f"permission {sid}", "public access removed")


def _signed_headers(session: boto3.session.Session, region: str, url: str) -> dict[str, str]:
    """SigV4 headers for a GET on an AWS_IAM Function URL, signed with the deploying identity."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="GET", url=url.rstrip("/") + "/health")
    SigV4Auth(session.get_credentials(), "lambda", region).add_auth(request)
    return dict(request.headers)
