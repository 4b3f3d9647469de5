"""`bertless deploy azure --always-ready N --instance-memory MB --concurrency N` on a Flex app.

Against the ARM STAND-IN of test_deploy_azure (not Microsoft's service), taught here one more
call: PATCH of the site with `properties.functionAppConfig`, whose body it checks against
Microsoft.Web/sites 2023-12-01's FunctionsScaleAndConcurrency (alwaysReady [{name,
instanceCount}], instanceMemoryMB, triggers.http.perInstanceConcurrency) and which must send back
the deployment storage and runtime as they were.
"""

from __future__ import annotations

import copy

import pytest
from test_deploy_azure import (  # noqa: F401 (arm, blob_env, flex: fixtures)
    APP,
    ArmStandIn,
    StandInCredential,
    arm,
    blob_env,
    deploy,
    flex,
    options,
)

from bertless.deploy import azure, azure_flex
from bertless.deploy.plan import Apply, DeployError, PreflightError, Target
from bertless.deploy.plan import deploy as run_deploy

ALLOWED = {"alwaysReady", "instanceMemoryMB", "maximumInstanceCount", "triggers"}


class ScalingArm(ArmStandIn):
    """The ARM stand-in, also answering the PATCH that changes a Flex app's scale settings."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.patches: list[dict] = []

    def site_call(self, name, rest, call):
        if call.method == "PATCH" and rest == "" and "properties" in call.body:
            return self.scale(name, call.body)
        return super().site_call(name, rest, call)

    def scale(self, name, body):
        config = body["properties"]["functionAppConfig"]
        site = self.sites[name]["properties"]
        old = site["functionAppConfig"]
        assert config["deployment"] == old["deployment"], "deployment storage sent back"
        assert config["runtime"] == old["runtime"], "runtime sent back"
        scale = config["scaleAndConcurrency"]
        assert set(scale) <= ALLOWED, f"unknown fields {set(scale) - ALLOWED}"
        assert scale["instanceMemoryMB"] in (512, 2048, 4096), "instance memory size"
        for group in scale.get("alwaysReady", []):
            assert set(group) == {"name", "instanceCount"}, "alwaysReady entry"
            assert isinstance(group["instanceCount"], int)
        http = scale.get("triggers", {}).get("http", {})
        assert set(http) <= {"perInstanceConcurrency"}
        self.patches.append(copy.deepcopy(body))
        site["functionAppConfig"] = config
        return 200, self.sites[name]


@pytest.fixture
def scaling(serve_stand_in, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setattr(azure_flex, "POLL_S", 0.01)
    monkeypatch.setattr(azure, "_default_credential", StandInCredential)
    api = ScalingArm(flex="3.12")
    with serve_stand_in(api) as server:
        api.serve_scm(server.url)
        server.api = api
        yield server
    assert server.violations == []


def deploy_scaled(artifact, server, **scale):
    target = Target(name=APP, endpoint_url=server.url, smoke=False)
    deployer = azure.AzureDeployer(options(**scale), StandInCredential())
    return run_deploy(deployer, artifact, target, Apply())


def test_always_ready_memory_and_concurrency_are_one_patch_and_a_repeat_changes_nothing(
    artifacts, scaling
):
    artifact = artifacts("azure", concurrency=8)  # packaged, and its memory measured, for 8
    scale = {"always_ready": 1, "instance_memory_mb": 4096, "concurrency": 8}
    first = deploy_scaled(artifact, scaling, **scale)
    [step] = [s for s in first.plan.steps if s.what == "scale and concurrency"]
    assert step.action == "update"
    assert step.detail == (
        "instance memory 2048 -> 4096 MB, always ready 0 -> 1, HTTP concurrency None -> 8"
    )
    [patch] = scaling.api.patches
    sent = patch["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert sent == {
        "maximumInstanceCount": 100,  # kept as the app had it
        "instanceMemoryMB": 4096,
        "alwaysReady": [{"name": "http", "instanceCount": 1}],
        "triggers": {"http": {"perInstanceConcurrency": 8}},
    }
    again = deploy_scaled(artifact, scaling, **scale)
    [step] = [s for s in again.plan.steps if s.what == "scale and concurrency"]
    assert step.action == "unchanged"
    assert len(scaling.api.patches) == 1


def test_without_the_flags_the_scale_settings_are_left_alone(artifacts, flex):  # noqa: F811
    result = deploy(artifacts("azure"), flex)
    assert "scale and concurrency" not in [s.what for s in result.plan.steps]


def test_a_linux_consumption_app_refuses_flex_settings(artifacts, arm, blob_env):  # noqa: F811
    with pytest.raises(DeployError, match="is a Linux Consumption app: --always-ready"):
        deploy_scaled(artifacts("azure"), arm, always_ready=1)
    assert [c for c in arm.calls if c.method not in ("GET", "POST")] == []


@pytest.mark.parametrize(
    ("scale", "words"),
    [
        ({"instance_memory_mb": 1024}, "512, 2,048, 4,096 MB; got --instance-memory 1024"),
        ({"always_ready": -1}, "0 or more"),
        ({"concurrency": 0}, "1 to 1000"),
    ],
)
def test_values_flex_does_not_take_are_refused_before_any_request(
    artifacts, recorder, scale, words
):
    with pytest.raises(PreflightError, match=words):
        deploy_scaled(artifacts("azure"), recorder, **scale)
    assert recorder.calls == []


def test_a_flex_app_takes_the_concurrency_its_artifact_was_packaged_for(artifacts, scaling):
    packaged = artifacts("azure", concurrency=8)  # its memory measured with 8 requests at once
    first = deploy_scaled(packaged, scaling)
    [step] = [s for s in first.plan.steps if s.what == "scale and concurrency"]
    assert step.detail == "HTTP concurrency None -> 8"
    asked = deploy_scaled(packaged, scaling, concurrency=4)
    [step] = [s for s in asked.plan.steps if s.what == "scale and concurrency"]
    assert step.detail == "HTTP concurrency 8 -> 4"
    sent = [p["properties"]["functionAppConfig"] for p in scaling.api.patches]
    concurrency = [s["scaleAndConcurrency"]["triggers"]["http"] for s in sent]
    assert [c["perInstanceConcurrency"] for c in concurrency] == [8, 4]


def test_a_linux_consumption_app_takes_a_concurrent_artifact_as_it_is(
    artifacts,
    arm,  # noqa: F811
    blob_env,  # noqa: F811
):
    result = deploy_scaled(artifacts("azure", concurrency=8), arm)
    assert "scale and concurrency" not in [s.what for s in result.plan.steps]
    assert not [c for c in arm.calls if "functionAppConfig" in str(c.body)]
