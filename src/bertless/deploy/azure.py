"""Deploy an artifact to an existing Azure Functions app: Flex Consumption or Linux Consumption.

Both start the same way: read the app through ARM (management.azure.com, Microsoft.Web/sites
2023-12-01), which must exist, be a Linux function app and run the artifact's Python, and read its
app settings. The site document tells the plans apart: a Flex Consumption app has
`properties.functionAppConfig`, whose `runtime` ({"name": "python", "version": "3.12"}) replaces
linuxFxVersion (https://learn.microsoft.com/python/api/azure-mgmt-web/azure.mgmt.web.models.
functionappconfig). Then:

Flex Consumption deploys through the app's OneDeploy endpoint; zip deploy and
WEBSITE_RUN_FROM_PACKAGE are not supported there, the app runs from the package it is given
(https://learn.microsoft.com/azure/azure-functions/deployment-zip-push).
1. merge the settings (BERTLESS_PUBLIC and the user's) through ARM `config/appsettings`;
2. POST the zip to `https://<scm host>/api/publish?RemoteBuild=false` with Content-Type
   application/zip and the same Entra ID bearer token as ARM (ARM audience): Azure/azure-cli
   `enable_zip_deploy_flex` in src/azure-cli/azure/cli/command_modules/appservice/custom.py and
   Azure/azure-dev cli/azd/pkg/azsdk/funcapp_host_client.go. The SCM host is the site's
   `hostNameSslStates` entry of hostType Repository, as azure-cli's `_get_scm_url` finds it.
   RemoteBuild=false because the artifact already carries its Linux wheels in
   .python_packages/lib/site-packages; a remote build would reinstall them
   (https://learn.microsoft.com/azure/azure-functions/python-build-options). The answer is the
   deployment id as a JSON string;
3. poll `/api/deployments/<id>` about once a second until `status` is 4 (success); -1 cancelled,
   3 failed, 5 conflict and 6 partial success are failures, explained by `status_text`
   (https://github.com/Azure/azure-dev/issues/3658, and funcapp_host_client.go above);
4. record BERTLESS_ARTIFACT_SHA256 in the settings last, so a publish that fails is retried in
   full, and a deploy of the same artifact again skips the upload.

Linux Consumption runs the app from a zip in Blob Storage (https://learn.microsoft.com/azure/
azure-functions/run-functions-from-deployment-package: on Linux Consumption
WEBSITE_RUN_FROM_PACKAGE must be a URL). The blob stays private: instead of a SAS token in an app
setting (a secret that expires, since user-delegation SAS lasts at most 7 days), the app fetches it
with its system-assigned managed identity (WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID=
SystemAssigned), which gets Storage Blob Data Reader on the deployment container only.
1. upload `NAME/SHA256.zip` to a private container, with the sha256 in the blob's metadata;
   content addressing means an old package stays available to roll back to;
2. turn on the app's identity and grant it read on the container (once);
3. merge the settings (WEBSITE_RUN_FROM_PACKAGE, BERTLESS_ARTIFACT_SHA256, BERTLESS_PUBLIC and
   the user's) into the app's settings and sync triggers; the platform swaps the package at
   restart, so a request is served by the whole old package or the whole new one.

Both end by fetching the default function key (auth level FUNCTION unless public), shown once.

Credentials: azure-identity's DefaultAzureCredential for ARM, OneDeploy and Blob Storage, or the
standard AZURE_STORAGE_CONNECTION_STRING for the blob upload when set. `endpoint_url` replaces the
ARM base, for a local stand-in; the SCM host always comes from the site document, reached with
ARM's scheme (https, or a loopback stand-in's http). Not handled: creating the app itself.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bertless.deploy.plan import (
    ARTIFACT_SHA_SETTING,
    DeployError,
    Plan,
    PreflightError,
    Progress,
    Result,
    Target,
    check_artifact,
    smoke,
)
from bertless.platforms import names

if TYPE_CHECKING:
    import requests
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient

    from bertless.packaging.package import Artifact

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
WEB_API = "2023-12-01"
AUTHORIZATION_API = "2022-04-01"
CONTAINER = "bertless-deployments"
# Built-in role "Storage Blob Data Reader":
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
BLOB_READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
PUBLIC_SETTING = "BERTLESS_PUBLIC"  # bertless.adapters.azure: "1" means auth level ANONYMOUS
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
# OneDeploy deployment status codes (Azure/azure-dev#3658): 0 pending, 1 building, 2 deploying.
RUNNING, SUCCEEDED = (0, 1, 2), 4
FAILED = {-1: "was cancelled", 3: "failed", 5: "lost to another deployment", 6: "partly failed"}
POLL_S = 1.0  # "recommended by the service team" (azd funcapp_host_client.go)
PUBLISH_TIMEOUT_S = 900


@dataclass(frozen=True)
class AzureOptions:
    """Where the app and the Linux Consumption package live (in the app's resource group)."""

    subscription: str | None = None
    resource_group: str | None = None
    storage_account: str | None = None
    container: str = CONTAINER


def plan(artifact: Artifact, target: Target, options: AzureOptions) -> Plan:
    """What a deploy would do, from the inputs alone: no credentials read, no request sent."""
    region = _preflight(artifact, target, options)
    steps = Plan("azure", target.name, region or "(the app's)")
    steps.add("check", f"function app {target.name}", f"in resource group {options.resource_group}")
    account = options.storage_account or f"(from {CONNECTION_STRING_ENV})"
    steps.add(
        "upload",
        f"package {artifact.sha256[:12]}",
        f"Flex Consumption: to the app's OneDeploy endpoint; Linux Consumption: to "
        f"{options.container}/{_blob_name(target.name, artifact)} in storage account {account}",
        artifact.zipped_bytes,
    )
    detail = "BERTLESS_ARTIFACT_SHA256, and the package URL on Linux Consumption"
    steps.add("update", "app settings", detail)
    level = "anonymous (public)" if target.public else "function"
    steps.add("update", "auth level", level)
    return steps


@dataclass
class _App:
    """The function app being deployed to: its ARM id and document, its settings, the steps."""

    arm: _Arm
    id: str
    site: dict[str, Any]
    settings: dict[str, str]
    steps: Plan
    say: Progress

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def flex(self) -> bool:
        return bool(self.site.get("properties", {}).get("functionAppConfig"))

    def drift(self, wanted: dict[str, str]) -> list[str]:
        return sorted(key for key, value in wanted.items() if self.settings.get(key) != value)

    def update_settings(self, wanted: dict[str, str]) -> None:
        """Merge `wanted` into the app's settings through ARM, if any of them differs."""
        drift = self.drift(wanted)
        if drift:
            self.say("updating app settings")
            self.settings = {**self.settings, **wanted}
            self.arm.put(f"{self.id}/config/appsettings", WEB_API, {"properties": self.settings})
            self.steps.add("update", "app settings", ", ".join(drift))


def deploy(
    artifact: Artifact,
    target: Target,
    options: AzureOptions,
    credential: TokenCredential | None = None,
    progress: Progress | None = None,
) -> Result:
    """Make the app run `artifact`, uploading it once; say so if it already runs it."""
    region = _preflight(artifact, target, options)
    credential = credential or _default_credential()
    say = progress or (lambda _: None)
    arm = _Arm(credential, target.endpoint_url)
    site_id = (
        f"/subscriptions/{options.subscription}/resourceGroups/{options.resource_group}"
        f"/providers/Microsoft.Web/sites/{target.name}"
    )

    say("reading the function app")
    site = _check_site(arm, site_id, target, artifact, region)
    steps = Plan("azure", target.name, names.azure_region(site["location"]))
    settings = arm.post(f"{site_id}/config/appsettings/list", WEB_API)["properties"]
    app = _App(arm, site_id, site, settings, steps, say)
    wanted = {**target.environment, PUBLIC_SETTING: "1" if target.public else "0"}
    if app.flex:
        _publish(app, artifact, wanted)
    else:
        _run_from_blob(app, artifact, wanted, options, credential)

    url = f"https://{site['properties']['defaultHostName']}"
    result = Result(steps, url, auth="anonymous" if target.public else "function key")
    if target.memory_mb is not None:
        where = (
            "the Flex app's own functionAppConfig.scaleAndConcurrency.instanceMemoryMB sets it"
            if app.flex
            else "Linux Consumption instances have fixed memory"
        )
        result.notes.append(f"--memory is ignored: {where}")
    if target.public:
        result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
    else:
        say("fetching the function key")
        keys = arm.post(f"{site_id}/host/default/listkeys", WEB_API)
        result.secret = keys.get("functionKeys", {}).get("default")
        result.secret_label = "function key (send as x-functions-key)"
        if not result.secret:
            raise DeployError(f"{target.name} has no default function key")
    if target.smoke:
        say("smoke request")
        smoke(url, None if target.public else {"x-functions-key": result.secret or ""})
    return result


def _publish(app: _App, artifact: Artifact, wanted: dict[str, str]) -> None:
    """Flex Consumption: settings, then the zip through OneDeploy, then its sha256 as a receipt."""
    scm = f"{urlsplit(app.arm.base).scheme}://{_scm_host(app)}"
    app.update_settings(wanted)
    if app.settings.get(ARTIFACT_SHA_SETTING) == artifact.sha256:
        app.steps.add("unchanged", f"package {artifact.sha256[:12]}", "already published")
        return
    app.say("publishing the package")
    with artifact.path.open("rb") as data:
        response = app.arm.call(
            "POST",
            f"{scm}/api/publish",
            params={"RemoteBuild": "false", "Deployer": "bertless"},
            data=data,
            headers={"Content-Type": "application/zip"},
            timeout=PUBLISH_TIMEOUT_S,
        )
    if response.status_code == 409:
        raise DeployError(f"{scm} is running another deployment; deploy again when it is done")
    deployment = app.arm.check(response, "POST /api/publish")
    if not isinstance(deployment, str) or not deployment:
        raise DeployError(f"{scm}/api/publish answered {deployment!r}, not a deployment id")
    app.say("waiting for the deployment")
    _wait_for(app.arm, f"{scm}/api/deployments/{deployment}")
    app.steps.add("upload", "package", "through OneDeploy (no remote build)", artifact.zipped_bytes)
    app.update_settings({ARTIFACT_SHA_SETTING: artifact.sha256})


def _wait_for(arm: _Arm, url: str) -> None:
    """Poll a OneDeploy deployment until it succeeds; its failure becomes a DeployError."""
    deadline, misses, seen = time.monotonic() + PUBLISH_TIMEOUT_S, 0, False
    while time.monotonic() < deadline:
        response = arm.call("GET", url)
        if response.status_code == 404 and seen:
            return  # azd: the worker that ran the deployment can be recycled once it is done
        if response.status_code == 404 and misses < 3:
            misses += 1  # azd: a new deployment can take a moment to appear
        else:
            status, seen = arm.check(response, f"GET {url}"), True
            code = status.get("status")
            if code == SUCCEEDED:
                return
            if code not in RUNNING:
                outcome = FAILED.get(code, f"ended with status {code}")
                raise DeployError(
                    f"the deployment {outcome}: {status.get('status_text') or 'no reason given'}"
                    f" (log: {status.get('log_url') or url + '/log'})"
                )
        time.sleep(POLL_S)
    raise DeployError(f"the deployment did not finish within {PUBLISH_TIMEOUT_S} s; see {url}")


def _scm_host(app: _App) -> str:
    """The app's Kudu (SCM) host name, as ARM lists it: the hostType Repository entry."""
    for state in app.site["properties"].get("hostNameSslStates") or []:
        if state.get("hostType") == "Repository":
            return state["name"]
    raise DeployError(f"{app.name} lists no SCM host name, so it cannot take a deployment")


def _run_from_blob(
    app: _App,
    artifact: Artifact,
    wanted: dict[str, str],
    options: AzureOptions,
    credential: TokenCredential,
) -> None:
    """Linux Consumption: upload the zip to a private blob and point the app at it."""
    from azure.core.exceptions import AzureError

    if not options.storage_account and not os.environ.get(CONNECTION_STRING_ENV):
        raise DeployError(
            f"{app.name} is a Linux Consumption app, which runs its package from Blob "
            f"Storage: pass --storage-account or set {CONNECTION_STRING_ENV}"
        )
    app.say("uploading the package")
    blobs = _blob_service(credential, options)
    try:
        package_url = _upload(blobs, options.container, app.name, artifact, app.steps)
    except AzureError as error:
        raise DeployError(f"uploading the package to Blob Storage failed: {error}") from None
    wanted = {
        **wanted,
        "WEBSITE_RUN_FROM_PACKAGE": package_url,
        "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": "SystemAssigned",
        ARTIFACT_SHA_SETTING: artifact.sha256,
    }
    if not app.drift(wanted):
        app.steps.add("unchanged", f"function app {app.name}", artifact.sha256[:12])
        return
    app.say("granting the app read access to its package")
    principal = _ensure_identity(app.arm, app.id, app.site, app.steps)
    _grant_read(app.arm, options, blobs.account_name, principal, app.steps)
    app.update_settings(wanted)
    app.arm.post(f"{app.id}/syncfunctiontriggers", WEB_API)


def _preflight(artifact: Artifact, target: Target, options: AzureOptions) -> str | None:
    names.check_name("azure", target.name)
    check_artifact(artifact, "azure", None)
    if not options.subscription:
        raise PreflightError(
            "no Azure subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID"
        )
    if not options.resource_group:
        raise PreflightError("no Azure resource group: pass --resource-group")
    return names.check_region("azure", target.region) if target.region else None


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _check_site(
    arm: _Arm, site_id: str, target: Target, artifact: Artifact, region: str | None
) -> dict[str, Any]:
    """The app as ARM reports it, refused unless it is a Linux function app on this Python."""
    site = arm.get(site_id, WEB_API, missing_ok=True)
    if site is None:
        raise DeployError(
            f"function app {target.name} does not exist in that resource group; create it with "
            "`az functionapp create --flexconsumption-location REGION --runtime python "
            f"--runtime-version {artifact.python}` first"
        )
    if "linux" not in site.get("kind", "") or "functionapp" not in site.get("kind", ""):
        raise DeployError(f"{target.name} is not a Linux function app (kind {site.get('kind')!r})")
    if region and names.azure_region(site.get("location", "")) != region:
        raise DeployError(f"{target.name} is in {site.get('location')}, not {region}")
    flex = site.get("properties", {}).get("functionAppConfig")
    if flex:  # Flex Consumption keeps the stack here, not in linuxFxVersion
        runtime = flex.get("runtime") or {}
        stack = f"{runtime['name']}|{runtime.get('version', '')}" if runtime.get("name") else ""
    else:
        stack = arm.get(f"{site_id}/config/web", WEB_API)["properties"].get("linuxFxVersion", "")
    if stack and stack.lower() != f"python|{artifact.python}":
        raise DeployError(
            f"{target.name} runs {stack} but the artifact is for Python {artifact.python}; "
            f"package with --python {stack.partition('|')[2]}"
        )
    return site


def _blob_name(app: str, artifact: Artifact) -> str:
    return f"{app}/{artifact.sha256}.zip"


def _blob_service(credential: TokenCredential, options: AzureOptions) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    connection_string = os.environ.get(CONNECTION_STRING_ENV)
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string)
    return BlobServiceClient(
        f"https://{options.storage_account}.blob.core.windows.net", credential=credential
    )


