"""`bertless deploy gcp NAME-image.json`: a Cloud Run service from a pushed image.

Against a STAND-IN of the Cloud Run Admin API v2 (no emulator exists): it keeps services and
operations in memory and refuses, as a 400 recorded for the test, any request that breaks the
documented shape (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services):
create with `?serviceId=`, a template whose one container names the image and listens on 8080,
patch on the service's own name, operations polled by name.
"""

from __future__ import annotations

import copy

import google.oauth2.credentials
import pytest
from deploy_fixtures import write_image_report

from bertless.deploy.cloudrun import CloudRunDeployer
from bertless.deploy.gcp import GcpOptions
from bertless.deploy.plan import Apply, Show, Target
from bertless.deploy.plan import deploy as run_deploy
from bertless.packaging.image import read_image
from bertless.packaging.package import package

PROJECT, REGION = "bertless-tests", "us-central1"
PARENT = f"/v2/projects/{PROJECT}/locations/{REGION}"
REPOSITORY = f"{REGION}-docker.pkg.dev/{PROJECT}/models/minilm"
BASE = "docker.io/library/python:3.11-slim"  # the base the image report names


class CloudRunStandIn:
    """STAND-IN of run.googleapis.com v2: services, their operations, their IAM policies."""

    def __init__(self) -> None:
        self.services: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.revisions = 0

    def __call__(self, call):
        path = call.path
        if path.startswith(f"{PARENT}/operations/"):
            return 200, self.operations[path.removeprefix("/v2/")]
        if path.endswith(":getIamPolicy"):
            return 200, self.policies.get(path.removesuffix(":getIamPolicy"), {})
        if path.endswith(":setIamPolicy"):
            self.policies[path.removesuffix(":setIamPolicy")] = call.body["policy"]
            return 200, call.body["policy"]
        if call.method == "POST" and path == f"{PARENT}/services":
            (service_id,) = call.query["serviceId"]
            return self.rollout(f"{PARENT}/services/{service_id}", call.body)
        assert path.startswith(f"{PARENT}/services/"), f"unknown path {path}"
        if call.method == "GET":
            found = self.services.get(path)
            return (200, found) if found else (404, {"error": {"code": 404, "message": "none"}})
        assert call.method == "PATCH" and path in self.services, "patch names a service"
        return self.rollout(path, call.body)

    def rollout(self, path: str, body: dict):
        (container,) = body["template"]["containers"]
        assert "@sha256:" in container["image"], "the image is pinned by digest"
        assert container["ports"] == [{"containerPort": 8080}], "Cloud Run's default port"
        self.revisions += 1
        name = path.removeprefix("/v2/")
        revision = f"{name}/revisions/{name.rpartition('/')[2]}-{self.revisions:05d}"
        self.services[path] = {
            **copy.deepcopy(body),
            "name": name,
            "uri": f"https://{name.rpartition('/')[2]}-stand-in.a.run.app",
            "latestReadyRevision": revision,
        }
        operation = f"projects/{PROJECT}/locations/{REGION}/operations/{self.revisions}"
        self.operations[operation] = {"name": operation, "done": True, "response": {}}
        return 200, {"name": operation, "done": False}


@pytest.fixture(scope="module")
def packaged(minilm_int8_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("cloudrun-artifact")
    return package("gcp", minilm_int8_bundle, out, python="3.11", prove=False, image=True)


def image_report(packaged, folder, seed: str):
    """The image artifact of a made-up digest, and its URI as the platform should run it."""
    path, digest = write_image_report(packaged, folder, seed, REPOSITORY, BASE, 300_000_000)
    return read_image(path), f"{REPOSITORY}@{digest}"


def deploy(artifact, url: str, executor=None, **extra):
    plans = []
    deployer = CloudRunDeployer(
        GcpOptions(project=PROJECT), google.oauth2.credentials.Credentials(token="t")
    )
    to = Target(name="minilm", region=REGION, endpoint_url=url, smoke=False, **extra)
    result = run_deploy(deployer, artifact, to, executor or Apply(), shown=plans.append)
    return [(s.action, s.what, s.detail) for s in plans[0].steps], result


def test_a_cloud_run_service_runs_the_image_and_the_same_digest_changes_nothing(
    packaged, serve_stand_in, tmp_path
):
    api = CloudRunStandIn()
    artifact, uri = image_report(packaged, tmp_path, "one")
    with serve_stand_in(api) as server:
        shown, nothing = deploy(artifact, server.url, Show())
        assert nothing is None and api.services == {}
        steps, result = deploy(artifact, server.url)
        assert steps == shown
        assert steps[0][:2] == ("create", "service minilm") and f"image {uri}" in steps[0][2]
        service = api.services[f"{PARENT}/services/minilm"]
        (container,) = service["template"]["containers"]
        assert container["image"] == uri and container["resources"]["limits"]["cpu"] == "1"
        assert result.url == "https://minilm-stand-in.a.run.app" and result.version.endswith("1")

        again, _ = deploy(artifact, server.url)
        assert {action for action, _, _ in again} == {"unchanged"}

        newer, newer_uri = image_report(packaged, tmp_path, "two")
        steps, _ = deploy(newer, server.url, public=True)
        assert ("update", "service minilm", "image") in steps
        assert ("open", "public access", "roles/run.invoker for allUsers") in steps
        assert api.services[f"{PARENT}/services/minilm"]["template"]["containers"][0]["image"] == (
            newer_uri
        )
        policy = api.policies[f"{PARENT}/services/minilm"]
        assert {"role": "roles/run.invoker", "members": ["allUsers"]} in policy["bindings"]
    assert server.violations == []


def test_the_cli_sends_an_image_report_to_cloud_run_and_a_zip_to_cloud_functions(
    packaged, tmp_path
):
    from bertless.cli.deploy import _artifact, _deployer
    from bertless.cli.main import parser
    from bertless.deploy.gcp import GcpDeployer

    artifact, uri = image_report(packaged, tmp_path, "cli")
    args = parser().parse_args(["deploy", "gcp", str(artifact.path), "--region", REGION])
    assert isinstance(_deployer(args), CloudRunDeployer)
    assert _artifact(args, None).image_uri == uri
    args = parser().parse_args(["deploy", "gcp", str(packaged.report_path), "--region", REGION])
    assert type(_deployer(args)) is GcpDeployer
