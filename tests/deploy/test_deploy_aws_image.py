"""`bertless deploy aws IMAGE_REPORT`: a Lambda function from a container image, on moto's server.

The image report is what `bertless package aws --format image --push` writes; here its packaged
files are a real artifact's report and its digest one made up, since moto does not pull images
(its Lambda takes any ImageUri unless told to look in its own ECR). What is checked is Lambda's
documented shape: CreateFunction with `PackageType: Image` and `Code.ImageUri`, no runtime,
handler or layers; the same digest deploys as nothing to change; a new digest updates the code,
publishes a version and moves the alias.
"""

from __future__ import annotations

import pytest
from deploy_fixtures import write_image_report
from test_deploy_aws_layers import aws_env, awslambda, run, steps  # noqa: F401

from bertless.deploy.plan import Show
from bertless.packaging.image import read_image
from bertless.packaging.package import package
from bertless.packaging.report import PackagingError

REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/minilm"


@pytest.fixture(scope="module")
def packaged(minilm_int8_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("image-artifact")
    return package("aws", minilm_int8_bundle, out, python="3.11", prove=False, layers=True)


def image_report(packaged, folder, seed: str, pushed: bool = True):
    """An image report on Lambda's Python base, for a made-up digest: its path and digest."""
    base = "public.ecr.aws/lambda/python:3.11"
    return write_image_report(packaged, folder, seed, REPOSITORY, base, 130_000_000, pushed)


def test_an_image_deploys_with_package_type_image_and_the_same_digest_changes_nothing(
    packaged,
    moto_endpoint,
    awslambda,  # noqa: F811
    tmp_path,
):
    report, digest = image_report(packaged, tmp_path, "one")
    artifact = read_image(report)
    uri = f"{REPOSITORY}@{digest}"
    assert artifact.image_uri == uri and artifact.zipped_bytes == 0

    shown, none = run(artifact, "minilm-image", moto_endpoint, Show())
    names = [f["FunctionName"] for f in awslambda.list_functions()["Functions"]]
    assert none is None and "minilm-image" not in names  # a dry run (moto is shared by the session)
    plan, result = run(artifact, "minilm-image", moto_endpoint)
    assert steps(plan) == steps(shown)
    create = next(s for s in plan.steps if s.what == "function minilm-image")
    assert create.action == "create" and f"image {uri}" in create.detail
    assert not [s for s in plan.steps if s.what.startswith(("layer", "s3://"))]

    function = awslambda.get_function(FunctionName="minilm-image")
    config = function["Configuration"]
    assert config["PackageType"] == "Image" and function["Code"]["ImageUri"] == uri
    assert "Runtime" not in config and "Handler" not in config and not config.get("Layers")
    alias = awslambda.get_alias(FunctionName="minilm-image", Name="live")
    assert alias["FunctionVersion"] == result.version == "1"

    again, _ = run(artifact, "minilm-image", moto_endpoint)
    assert {s.action for s in again.steps} == {"unchanged"}, steps(again)

    newer, newer_digest = image_report(packaged, tmp_path, "two")
    plan, result = run(read_image(newer), "minilm-image", moto_endpoint)
    assert ("update", "function minilm-image code") in steps(plan)
    function = awslambda.get_function(FunctionName="minilm-image")
    assert function["Code"]["ImageUri"] == f"{REPOSITORY}@{newer_digest}"
    assert result.version == "2"


def test_an_image_never_pushed_is_refused_in_one_sentence(packaged, tmp_path):
    report, _ = image_report(packaged, tmp_path, "local", pushed=False)
    with pytest.raises(PackagingError, match="describes an image that was never pushed"):
        read_image(report)
    with pytest.raises(PackagingError, match="is not an image report"):
        read_image(packaged.report_path)