def _upload(
    blobs: BlobServiceClient, container: str, app: str, artifact: Artifact, steps: Plan
) -> str:
    """Upload the zip unless a blob with the same sha256 is there; return its URL (no SAS)."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    try:
        blobs.create_container(container)  # private: no public access level
        steps.add("create", f"container {container}", "private")
    except ResourceExistsError:
        pass
    blob = blobs.get_blob_client(container, _blob_name(app, artifact))
    try:
        if blob.get_blob_properties().metadata.get("sha256") == artifact.sha256:
            steps.add("unchanged", f"blob {blob.blob_name}", "already uploaded")
            return blob.url
    except ResourceNotFoundError:
        pass
    with artifact.path.open("rb") as data:
        blob.upload_blob(
            data,
            overwrite=True,
            metadata={"sha256": artifact.sha256},
            content_settings=ContentSettings(content_type="application/zip"),
        )
    steps.add("upload", f"blob {blob.blob_name}", f"to {container}", artifact.zipped_bytes)
    return blob.url


def _ensure_identity(arm: _Arm, site_id: str, site: dict[str, Any], steps: Plan) -> str:
    """The app's system-assigned identity, turned on if it is off."""
    identity = site.get("identity") or {}
    if "SystemAssigned" in identity.get("type", "") and identity.get("principalId"):
        return identity["principalId"]
    current = identity.get("type", "None")
    kinds = "SystemAssigned" if current in ("", "None") else f"{current}, SystemAssigned"
    patched = arm.patch(site_id, WEB_API, {"identity": {"type": kinds}})
    steps.add("update", "app identity", "system-assigned identity on")
    return patched["identity"]["principalId"]


