"""`bertless deploy aws` of an artifact with a runtime layer, against moto's server mode.

The int8 default model, packaged for Python 3.11, is split into a function zip and a layer zip,
both under the 50 MB direct upload: it deploys with no bucket. A second bundle has the same
runtime, so the same layer, and its deploy uploads only its function zip.
"""

from __future__ import annotations

import base64
import hashlib

import boto3
import pytest

from bertless.deploy import aws
from bertless.deploy.plan import Apply, Plan, Result, Show, Target, deploy
from bertless.packaging.layer import description
from bertless.packaging.package import package
from bertless.platforms import limits

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials for moto, and no way for boto3 to find real ones."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # a client left unpointed fails here
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv(limits.AWS_DIRECT_UPLOAD_ENV, raising=False)


@pytest.fixture
def awslambda(moto_endpoint, aws_env):
    return boto3.client("lambda", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture(scope="module")
def classifier_artifact(classifier_bundle, tmp_path_factory):
    """A second model with the same runtime, packaged with --layers (not proven: the packaging
    tests prove layered artifacts)."""
    out = tmp_path_factory.mktemp("classifier-artifact")
    return package("aws", classifier_bundle, out, python="3.11", prove=False, layers=True)


def run(artifact, name: str, endpoint: str, executor=None) -> tuple[Plan, Result | None]:
    plans: list[Plan] = []
    to = Target(name=name, region=REGION, endpoint_url=endpoint, smoke=False)
    deployer = aws.AwsDeployer(aws.AwsOptions())  # no bucket
    result = deploy(deployer, artifact, to, executor or Apply(), shown=plans.append)
    return plans[0], result


def steps(plan: Plan) -> list[tuple[str, str]]:
    return [(step.action, step.what) for step in plan.steps]


def layer_sha(artifact) -> str:
    """Lambda's CodeSha256 of the layer zip, computed here from its bytes."""
    return base64.b64encode(hashlib.sha256(artifact.layer.path.read_bytes()).digest()).decode()


def test_int8_default_deploys_with_no_bucket_and_a_second_model_reuses_its_layer(
    packaged, classifier_artifact, moto_endpoint, awslambda
):
    first = packaged("aws", "int8", layers=True)
    layer = first.layer.name
    assert first.zipped_bytes > 20 * 2**20  # a real model: the function zip holds the bundle

    plan, result = run(first, "layered-minilm", moto_endpoint)

    assert ("create", f"layer {layer}") in steps(plan)
    assert not [s for s in plan.steps if s.what.startswith(("bucket", "s3://"))]
    config = awslambda.get_function_configuration(FunctionName="layered-minilm", Qualifier="live")
    (attached,) = config["Layers"]
    name, _, number = attached["Arn"].rpartition(":")
    assert name.endswith(f":layer:{layer}")
    published = awslambda.get_layer_version(LayerName=layer, VersionNumber=int(number))
    assert published["Content"]["CodeSha256"] == layer_sha(first)
    assert config["CodeSha256"] == aws.code_sha256(first)
    assert not [n for n in result.notes if "reused" in n]

    plan, result = run(classifier_artifact, "layered-classifier", moto_endpoint)

    assert ("unchanged", f"layer {layer}") in steps(plan)
    assert f"layer {layer} version 1 reused: published before, not uploaded" in result.notes
    create = next(s for s in plan.steps if s.what == "function layered-classifier")
    assert create.size == classifier_artifact.zipped_bytes  # only the function zip travels
    assert len(awslambda.list_layer_versions(LayerName=layer)["LayerVersions"]) == 1
    config = awslambda.get_function_configuration(
        FunctionName="layered-classifier", Qualifier="live"
    )
    assert [entry["Arn"] for entry in config["Layers"]] == [attached["Arn"]]

    plan, result = run(first, "layered-minilm", moto_endpoint)
    assert not plan.changed and not result.changed


def test_a_dry_run_of_a_layered_artifact_lists_the_steps_the_deploy_takes(
    classifier_artifact, moto_endpoint, awslambda
):
    layer = classifier_artifact.layer
    before = _versions(awslambda, layer.name)

    shown, nothing = run(classifier_artifact, "layered-dry-run", moto_endpoint, Show())
    assert nothing is None and _versions(awslambda, layer.name) == before  # nothing published
    done, _ = run(classifier_artifact, "layered-dry-run", moto_endpoint)

    assert steps(shown) == steps(done)
    versions = _versions(awslambda, layer.name)
    assert len(versions) == max(len(before), 1)
    assert all(v["Description"] == description(layer.sha256) for v in versions)


def _versions(awslambda, name: str) -> list[dict]:
    return awslambda.list_layer_versions(LayerName=name)["LayerVersions"]
