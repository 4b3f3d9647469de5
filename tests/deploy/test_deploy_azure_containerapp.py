"""`bertless deploy azure NAME-image.json`: an existing Functions app on Azure Container Apps
runs the pushed image.

Against a STAND-IN of ARM's Container Apps API (no emulator exists): it holds one app of `kind:
functionapp`, answers GET and PATCH at the resource's id with `api-version` 2024-03-01, makes a
new revision on each PATCH (provisioningState InProgress, then Succeeded on the next read), and
refuses off-shape requests as 400s recorded for the test.
"""

from __future__ import annotations

import copy

import pytest
from deploy_fixtures import write_image_report

from bertless.deploy.azure_app import AzureOptions
from bertless.deploy.azure_containerapp import ContainerAppDeployer
from bertless.deploy.plan import Apply, DeployError, Show, Target
from bertless.deploy.plan import deploy as run_deploy
from bertless.packaging.image import read_image
from bertless.packaging.package import package

SUBSCRIPTION, GROUP = "00000000-0000-0000-0000-0000000000aa", "bertless-tests"
APP = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.App/containerApps"
    "/minilm"
)
REPOSITORY = "bertless.azurecr.io/minilm"
BASE = "mcr.microsoft.com/azure-functions/python:4-python3.11"  # the base the image report names


class ContainerAppsStandIn:
    """STAND-IN of ARM for one Functions container app."""

    def __init__(self) -> None:
        self.revisions = 1
        self.settling = False
        self.app = {
            "id": APP,
            "name": "minilm",
            "kind": "functionapp",
            "location": "East US",
            "properties": {
                "provisioningState": "Succeeded",
                "latestReadyRevisionName": "minilm--0000001",
                "configuration": {
                    "ingress": {
                        "external": True,
                        "targetPort": 80,
                        "fqdn": "minilm.stand-in.azurecontainerapps.io",
                    }
                },
                "template": {
                    "containers": [
                        {
                            "name": "minilm",
                            "image": "mcr.microsoft.com/azure-functions/python:4-python3.11",
                            "resources": {"cpu": 1.0, "memory": "2Gi"},
                            "env": [{"name": "AzureWebJobsStorage", "value": "kept"}],
                        }
                    ],
                    "scale": {"minReplicas": 0, "maxReplicas": 10},
                },
            },
        }

    def __call__(self, call):
        assert call.query.get("api-version") == ["2024-03-01"], "Microsoft.App's api-version"
        if call.path != APP:
            return 404, {"error": {"code": "ResourceNotFound", "message": call.path}}
        if call.method == "GET":
            if self.settling:  # one read while the revision provisions
                self.settling = False
                answer = copy.deepcopy(self.app)
                answer["properties"]["provisioningState"] = "InProgress"
                return 200, answer
            return 200, self.app
        assert call.method == "PATCH", "an update is a PATCH of the app"
        template = call.body["properties"]["template"]
        assert template["scale"] == self.app["properties"]["template"]["scale"], "scale kept"
        (container,) = template["containers"]
        assert "@sha256:" in container["image"], "the image is pinned by digest"
        assert container["resources"] == {"cpu": 1.0, "memory": "2Gi"}, "resources kept"
        self.app["properties"]["template"] = template
        self.revisions += 1
        self.app["properties"]["latestReadyRevisionName"] = f"minilm--{self.revisions:07d}"
        self.settling = True
        return 202, {}


@pytest.fixture(scope="module")
def packaged(minilm_int8_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("containerapp-artifact")
    return package("azure", minilm_int8_bundle, out, python="3.11", prove=False, image=True)


def image_report(packaged, folder, seed: str):
    """The image artifact of a made-up digest, and its URI as the platform should run it."""
    path, digest = write_image_report(packaged, folder, seed, REPOSITORY, BASE, 230_000_000)
    return read_image(path), f"{REPOSITORY}@{digest}"


class Token:
    def get_token(self, scope: str):
        return type("AccessToken", (), {"token": "t", "expires_on": 0})()


def deploy(artifact, url: str, executor=None, name: str = "minilm", **extra):
    plans = []
    options = AzureOptions(subscription=SUBSCRIPTION, resource_group=GROUP)
    to = Target(name=name, endpoint_url=url, smoke=False, **extra)
    result = run_deploy(
        ContainerAppDeployer(options, Token()),
        artifact,
        to,
        executor or Apply(),
        shown=plans.append,
    )
    return [(s.action, s.what, s.detail) for s in plans[0].steps], result


def test_a_functions_container_app_runs_the_image_and_the_same_digest_changes_nothing(
    packaged, serve_stand_in, tmp_path
):
    api = ContainerAppsStandIn()
    artifact, uri = image_report(packaged, tmp_path, "one")
    with serve_stand_in(api) as server:
        shown, nothing = deploy(artifact, server.url, Show())
        assert nothing is None and api.revisions == 1
        steps, result = deploy(artifact, server.url)
        assert steps == shown == [("update", "container app minilm", "image, environment")]
        (container,) = api.app["properties"]["template"]["containers"]
        assert container["image"] == uri
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {"AzureWebJobsStorage": "kept", "BERTLESS_PUBLIC": "0"}
        assert result.url == "https://minilm.stand-in.azurecontainerapps.io"
        assert result.version == "minilm--0000002" and result.auth == "function key"

        again, _ = deploy(artifact, server.url)
        assert again == [("unchanged", "container app minilm", f"image {uri}")]

        newer, newer_uri = image_report(packaged, tmp_path, "two")
        steps, result = deploy(newer, server.url, public=True)
        assert steps == [("update", "container app minilm", "image, environment")]
        assert api.app["properties"]["template"]["containers"][0]["image"] == newer_uri
        assert result.version == "minilm--0000003" and result.auth == "anonymous"

        with pytest.raises(DeployError, match="container app other does not exist"):
            deploy(newer, server.url, name="other")
    assert server.violations == []


def test_the_cli_sends_an_image_report_to_the_container_app_deployer(packaged, tmp_path):
    from bertless.cli.deploy import _deployer
    from bertless.cli.main import parser
    from bertless.deploy.azure import AzureDeployer

    artifact, _ = image_report(packaged, tmp_path, "cli")
    args = parser().parse_args(["deploy", "azure", str(artifact.path)])
    assert isinstance(_deployer(args), ContainerAppDeployer)
    args = parser().parse_args(["deploy", "azure", str(packaged.report_path)])
    assert type(_deployer(args)) is AzureDeployer