def _grant_read(
    arm: _Arm, options: AzureOptions, account: str, principal: str, steps: Plan
) -> None:
    """Storage Blob Data Reader for the app on the deployment container, and nothing wider."""
    account_id = (
        f"/subscriptions/{options.subscription}/resourceGroups/{options.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    scope = f"{account_id}/blobServices/default/containers/{options.container}"
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal}|{BLOB_READER_ROLE}")
    body = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{options.subscription}/providers/"
            f"Microsoft.Authorization/roleDefinitions/{BLOB_READER_ROLE}",
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }
    }
    url = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    if arm.put(url, AUTHORIZATION_API, body, conflict_ok=True) is not None:
        steps.add("create", "role assignment", f"Storage Blob Data Reader on {options.container}")


class _Arm:
    """ARM REST calls with a bearer token from the credential; errors become one sentence."""

    def __init__(self, credential: TokenCredential, endpoint_url: str | None):
        from azure.core.exceptions import ClientAuthenticationError

        self.base = (endpoint_url or ARM).rstrip("/")
        try:
            token = credential.get_token(ARM_SCOPE).token
        except ClientAuthenticationError:
            raise PreflightError(
                "no Azure credentials found: run `az login`, or set AZURE_CLIENT_ID, "
                "AZURE_TENANT_ID and AZURE_CLIENT_SECRET"
            ) from None
        import requests

        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request with the ARM bearer token (ARM and the app's SCM host both take it)."""
        import requests

        kwargs.setdefault("timeout", 60)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as error:
            raise DeployError(f"{method} {url} failed: {error}") from None

    @staticmethod
    def check(response: requests.Response, what: str) -> Any:
        """The response's JSON, or a DeployError naming the request and the platform's message."""
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise DeployError(f"{what} failed with {response.status_code}: {message}")
        return response.json() if response.content else {}

    def _send(
        self,
        method: str,
        path: str,
        api_version: str,
        body: Any = None,
        missing_ok: bool = False,
        conflict_ok: bool = False,
    ) -> Any:
        params = {"api-version": api_version}
        response = self.call(method, f"{self.base}{path}", params=params, json=body)
        if (missing_ok and response.status_code == 404) or (
            conflict_ok and response.status_code == 409
        ):
            return None
        return self.check(response, f"{method} {path}")

    def get(self, path: str, api_version: str, missing_ok: bool = False) -> Any:
        return self._send("GET", path, api_version, missing_ok=missing_ok)

    def post(self, path: str, api_version: str) -> Any:
        return self._send("POST", path, api_version)

    def put(self, path: str, api_version: str, body: Any, conflict_ok: bool = False) -> Any:
        return self._send("PUT", path, api_version, body, conflict_ok=conflict_ok)

    def patch(self, path: str, api_version: str, body: Any) -> Any:
        return self._send("PATCH", path, api_version, body)
