"""`bertless deploy gcp --cpu-boost`: the function's Cloud Run service gets startupCpuBoost.

Against the Cloud Functions v2 STAND-IN of test_deploy_gcp (not Google's service), taught here a
Cloud Run Admin v2 Service in its documented shape
(https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services): a template
whose containers carry `resources` {limits, cpuIdle, startupCpuBoost}, an etag, and
`services.patch` of the whole resource answered with a long-running operation. A function
update here rebuilds the template without the boost: Google does not document whether it keeps
it, so the deploy must put it back.
"""

from __future__ import annotations

import pytest
from test_deploy_gcp import (  # noqa: F401 (google_env, upload_bucket: fixtures)
    CloudFunctionsStandIn,
    deployer,
    google_env,
    target,
    upload_bucket,
)

from bertless.deploy import gcp
from bertless.deploy.plan import Apply, PreflightError
from bertless.deploy.plan import deploy as run_deploy

IMAGE = "europe-west1-docker.pkg.dev/bertless-test/gcf-artifacts/boosted:version_1"


class BoostingRun(CloudFunctionsStandIn):
    """The stand-in, with each function's Cloud Run service template and its patch."""

    def __init__(self, bucket):
        super().__init__(bucket)
        self.templates: dict[str, dict] = {}
        self.patched: list[dict] = []  # the bodies of services.patch
        self.run_operations: set[str] = set()

    def finish(self, body):
        function = super().finish(body)
        service = function["serviceConfig"]["service"]
        memory = function["serviceConfig"]["availableMemory"]
        self.templates[service] = {  # a build: a fresh template, the boost not kept
            "containers": [
                {
                    "image": IMAGE,
                    "env": [{"name": "LOG_EXECUTION_ID", "value": "true"}],
                    "resources": {"limits": {"cpu": "0.5833", "memory": memory}, "cpuIdle": True},
                }
            ]
        }
        return function

    def service(self, name, call):
        if name not in self.revisions or call.method != "PATCH" or "updateMask" in call.query:
            status, found = super().service(name, call)
            if call.method == "GET" and status == 200:
                found = {**found, "template": self.templates[name], "etag": self.etag(name)}
            return status, found
        body = call.body
        assert body["name"] == name, "name does not match the path"
        assert body.get("etag") == self.etag(name), "the etag of the service as read"
        containers = body["template"]["containers"]
        for container in containers:
            resources = container["resources"]
            assert isinstance(resources.get("startupCpuBoost"), bool), "startupCpuBoost: bool"
            assert resources.get("cpuIdle") is True, "cpuIdle sent, or billing changes"
        self.patched.append(body)
        self.templates[name] = body["template"]
        short = name.rsplit("/", 1)[1]
        self.revisions[name].append(f"{short}-{len(self.revisions[name]) + 1:05d}-boost")
        location = name.split("/services/")[0]
        operation = f"{location}/operations/boost-{len(self.patched)}"
        self.run_operations.add(operation)
        return 200, {"name": operation, "done": False}

    def get_operation(self, op_name):
        if op_name in self.run_operations:
            return 200, {"name": op_name, "done": True, "response": {}}
        return super().get_operation(op_name)

    def etag(self, name):
        return f'"{len(self.revisions[name])}"'


@pytest.fixture
def boosting(upload_bucket, google_env, serve_stand_in):  # noqa: F811
    api = BoostingRun(upload_bucket)
    with serve_stand_in(api) as server:
        api.url = server.url
        server.api = api
        yield server
    assert server.violations == []


def deploy(artifact, server, name, **options):
    made = gcp.GcpDeployer(
        gcp.GcpOptions(project=deployer().options.project, **options), deployer().credentials
    )
    return run_deploy(made, artifact, target(server, name), Apply())


def steps(result):
    return {step.what: step.action for step in result.plan.steps}


def test_cpu_boost_is_set_on_the_functions_service_and_kept_across_deploys(artifacts, boosting):
    artifact = artifacts("gcp")
    first = deploy(artifact, boosting, "boosted", cpu_boost=True)
    assert steps(first)["startup CPU boost"] == "update"
    [body] = boosting.api.patched
    [container] = body["template"]["containers"]
    assert container["resources"]["startupCpuBoost"] is True
    assert container["image"] == IMAGE and container["env"], "the rest of the service kept"
    assert container["resources"]["limits"]["cpu"] == "0.5833"
    service = "projects/bertless-test/locations/europe-west1/services/boosted"
    assert boosting.api.shares(service.replace("services", "functions")) == {
        "boosted-00002-boost": 100
    }, "the boosted revision serves"

    again = deploy(artifact, boosting, "boosted", cpu_boost=True)
    assert steps(again)["startup CPU boost"] == "unchanged"
    assert len(boosting.api.patched) == 1


def test_a_function_update_that_drops_the_boost_gets_it_back(artifacts, boosting):
    deploy(artifacts("gcp"), boosting, "rebuilt", cpu_boost=True)
    updated = deploy(artifacts("gcp", memory_mb=2048), boosting, "rebuilt", cpu_boost=True)
    assert steps(updated)["function rebuilt"] == "update"
    assert steps(updated)["startup CPU boost"] == "update"
    assert len(boosting.api.patched) == 2
    service = "projects/bertless-test/locations/europe-west1/services/rebuilt"
    assert boosting.api.templates[service]["containers"][0]["resources"]["startupCpuBoost"]


def test_without_the_flag_the_service_is_not_touched(artifacts, boosting):
    result = deploy(artifacts("gcp"), boosting, "plain")
    assert "startup CPU boost" not in steps(result)
    assert boosting.api.patched == []


def test_cpu_boost_with_a_canary_is_one_sentence_before_any_request(artifacts, recorder):
    made = gcp.GcpDeployer(gcp.GcpOptions(project="p", cpu_boost=True), deployer().credentials)
    with pytest.raises(PreflightError, match="turn the boost on with a plain deploy"):
        run_deploy(made, artifacts("gcp"), target(recorder, "canary", canary=0.1), Apply())
    assert recorder.calls == []
