"""`bertless deploy azure`: the package goes to Azurite (a real Blob Storage emulator) through
azure-storage-blob; the control-plane calls go to a STAND-IN for Azure Resource Manager, which has
no emulator, and, for Flex Consumption apps, for the app's Kudu (SCM) OneDeploy endpoint.

The stand-in below is not Microsoft's service: it is a small http.server app answering the ARM
calls a deploy makes (Microsoft.Web/sites 2023-12-01: get, config/web, config/appsettings/list,
config/appsettings PUT, PATCH identity, syncfunctiontriggers, host/default/listkeys;
Microsoft.Authorization/roleAssignments 2022-04-01 GET and PUT) and the OneDeploy calls (POST
/api/publish, GET /api/deployments/ID, in the shapes azure-cli and azd use: see
bertless.deploy.azure_flex) in their documented shapes, and CHECKING what it receives: the bearer
token, the api-version, the body shapes, app settings as strings, a role assignment for the app's
own identity at the container's scope, a zip body with Content-Type application/zip and
RemoteBuild=false, and no WEBSITE_RUN_FROM_PACKAGE on a Flex app. A request that breaks those
rules is answered 400 and listed in `violations`, which every test asserts is empty. What it
cannot show is how the real services behave beyond those shapes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from bertless.deploy import azure, azure_app, azure_blob, azure_flex
from bertless.deploy.plan import (
    ARTIFACT_SHA_SETTING,
    Apply,
    DeployError,
    Plan,
    PreflightError,
    Result,
    Show,
    Target,
)
from bertless.deploy.plan import deploy as run_deploy

if TYPE_CHECKING:
    from deploy_fixtures import Call


SUBSCRIPTION, GROUP, APP = "00000000-0000-0000-0000-000000000001", "rg-bertless", "bertless-app"
TOKEN = "stand-in-arm-token"
FUNCTION_KEY = "k3y-" + uuid.uuid4().hex  # what the stand-in hands out; must be printed once only
SITES = re.compile(
    rf"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft\.Web/sites/"
    r"(?P<name>[^/]+)(?P<rest>/.*)?"
)
ROLE = re.compile(
    rf"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft\.Storage/"
    r"storageAccounts/(?P<account>[^/]+)/blobServices/default/containers/(?P<container>[^/]+)"
    r"/providers/Microsoft\.Authorization/roleAssignments/(?P<id>[^/]+)"
)


NOT_THERE = 404  # a OneDeploy deployment not listed (yet, or no longer)


class ArmStandIn:
    """Azure Resource Manager, as far as a deploy uses it. Not Microsoft's code."""

    def __init__(self, stack: str = "Python|3.12", flex: str | None = None):
        """`flex`: the Python version of a Flex Consumption app; None for Linux Consumption."""
        self.sites = {
            APP: {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
                f"Microsoft.Web/sites/{APP}",
                "name": APP,
                "kind": "functionapp,linux",
                "location": "West Europe",
                "properties": {
                    "defaultHostName": f"{APP}.azurewebsites.net",
                    "hostNameSslStates": [
                        {"name": f"{APP}.azurewebsites.net", "hostType": "Standard"},
                        {"name": f"{APP}.scm.azurewebsites.net", "hostType": "Repository"},
                    ],
                    **({"functionAppConfig": flex_config(flex)} if flex else {}),
                },
            }
        }
        self.stack = stack
        self.settings = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage__accountName": "x",
        }
        self.roles: dict[str, dict] = {}
        self.flex = flex is not None
        self.published: list[bytes] = []  # zips POSTed to OneDeploy
        self.outcome = (4, "")  # what a OneDeploy deployment ends with: (status, status_text)
        self.deployments: dict[str, list[int]] = {}  # id: statuses still to report
        self.before: list[int] = [1, 2]  # what a poll sees before the outcome; NOT_THERE: a 404

    def serve_scm(self, url: str) -> None:
        """Name this server as the app's SCM host, as ARM names the real one."""
        states = self.sites[APP]["properties"]["hostNameSslStates"]
        [scm] = [state for state in states if state["hostType"] == "Repository"]
        scm["name"] = url.removeprefix("http://")

    def __call__(self, call: Call) -> tuple[int, object]:
        assert call.headers.get("authorization") == f"Bearer {TOKEN}", "no bearer token"
        if call.path.startswith("/api/"):
            return self.kudu(call)
        version = call.query.get("api-version", [""])[0]
        role = ROLE.fullmatch(call.path)
        if role:
            assert version == "2022-04-01", f"roleAssignments api-version {version}"
            if call.method == "GET":
                found = self.roles.get(role["id"])
                return (200, {"id": call.path, "properties": found}) if found else (404, {})
            return self.assign(role, call)
        site = SITES.fullmatch(call.path)
        assert site, f"unknown path {call.path}"
        assert version == "2023-12-01", f"Microsoft.Web api-version {version}"
        name, rest = site["name"], site["rest"] or ""
        if name not in self.sites:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"{name} not found"}}
        return self.site_call(name, rest, call)

    def site_call(self, name: str, rest: str, call: Call) -> tuple[int, object]:
        site = self.sites[name]
        match call.method, rest:
            case "GET", "":
                return 200, site
            case "GET", "/config/web":
                return 200, {"properties": {"linuxFxVersion": self.stack}}
            case "POST", "/config/appsettings/list":
                return 200, {"properties": dict(self.settings)}
            case "PUT", "/config/appsettings":
                properties = call.body.get("properties")
                assert isinstance(properties, dict), "body must be {'properties': {...}}"
                assert all(isinstance(v, str) for v in properties.values()), "settings are strings"
                assert not (self.flex and "WEBSITE_RUN_FROM_PACKAGE" in properties), (
                    "App setting WEBSITE_RUN_FROM_PACKAGE is not supported on Flex Consumption"
                )
                self.settings = properties
                return 200, {"properties": properties}
            case "PATCH", "":
                identity = call.body.get("identity", {})
                assert "SystemAssigned" in identity.get("type", ""), "identity.type"
                site["identity"] = {"type": identity["type"], "principalId": str(uuid.uuid4())}
                return 200, site
            case "POST", "/syncfunctiontriggers":
                return 200, {}
            case "POST", "/host/default/listkeys":
                keys = {"masterKey": "m-" + uuid.uuid4().hex, "systemKeys": {}}
                return 200, {**keys, "functionKeys": {"default": FUNCTION_KEY}}
        raise AssertionError(f"no such call: {call.method} {rest}")

    def kudu(self, call: Call) -> tuple[int, object]:
        """OneDeploy on the app's SCM host: the answer to a publish is the deployment id."""
        assert self.flex, "OneDeploy is for Flex Consumption apps"
        if call.method == "POST" and call.path == "/api/publish":
            assert call.headers.get("content-type") == "application/zip", "Content-Type"
            assert call.query.get("RemoteBuild") == ["false"], "RemoteBuild=false"
            assert isinstance(call.body, bytes), "the zip as the body"
            self.published.append(call.body)
            deployment = str(uuid.uuid4())
            self.deployments[deployment] = [*self.before, self.outcome[0]]
            return 202, deployment
        deployment = call.path.removeprefix("/api/deployments/")
        assert call.method == "GET" and deployment in self.deployments, f"no {call.path}"
        statuses = self.deployments[deployment]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        if status == NOT_THERE:
            return 404, {}
        text = self.outcome[1] if status == self.outcome[0] else ""
        return 200, {"id": deployment, "status": status, "status_text": text, "complete": False}

    def assign(self, role: re.Match, call: Call) -> tuple[int, object]:
        uuid.UUID(role["id"])  # the assignment name must be a GUID
        properties = call.body["properties"]
        assert properties["roleDefinitionId"] == (
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
            f"{azure_blob.BLOB_READER_ROLE}"
        ), "only Storage Blob Data Reader"
        assert properties["principalId"] == self.sites[APP]["identity"]["principalId"], "principal"
        assert properties["principalType"] == "ServicePrincipal", "principalType"
        if role["id"] in self.roles:
            return 409, {"error": {"code": "RoleAssignmentExists", "message": "exists"}}
        self.roles[role["id"]] = {"container": role["container"], **properties}
        return 201, {"id": call.path, "properties": properties}


