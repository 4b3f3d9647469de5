"""The checks `deploy aws` makes before any request, and the direct-upload limit they use.

Everything here reads only the artifact, the flags and the local boto3 session, so a deploy that
cannot succeed stops with one sentence before it touches the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bertless.deploy import aws_warm as warm
from bertless.deploy.plan import PreflightError, Target
from bertless.deploy.preflight import check_artifact, check_name, check_region
from bertless.platforms import limits

if TYPE_CHECKING:
    import boto3

    from bertless.packaging.package import Artifact


def direct_upload_limit() -> int | None:
    """Lambda's zipped direct-upload cap (tests lower it through limits' documented override)."""
    return limits.package_limits("aws").zip_direct_upload.value


def over_direct_limit(artifact: Artifact) -> bool:
    """Whether the zip must go through S3 rather than travel in the create or update call."""
    limit = direct_upload_limit()
    return limit is not None and artifact.zipped_bytes > limit


def check(
    artifact: Artifact,
    target: Target,
    session: boto3.session.Session,
    *,
    bucket: str | None,
    snapstart: bool,
    provisioned: int,
) -> tuple[str, int]:
    """Every check that needs no request: name, region, artifact, size, credentials. Returns
    the region and the memory size to deploy with."""
    check_name("aws", target.name)
    memory = check_artifact(artifact, "aws", target.memory_mb)
    warm.check(artifact, snapstart, provisioned)
    region = target.region or session.region_name
    if not region:
        raise PreflightError("no AWS region: pass --region or set AWS_REGION")
    check_region("aws", region)
    if not 1 <= target.timeout_s <= limits.AWS.timeout_s.value:
        raise PreflightError(f"Lambda timeout must be 1 to {limits.AWS.timeout_s.value} s")
    if over_direct_limit(artifact) and not bucket:
        raise PreflightError(
            f"{artifact.path.name} is {artifact.zipped_bytes:,} bytes, over Lambda's direct "
            f"upload limit of {direct_upload_limit():,}; pass --bucket NAME to upload it through S3"
        )
    if session.get_credentials() is None:
        raise PreflightError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws configure`"
        )
    return region, memory
