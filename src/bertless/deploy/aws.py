"""Deploy an artifact to AWS Lambda: code, version, alias `live`, Function URL.

`AwsDeployer.plan` reads the function as it is (read-only calls only) and returns the steps that
bring it to what the artifact and flags ask for; `deploy/aws_steps.py` holds what each step does,
`deploy/aws_preflight.py` the checks made before any request, and `deploy/aws_settings.py` the
function settings bertless owns and how the account's copy is compared to them.
The order is what keeps a deploy safe to repeat and to interrupt:
1. upload through S3 when the zip is over the direct-upload limit (otherwise the zip travels in
   the create or update call itself); publish the artifact's runtime layer, unless a version with
   the same content is published already (its name and description carry the zip's sha256);
2. create or update `$LATEST`, waiting with boto3's waiters until Lambda says it is ready;
3. publish a version and only then move alias `live` to it, so a failed update leaves the old
   version serving;
4. a Function URL on the alias: AWS_IAM unless `public`;
5. provisioned concurrency on the alias when asked (`--snapstart` is a function setting instead;
   both in `deploy/aws_warm.py`).

An image artifact (`packaging.image.read_image`) deploys with `PackageType: Image` and its
`ImageUri` pinned by digest: the function's `Code.ImageUri` tells whether it changed, and the
same digest changes nothing; no layer, runtime or handler is set, since the image carries them.

Credentials come from the boto3 session given, or boto3's default chain; `endpoint_url` goes to
every client, so the same code runs against a local stand-in. API reference:
https://docs.aws.amazon.com/lambda/latest/api/ (CreateFunction, UpdateFunctionCode,
PublishVersion, CreateAlias, CreateFunctionUrlConfig, AddPermission).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless import sigv4
from bertless.deploy import aws_preflight as preflight
from bertless.deploy import aws_rollout as rollout
from bertless.deploy import aws_steps as steps
from bertless.deploy import aws_warm as warm
from bertless.deploy.aws_preflight import over_direct_limit
from bertless.deploy.aws_settings import code_sha256, drift, settings
from bertless.deploy.aws_steps import as_sentence as _as_sentence
from bertless.deploy.aws_steps import step as _step
from bertless.deploy.plan import DeployError, Plan, Result, Say, Target
from bertless.deploy.preflight import smoke
from bertless.packaging.layer import description as layer_description
from bertless.platforms.names import LAMBDA_ALIAS

if TYPE_CHECKING:
    import boto3

    from bertless.packaging.package import Artifact


@dataclass(frozen=True)
class AwsOptions:
    """AWS-only choices: an existing execution role, the S3 bucket for large zips, and how to
    keep the function warm (`deploy/aws_warm.py`): SnapStart, or N provisioned environments."""

    role_arn: str | None = None
    bucket: str | None = None
    snapstart: bool = False
    provisioned: int = 0


class AwsDeployer:
    """Plans a Lambda deploy from what the account holds, and carries each step out.

    `credentials` is a boto3 Session; None means boto3's default chain. What one step makes and
    a later one needs (the role's ARN, the published version) is kept on the instance.
    """

    cloud = "aws"

    def __init__(self, options: AwsOptions, credentials: boto3.session.Session | None = None):
        self.options = options
        self.credentials = credentials

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan:
        """Preflight (no request), then read the function, its alias, URL and policy."""
        import boto3

        session = self.credentials or boto3.session.Session(region_name=target.region)
        options = self.options
        region, memory = preflight.check(
            artifact,
            target,
            session,
            bucket=options.bucket,
            snapstart=options.snapstart,
            provisioned=options.provisioned,
        )
        self._session = session
        self._clients = steps.Clients(session, region, target.endpoint_url)
        self._artifact = artifact
        self._name = target.name
        self._settings = settings(artifact, target, memory) | warm.settings(options.snapstart)
        self._role_arn = self.options.role_arn
        self._s3: tuple[str, str] | None = None
        self._version: str | None = None
        self._layer_arn: str | None = None
        self._reused: str | None = None  # what finish says about a layer published before
        plan = Plan("aws", target.name, region)
        with _as_sentence():
            say("reading the function")
            current = self._read_function()
            self._code_sha = self._expected_sha(current)
            if self._role_arn is None and current is not None:
                self._role_arn = current["Role"]
            if self._role_arn is None:
                self._plan_role(plan)
            if artifact.layer is not None:
                self._plan_layer(plan)
            changed_code = current is None or (
                current["CodeSha256"] != self._code_sha
                or current.get("Architectures") != [artifact.arch]
            )
            if changed_code and over_direct_limit(artifact):
                self._plan_upload(plan)
            self._plan_function(plan, current, changed_code)
            live = self._read_function(LAMBDA_ALIAS) if current is not None else None
            if target.canary is None:
                self._plan_alias(plan, live)
            else:
                publish, published = _step(self._publish), lambda: self._version
                rollout.plan_canary(
                    plan, self._clients, self._serves, target.canary, publish, published
                )
            self._plan_url(plan, target, alias_exists=live is not None)
            count = self.options.provisioned
            warm.plan_provisioned(plan, self._clients, self._name, count, live is not None)
        return plan

    def finish(self, plan: Plan, target: Target, say: Say) -> Result:
        """Read the alias's version and URL, say if it is public, and smoke-test it."""
        awslambda = self._clients.awslambda
        say("reading the alias and its URL")
        with _as_sentence():
            alias = awslambda.get_alias(FunctionName=target.name, Name=LAMBDA_ALIAS)
            url = awslambda.get_function_url_config(
                FunctionName=target.name, Qualifier=LAMBDA_ALIAS
            )["FunctionUrl"]
        result = Result(plan, url, version=alias["FunctionVersion"], auth=_auth(target.public))
        if self._reused:
            result.notes.append(self._reused)
        if target.public:
            result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
        if target.smoke:
            say("smoke request")
            signed = None if target.public else _signed_headers(self._session, plan.region, url)
            smoke(url, signed)
        return result

    # --- reading the account: each method adds the steps one resource needs -------------------

    def _read_function(self, qualifier: str | None = None) -> dict[str, Any] | None:
        """`$LATEST` (or the alias), once no update of someone else's is still running on it."""
        awslambda = self._clients.awslambda
        extra = {"Qualifier": qualifier} if qualifier else {}
        try:
            config = awslambda.get_function_configuration(FunctionName=self._name, **extra)
        except awslambda.exceptions.ResourceNotFoundException:
            return None
        if config.get("LastUpdateStatus") == "InProgress":
            steps.wait(self._clients, "function_updated_v2", self._name)  # polls with reads
            config = awslambda.get_function_configuration(FunctionName=self._name, **extra)
        return config

    def _plan_role(self, plan: Plan) -> None:
        """No role given and no function yet: bertless's own role, found or created."""
        iam = self._clients.iam
        role = _role_name(self._name)
        try:
            self._role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]
            plan.unchanged(f"role {role}", "AWSLambdaBasicExecutionRole only")
        except iam.exceptions.NoSuchEntityException:
            plan.add(
                "create",
                f"role {role}",
                "AWSLambdaBasicExecutionRole only",
                run=_step(self._create_role, role),
            )

    def _plan_upload(self, plan: Plan) -> None:
        """A zip over the direct-upload limit goes to S3 first, under a content-addressed key."""
        bucket = self.options.bucket
        assert bucket  # the preflight refused a large zip without one
        key = f"bertless/{self._name}/{self._artifact.sha256}.zip"
        self._s3 = (bucket, key)
        exists = _exists(lambda: self._clients.s3.head_bucket(Bucket=bucket), f"bucket {bucket}")
        if exists:
            plan.unchanged(f"bucket {bucket}")
        else:
            plan.add(
                "create",
                f"bucket {bucket}",
                "public access blocked, SSE-S3",
                run=_step(steps.create_bucket, self._clients, bucket),
            )
        where = f"s3://{bucket}/{key}"
        if exists and _exists(lambda: self._clients.s3.head_object(Bucket=bucket, Key=key), where):
            plan.unchanged(where, "already uploaded")
        else:
            upload = _step(steps.upload, self._clients, self._artifact, bucket, key)
            plan.add("upload", where, "", self._artifact.zipped_bytes, run=upload)

    def _plan_layer(self, plan: Plan) -> None:
        """The runtime's layer: a version with this content is reused, else one is published."""
        layer, awslambda = self._artifact.layer, self._clients.awslambda
        assert layer is not None
        found = None
        with contextlib.suppress(awslambda.exceptions.ResourceNotFoundException):
            pages = awslambda.get_paginator("list_layer_versions").paginate(LayerName=layer.name)
            found = next(
                (
                    version
                    for page in pages
                    for version in page["LayerVersions"]
                    if version.get("Description") == layer_description(layer.sha256)
                ),
                None,
            )
        what = f"layer {layer.name}"
        if found is None:
            publish = _step(self._publish_layer)
            plan.add("create", what, "version published from its zip", layer.zipped_bytes, publish)
            return
        self._layer_arn = found["LayerVersionArn"]
        self._reused = (
            f"layer {layer.name} version {found['Version']} reused: published before, not uploaded"
        )
        plan.unchanged(what, f"version {found['Version']} reused")

    def _plan_function(self, plan: Plan, current: dict[str, Any] | None, changed: bool) -> None:
        """Create `$LATEST`, or update its code and its settings where they differ."""
        artifact, name = self._artifact, self._name
        direct = None if self._s3 else artifact.zipped_bytes  # the zip travels in this call
        if artifact.image_uri:  # the platform pulls the image: nothing travels with the call
            direct = None
        if current is None:
            owned = self._settings
            runs = f"image {artifact.image_uri}" if artifact.image_uri else owned["Runtime"]
            detail = f"{runs} {artifact.arch} {owned['MemorySize']} MB"
            create = _step(self._create_function, self.options.role_arn is None)
            plan.add("create", f"function {name}", detail, direct, run=create)
            return
        if changed:
            update = _step(self._update_code)
            plan.add("update", f"function {name} code", artifact.sha256[:12], direct, run=update)
        differs = drift(current, self._wanted())
        if differs:
            update = _step(steps.update_configuration, self._clients, name, self._wanted())
            plan.add("update", f"function {name} configuration", ", ".join(differs), run=update)
        if not changed and not differs:
            plan.unchanged(f"function {name}", artifact.sha256[:12])

    def _plan_alias(self, plan: Plan, live: dict[str, Any] | None) -> None:
        """Publish and move the alias, unless the alias already serves this code and settings.

        The alias is compared, not `$LATEST`: a deploy that stopped after updating `$LATEST`
        left the alias on the old version, and the next deploy must still publish and move it.
        """
        if live is not None and self._serves(live):  # unchanged, unless a canary is left
            rollout.plan_serving(plan, self._clients, self._name, live["Version"])
            return
        plan.add("create", "version", "published from $LATEST", run=_step(self._publish))
        move = _step(self._point_alias, live["Version"] if live else None)
        if live is None:
            plan.add("create", f"alias {LAMBDA_ALIAS}", "-> the new version", run=move)
        else:
            detail = f"version {live['Version']} -> the new version"
            plan.add("update", f"alias {LAMBDA_ALIAS}", detail, run=move)

    def _plan_url(self, plan: Plan, target: Target, alias_exists: bool) -> None:
        """The alias's Function URL with the wanted auth, and the resource policy to match."""
        awslambda, name = self._clients.awslambda, self._name
        auth = _auth(target.public)
        detail = f"auth {auth}" + (" (public)" if target.public else "")
        what = f"Function URL on {LAMBDA_ALIAS}"
        config, present = None, set()
        if alias_exists:
            where = {"FunctionName": name, "Qualifier": LAMBDA_ALIAS}
            with contextlib.suppress(awslambda.exceptions.ResourceNotFoundException):
                config = awslambda.get_function_url_config(**where)
            with contextlib.suppress(awslambda.exceptions.ResourceNotFoundException):
                policy = json.loads(awslambda.get_policy(**where)["Policy"])
                present = {statement["Sid"] for statement in policy.get("Statement", [])}
        if config is None:
            set_url = _step(steps.set_url, self._clients, name, auth, False)
            plan.add("create", what, detail, run=set_url)
        elif config["AuthType"] != auth:
            set_url = _step(steps.set_url, self._clients, name, auth, True)
            plan.add("update", what, detail, run=set_url)
        else:
            plan.unchanged(what, detail)
        for sid in steps.PUBLIC_STATEMENTS:
            if target.public and sid not in present:
                run = _step(steps.open_permission, self._clients, name, sid)
                plan.add("open", f"permission {sid}", "anyone may invoke the URL", run=run)
            elif target.public:
                plan.unchanged(f"permission {sid}", "anyone may invoke the URL")
            elif sid in present:
                run = _step(steps.close_permission, self._clients, name, sid)
                plan.add("close", f"permission {sid}", "public access removed", run=run)

    # --- the actions that need what an earlier step made --------------------------------------

    def _serves(self, config: dict[str, Any]) -> bool:
        """Whether a version (or the alias) runs this artifact with the wanted settings."""
        return config["CodeSha256"] == self._code_sha and not drift(config, self._wanted())

    def _expected_sha(self, current: dict[str, Any] | None) -> str | None:
        """The CodeSha256 Lambda reports for this artifact: for a zip, computed here; for an
        image, Lambda's own, known once `$LATEST` holds this image (None until then)."""
        uri = self._artifact.image_uri
        if uri is None:
            return code_sha256(self._artifact)
        if current is None:
            return None
        code = self._clients.awslambda.get_function(FunctionName=self._name)["Code"]
        return current["CodeSha256"] if code.get("ImageUri") == uri else None

    def _wanted(self) -> dict[str, Any]:
        """The settings to compare and to set; a layer still to publish has no ARN yet. An
        image carries its runtime, handler and libraries: no layers."""
        if self._artifact.image_uri:
            return {**self._settings, "Role": self._role_arn}
        layers = []
        if self._artifact.layer is not None:
            layers = [self._layer_arn or f"(layer {self._artifact.layer.name}, to publish)"]
        return {**self._settings, "Role": self._role_arn, "Layers": layers}

    def _code(self) -> dict[str, Any]:
        """The Code argument: the image by digest, the S3 object uploaded, or the bytes."""
        if self._artifact.image_uri:
            return {"ImageUri": self._artifact.image_uri}
        if self._s3:
            bucket, key = self._s3
            return {"S3Bucket": bucket, "S3Key": key}
        return {"ZipFile": self._artifact.path.read_bytes()}

    def _create_role(self, role: str) -> None:
        self._role_arn = steps.create_role(self._clients, role, self._name)

    def _publish_layer(self) -> None:
        layer, runtime = self._artifact.layer, self._settings["Runtime"]
        assert layer is not None
        self._layer_arn = steps.publish_layer(
            self._clients, layer, layer_description(layer.sha256), runtime, self._artifact.arch
        )

    def _create_function(self, fresh_role: bool) -> None:
        arch, settings = self._artifact.arch, self._wanted()
        if self._artifact.image_uri:
            settings["PackageType"] = "Image"
        steps.create_function(self._clients, self._name, settings, arch, self._code(), fresh_role)

    def _update_code(self) -> None:
        steps.update_code(self._clients, self._name, self._artifact.arch, self._code())

    def _publish(self) -> None:
        if self._artifact.image_uri:  # Lambda's hash of the image `$LATEST` now holds
            latest = self._clients.awslambda.get_function_configuration(FunctionName=self._name)
            self._code_sha = latest["CodeSha256"]
        assert self._code_sha is not None
        self._version = steps.publish(self._clients, self._name, self._code_sha)

    def _point_alias(self, previous: str | None) -> None:
        assert self._version, "the version step runs before the alias step"
        steps.point_alias(self._clients, self._name, self._version, previous)


def _exists(head: Callable[[], object], what: str) -> bool:
    """A HEAD request's answer: True, False on 404, one sentence for anything else (403)."""
    from botocore.exceptions import ClientError

    try:
        head()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchBucket", "NoSuchKey", "NotFound"):
            return False
        raise DeployError(f"cannot use {what}: {error}") from None
    return True


def _auth(public: bool) -> str:
    return "NONE" if public else "AWS_IAM"


def _role_name(function: str) -> str:
    return f"bertless-{function}"[:64]


def _signed_headers(session: boto3.session.Session, region: str, url: str) -> dict[str, str]:
    """SigV4 headers for a GET on an AWS_IAM Function URL, signed with the deploying identity."""
    sign = sigv4.signer(region, session.get_credentials())
    assert sign is not None  # the preflight refused a session without credentials
    return sign("GET", url.rstrip("/") + "/health", None, {})