def flex_config(python: str) -> dict:
    """`properties.functionAppConfig` of a Flex Consumption app (Microsoft.Web 2023-12-01)."""
    return {
        "deployment": {
            "storage": {
                "type": "blobContainer",
                "value": "https://x.blob.core.windows.net/app-package",
                "authentication": {"type": "SystemAssignedIdentity"},
            }
        },
        "runtime": {"name": "python", "version": python},
        "scaleAndConcurrency": {"maximumInstanceCount": 100, "instanceMemoryMB": 2048},
    }


class StandInCredential:
    """A TokenCredential for the stand-in; production uses DefaultAzureCredential."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        assert scopes == ("https://management.azure.com/.default",)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def blob_env(monkeypatch, azurite_connection_string):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    monkeypatch.setattr(azure, "_default_credential", StandInCredential)
    return BlobServiceClient.from_connection_string(azurite_connection_string)


@pytest.fixture
def arm(serve_stand_in):
    api = ArmStandIn()
    with serve_stand_in(api) as server:
        server.api = api
        yield server
    assert server.violations == []


@pytest.fixture
def flex(serve_stand_in, monkeypatch):
    """A Flex Consumption app on Python 3.12, and no storage account: OneDeploy needs none."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setattr(azure_flex, "POLL_S", 0.01)
    monkeypatch.setattr(azure, "_default_credential", StandInCredential)
    api = ArmStandIn(flex="3.12")
    with serve_stand_in(api) as server:
        api.serve_scm(server.url)
        server.api = api
        yield server
    assert server.violations == []


