"""`bertless deploy gcp --min-instances --max-instances --concurrency --cpu`.

Against the Cloud Functions v2 STAND-IN of test_deploy_gcp (not Google's service), taught here
the four ServiceConfig fields in their documented shapes
(https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#ServiceConfig):
minInstanceCount and maxInstanceCount integers, maxInstanceRequestConcurrency 1 to 1000 with at
least 1 vCPU above 1, availableCpu a string; and their updateMask paths.
"""

from __future__ import annotations

import pytest
from test_deploy_gcp import (  # noqa: F401 (google_env, upload_bucket: fixtures)
    MASK_PATHS,
    CloudFunctionsStandIn,
    deployer,
    google_env,
    target,
    upload_bucket,
)

from bertless.deploy import gcp
from bertless.deploy.plan import Apply, PreflightError
from bertless.deploy.plan import deploy as run_deploy

SCALE_PATHS = {
    "serviceConfig.minInstanceCount",
    "serviceConfig.maxInstanceCount",
    "serviceConfig.maxInstanceRequestConcurrency",
    "serviceConfig.availableCpu",
}


class ScalingFunctions(CloudFunctionsStandIn):
    """The stand-in, also taking the scale fields of ServiceConfig and their mask paths."""

    def __init__(self, bucket):
        super().__init__(bucket)
        self.sent: list[tuple[str, dict, list[str]]] = []  # (method, serviceConfig, mask)

    def check_function(self, body, name):
        super().check_function(body, name)
        service = body["serviceConfig"]
        for key in ("minInstanceCount", "maxInstanceCount", "maxInstanceRequestConcurrency"):
            assert isinstance(service.get(key, 0), int), f"{key} is an integer"
        assert 1 <= service.get("maxInstanceRequestConcurrency", 1) <= 1000, "concurrency"
        assert isinstance(service.get("availableCpu", "1"), str), "availableCpu is a string"
        if service.get("maxInstanceRequestConcurrency", 1) > 1:
            assert float(service.get("availableCpu", "0")) >= 1, "concurrency > 1 needs 1 vCPU"

    def update(self, name, call):
        mask = call.query.get("updateMask", [""])[0].split(",")
        assert set(mask) <= MASK_PATHS | SCALE_PATHS, f"unknown paths {set(mask) - MASK_PATHS}"
        self.sent.append(("PATCH", call.body["serviceConfig"], mask))
        self.check_function(call.body, name)
        return 200, self.operation(name, call.body)

    def create(self, path, call):
        self.sent.append(("POST", call.body["serviceConfig"], []))
        return super().create(path, call)


@pytest.fixture
def scaling(upload_bucket, google_env, serve_stand_in):  # noqa: F811
    api = ScalingFunctions(upload_bucket)
    with serve_stand_in(api) as server:
        api.url = server.url
        server.api = api
        yield server
    assert server.violations == []


def deploy_scaled(artifact, server, name, **scale):
    options = gcp.GcpOptions(project=deployer().options.project, **scale)
    made = gcp.GcpDeployer(options, deployer().credentials)
    return run_deploy(made, artifact, target(server, name, memory_mb=1024), Apply())


def test_scale_fields_are_sent_on_create_and_patched_by_mask_when_changed(artifacts, scaling):
    artifact = artifacts("gcp", concurrency=8)  # packaged, and its memory measured, for 8
    scale = {"min_instances": 1, "max_instances": 5, "concurrency": 8, "cpu": "1"}
    deploy_scaled(artifact, scaling, "scaled", **scale)
    [(method, service, _)] = scaling.api.sent
    assert method == "POST"
    assert {k: service[k] for k in ("minInstanceCount", "maxInstanceCount")} == {
        "minInstanceCount": 1,
        "maxInstanceCount": 5,
    }
    assert service["maxInstanceRequestConcurrency"] == 8
    assert service["availableCpu"] == "1"

    again = deploy_scaled(artifact, scaling, "scaled", **scale)
    assert [s.action for s in again.plan.steps if s.what == "function scaled"] == ["unchanged"]

    changed = deploy_scaled(artifact, scaling, "scaled", **{**scale, "min_instances": 2})
    [step] = [s for s in changed.plan.steps if s.what == "function scaled"]
    assert step.action == "update" and step.detail == "min instances 2"
    method, service, mask = scaling.api.sent[-1]
    assert method == "PATCH" and service["minInstanceCount"] == 2
    assert set(mask) >= SCALE_PATHS


def test_without_the_flags_no_scale_field_is_sent(artifacts, scaling):
    deploy_scaled(artifacts("gcp"), scaling, "plain")
    [(_, service, _)] = scaling.api.sent
    assert not {"minInstanceCount", "maxInstanceCount", "availableCpu"} & set(service)
    assert "maxInstanceRequestConcurrency" not in service


@pytest.mark.parametrize(
    ("scale", "words"),
    [
        ({"concurrency": 8}, "only with at least 1 vCPU, and 1024 MB gets 0.583: pass --cpu 1"),
        ({"min_instances": -1}, "0 or more"),
        ({"min_instances": 3, "max_instances": 2}, "at least --min-instances"),
        ({"concurrency": 1001, "cpu": "2"}, "1 to 1000"),
        ({"cpu": "lots"}, "a number of vCPUs"),
    ],
)
def test_what_the_api_would_refuse_is_one_sentence_before_any_request(
    artifacts,
    recorder,
    google_env,  # noqa: F811 (the fixture imported above)
    scale,
    words,
):
    with pytest.raises(PreflightError, match=words):
        deploy_scaled(artifacts("gcp"), recorder, "refused", **scale)
    assert recorder.calls == []


def test_the_concurrency_an_artifact_was_packaged_for_is_deployed_unless_one_is_asked(
    artifacts, scaling
):
    packaged = artifacts("gcp", concurrency=8)  # its memory measured with 8 requests at once
    deploy_scaled(packaged, scaling, "packaged", cpu="1")
    deploy_scaled(packaged, scaling, "asked", cpu="1", concurrency=4)
    deploy_scaled(artifacts("gcp"), scaling, "one-at-a-time", cpu="1")
    [packaged_for, asked, one] = [service for _, service, _ in scaling.api.sent]
    assert packaged_for["maxInstanceRequestConcurrency"] == 8
    assert asked["maxInstanceRequestConcurrency"] == 4
    assert "maxInstanceRequestConcurrency" not in one  # Google's own default: one


def test_a_packaged_concurrency_without_a_whole_vcpu_is_refused_naming_both(
    artifacts,
    recorder,
    google_env,  # noqa: F811 (the fixture imported above)
):
    with pytest.raises(PreflightError, match=r"pass --cpu 1 .*packaged for 8 requests at once"):
        deploy_scaled(artifacts("gcp", concurrency=8), recorder, "refused")
    assert recorder.calls == []