def options(**extra) -> azure.AzureOptions:
    return azure.AzureOptions(subscription=SUBSCRIPTION, resource_group=GROUP, **extra)


def is_read(call: Call) -> bool:
    """A GET, or the POST that is ARM's read of app settings: nothing written."""
    return call.method == "GET" or (
        call.method == "POST" and call.path.endswith("/config/appsettings/list")
    )


def only_reads(server) -> bool:
    """True when the only POSTs were the reads ARM spells POST: nothing was written."""
    posts = [c.path.rsplit("/", 2)[-2:] for c in server.writes()]
    return posts == [["appsettings", "list"], ["default", "listkeys"]]


def deploy(artifact, server, container: str = azure_app.CONTAINER, **extra) -> Result:
    extra.setdefault("smoke", False)
    target = Target(name=APP, endpoint_url=server.url, **extra)
    deployer = azure.AzureDeployer(options(container=container), StandInCredential())
    result = run_deploy(deployer, artifact, target, Apply())
    assert result is not None
    return result


def dry_run(artifact, server, container: str = azure_app.CONTAINER, **extra) -> Plan:
    """The plan `--dry-run` shows."""
    target = Target(name=APP, endpoint_url=server.url, **extra)
    deployer = azure.AzureDeployer(options(container=container), StandInCredential())
    shown: list[Plan] = []
    assert run_deploy(deployer, artifact, target, Show(), shown=shown.append) is None
    [plan] = shown
    return plan


@pytest.fixture
def blob_methods(monkeypatch, blob_env, azurite_connection_string) -> list[str]:
    """The HTTP methods of every Blob Storage request the deploy sends (to Azurite)."""
    methods: list[str] = []

    def recording(credential, options) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(
            azurite_connection_string,
            raw_request_hook=lambda request: methods.append(request.http_request.method),
        )

    monkeypatch.setattr(azure_blob, "blob_service", recording)
    return methods


def test_first_deploy_runs_from_a_private_blob_and_prints_the_key_once_never_logging_it(
    artifacts, arm, blob_env, deploy_cli, capsys, caplog
):
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' included
    artifact = artifacts("azure")
    argv = ["azure", "x", "--name", APP, "--subscription", SUBSCRIPTION]
    argv += ["--resource-group", GROUP, "--no-smoke", "--endpoint-url", arm.url]

    assert deploy_cli(artifact, argv) == 0

    container = blob_env.get_container_client(azure_app.CONTAINER)
    assert container.get_container_properties().public_access is None  # private
    blob = container.get_blob_client(f"{APP}/{artifact.sha256}.zip")
    assert blob.download_blob().readall() == artifact.path.read_bytes()
    assert blob.get_blob_properties().metadata == {"sha256": artifact.sha256}
    settings = arm.api.settings
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == blob.url and "sig=" not in blob.url
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "SystemAssigned"
    assert settings[ARTIFACT_SHA_SETTING] == artifact.sha256
    assert settings["BERTLESS_PUBLIC"] == "0"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"  # the app's own settings are kept
    [role] = arm.api.roles.values()
    assert role["container"] == azure_app.CONTAINER
    assert any(c.path.endswith("/syncfunctiontriggers") for c in arm.calls)

    captured = capsys.readouterr()
    assert captured.out.count(FUNCTION_KEY) == 1
    [line] = [line for line in captured.out.splitlines() if FUNCTION_KEY in line]
    assert line.startswith("function key (send as x-functions-key), shown once:")
    assert FUNCTION_KEY not in captured.err
    assert caplog.records, "the deploy logs its steps"
    for record in caplog.records:
        assert FUNCTION_KEY not in record.getMessage()
    for path in artifact.path.parent.rglob("*"):
        assert FUNCTION_KEY.encode() not in path.read_bytes()


def test_second_deploy_of_same_artifact_changes_nothing(artifacts, arm, blob_env):
    artifact = artifacts("azure")
    deploy(artifact, arm)
    blob = blob_env.get_blob_client(azure_app.CONTAINER, f"{APP}/{artifact.sha256}.zip")
    etag = blob.get_blob_properties().etag
    arm.calls.clear()

    result = deploy(artifact, arm)

    assert not result.changed
    assert only_reads(arm)
    assert blob.get_blob_properties().etag == etag
    assert result.secret == FUNCTION_KEY


def test_changed_artifact_uploads_a_new_blob_and_keeps_the_old_one_to_roll_back_to(
    artifacts, arm, blob_env
):
    first, second = artifacts("azure", b"v1"), artifacts("azure", b"v2")
    deploy(first, arm)
    result = deploy(second, arm)

    container = blob_env.get_container_client(azure_app.CONTAINER)
    names = {blob.name for blob in container.list_blobs(name_starts_with=f"{APP}/")}
    assert {f"{APP}/{first.sha256}.zip", f"{APP}/{second.sha256}.zip"} <= names
    assert arm.api.settings[ARTIFACT_SHA_SETTING] == second.sha256
    assert result.changed
    assert len(arm.api.roles) == 1  # granted once


def test_public_sets_anonymous_and_fetches_no_key(artifacts, arm, blob_env):
    result = deploy(artifacts("azure"), arm, public=True)

    assert arm.api.settings["BERTLESS_PUBLIC"] == "1"
    assert result.secret is None
    assert not any(c.path.endswith("/listkeys") for c in arm.calls)
    assert any(note.startswith("PUBLIC") for note in result.notes)


@pytest.mark.parametrize(
    ("stand_in", "message"),
    [
        (ArmStandIn(stack="Python|3.11"), "runs Python|3.11 but the artifact is for Python 3.12"),
        (ArmStandIn(flex="3.11"), "runs python|3.11 but the artifact is for Python 3.12"),
    ],
)
def test_an_app_that_cannot_run_the_artifact_is_refused_before_any_write(
    artifacts, blob_env, serve_stand_in, stand_in, message
):
    with serve_stand_in(stand_in) as server, pytest.raises(DeployError, match=message):
        deploy(artifacts("azure"), server)
    assert server.writes() == []


def test_a_missing_app_is_one_sentence(artifacts, arm, blob_env):
    target = Target(name="no-such-app", endpoint_url=arm.url, smoke=False)
    deployer = azure.AzureDeployer(options(), StandInCredential())
    with pytest.raises(DeployError, match="function app no-such-app does not exist"):
        run_deploy(deployer, artifacts("azure"), target, Apply())


def test_dry_run_sends_only_reads(artifacts, arm, blob_env, blob_methods):
    container = "dry-" + uuid.uuid4().hex[:12]

    plan = dry_run(artifacts("azure"), arm, container)

    # the container, the blob, the identity, the role assignment, the settings, the triggers
    actions = ["create", "upload", "update", "create", "update", "update"]
    assert [step.action for step in plan.steps] == actions
    assert arm.calls and all(is_read(call) for call in arm.calls)
    assert blob_methods and set(blob_methods) <= {"GET", "HEAD"}
    assert not blob_env.get_container_client(container).exists()
    assert "identity" not in arm.api.sites[APP] and ARTIFACT_SHA_SETTING not in arm.api.settings


def test_dry_run_through_the_cli_prints_the_plan_and_no_key(
    artifacts, arm, blob_env, deploy_cli, capsys
):
    argv = ["azure", "x", "--name", APP, "--subscription", SUBSCRIPTION, "--dry-run"]
    argv += ["--resource-group", GROUP, "--no-smoke", "--endpoint-url", arm.url]

    assert deploy_cli(artifacts("azure"), argv) == 0

    out = capsys.readouterr().out
    assert "dry run: nothing touched" in out and "app settings" in out
    assert FUNCTION_KEY not in out
    assert all(is_read(call) for call in arm.calls)


@pytest.mark.parametrize("history", ["first", "repeat", "changed"])
@pytest.mark.parametrize("app", ["linux-consumption", "flex"])
def test_dry_run_steps_equal_the_steps_the_deploy_took(artifacts, request, app, history):
    """The plan `--dry-run` shows, from reads alone, is the plan the deploy then carries out."""
    flex = app == "flex"
    server = request.getfixturevalue("flex" if flex else "arm")
    blob_methods = [] if flex else request.getfixturevalue("blob_methods")
    container = "plan-" + uuid.uuid4().hex[:12]  # a first deploy finds no container and no blob
    first, second = artifacts("azure", b"v1"), artifacts("azure", b"v2")
    if history != "first":
        deploy(first, server, container)
    artifact = second if history == "changed" else first
    server.calls.clear()
    blob_methods.clear()

    shown = dry_run(artifact, server, container)

    assert server.calls and all(is_read(call) for call in server.calls)
    assert set(blob_methods) <= {"GET", "HEAD"}
    assert shown.changed == (history != "repeat")
    took = deploy(artifact, server, container).plan.steps
    assert shown.steps == took
    assert any(step.action == "upload" for step in took) == (history != "repeat")
    after = dry_run(artifact, server, container)
    assert [step.action for step in after.steps] == ["unchanged"] * len(after.steps)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "-leading"}, "azure refuses the name '-leading'"),
        ({"name": "a"}, "2 to 60 letters"),
        ({"name": "under_score"}, "azure refuses the name"),
        ({"region": "atlantis"}, "azure has no region 'atlantis'"),
        ({"cloud": "aws"}, "was packaged for aws, not azure"),
        ({"credentials": None}, "no Azure credentials found"),
        ({"subscription": None}, "no Azure subscription"),
    ],
)
def test_bad_input_is_one_sentence_before_any_request(
    artifacts, recorder, monkeypatch, tmp_path, change, message
):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    # Only the Azure CLI credential, which is not installed: no token, and no IMDS probe either.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure"))
    spec = {"name": APP, "region": None}
    spec.update({k: v for k, v in change.items() if k in spec})
    subscription = None if "subscription" in change else SUBSCRIPTION
    given = None if "credentials" in change else StandInCredential()
    deployer = azure.AzureDeployer(
        azure.AzureOptions(subscription=subscription, resource_group=GROUP), given
    )
    target = Target(endpoint_url=recorder.url, smoke=False, **spec)
    with pytest.raises(PreflightError) as refused:
        run_deploy(deployer, artifacts(change.get("cloud", "azure")), target, Show())
    assert message in str(refused.value)
    assert recorder.calls == []


def test_a_linux_consumption_app_without_a_storage_account_is_refused_before_any_write(
    artifacts, arm, monkeypatch
):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(DeployError, match="pass --storage-account"):
        deploy(artifacts("azure"), arm)
    assert [c.path.rsplit("/", 1)[-1] for c in arm.writes()] == ["list"]  # the settings read


def test_flex_deploy_publishes_the_zip_through_onedeploy_and_records_its_sha(artifacts, flex):
    artifact = artifacts("azure")

    result = deploy(artifact, flex, environment={"MODEL_TOKEN_LIMIT": "256"})

    [publish] = [c for c in flex.calls if c.path == "/api/publish"]
    assert publish.body == artifact.path.read_bytes()
    assert publish.headers["content-type"] == "application/zip"
    assert publish.headers["authorization"] == f"Bearer {TOKEN}"
    assert publish.query["RemoteBuild"] == ["false"]
    polls = [c for c in flex.calls if c.path.startswith("/api/deployments/")]
    assert len(polls) == 3  # building, deploying, succeeded
    settings = flex.api.settings
    assert settings[ARTIFACT_SHA_SETTING] == artifact.sha256
    assert settings["BERTLESS_PUBLIC"] == "0"
    assert settings["MODEL_TOKEN_LIMIT"] == "256"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"  # the app's own settings are kept
    assert not any(key.startswith("WEBSITE_RUN_FROM_PACKAGE") for key in settings)
    assert flex.api.roles == {} and "identity" not in flex.api.sites[APP]  # no blob to grant
    assert result.changed and result.secret == FUNCTION_KEY


def test_flex_second_deploy_of_same_artifact_skips_the_upload(artifacts, flex):
    artifact = artifacts("azure")
    deploy(artifact, flex)
    flex.calls.clear()

    result = deploy(artifact, flex)

    assert not result.changed
    assert only_reads(flex)
    assert len(flex.api.published) == 1


def test_flex_changed_artifact_is_published_again(artifacts, flex):
    first, second = artifacts("azure", b"v1"), artifacts("azure", b"v2")
    deploy(first, flex)
    result = deploy(second, flex)

    assert flex.api.published == [first.path.read_bytes(), second.path.read_bytes()]
    assert flex.api.settings[ARTIFACT_SHA_SETTING] == second.sha256
    assert result.changed


def test_flex_failed_deployment_is_a_deploy_error_with_the_platform_message(artifacts, flex):
    artifact = artifacts("azure")
    flex.api.outcome = (3, "Failed to upload because Azure Storage responded with Forbidden")

    with pytest.raises(DeployError, match="deployment failed: Failed to upload because Azure"):
        deploy(artifact, flex)

    assert ARTIFACT_SHA_SETTING not in flex.api.settings  # so the next deploy publishes again
    flex.api.outcome = (4, "")
    assert deploy(artifact, flex).changed
    assert len(flex.api.published) == 2


def test_flex_deployment_not_listed_yet_then_recycled_once_seen_counts_as_done(artifacts, flex):
    """azd's reading of OneDeploy: a new deployment can take a moment to appear, and the worker
    that ran it can be recycled (404) after it was seen."""
    flex.api.before = [NOT_THERE, NOT_THERE, 1]
    flex.api.outcome = (NOT_THERE, "")

    assert deploy(artifacts("azure"), flex).changed

    polls = [c for c in flex.calls if c.path.startswith("/api/deployments/")]
    assert len(polls) == 4  # two misses, building, gone
    assert ARTIFACT_SHA_SETTING in flex.api.settings


def test_flex_deployment_that_never_appears_is_a_deploy_error(artifacts, flex):
    flex.api.before, flex.api.outcome = [], (NOT_THERE, "")

    with pytest.raises(DeployError, match="failed with 404"):
        deploy(artifacts("azure"), flex)

    assert ARTIFACT_SHA_SETTING not in flex.api.settings
