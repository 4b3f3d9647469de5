"""Deploy an artifact to an Azure Functions app on the Linux Consumption plan, run from package.

The app is run from a zip in Blob Storage (https://learn.microsoft.com/azure/azure-functions/
run-functions-from-deployment-package: on Linux Consumption WEBSITE_RUN_FROM_PACKAGE must be a
URL). The blob stays private: instead of a SAS token in an app setting (a secret that expires,
since user-delegation SAS lasts at most 7 days), the app fetches it with its system-assigned
managed identity (WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID=SystemAssigned), which gets
Storage Blob Data Reader on the deployment container only. Steps:
1. read the app through ARM (management.azure.com, Microsoft.Web/sites 2023-12-01): it must exist,
   be Linux Consumption, and run the artifact's Python;
2. upload `NAME/SHA256.zip` to a private container, with the sha256 in the blob's metadata;
   content addressing means an old package stays available to roll back to;
3. turn on the app's identity and grant it read on the container (once);
4. merge the settings (WEBSITE_RUN_FROM_PACKAGE, BERTLESS_ARTIFACT_SHA256, BERTLESS_PUBLIC and
   the user's) into the app's settings and sync triggers; the platform swaps the package at
   restart, so a request is served by the whole old package or the whole new one;
5. fetch the default function key (auth level FUNCTION unless public) for the user, once.

Credentials: azure-identity's DefaultAzureCredential for ARM and Blob Storage, or the standard
AZURE_STORAGE_CONNECTION_STRING for the blob upload when set. `endpoint_url` replaces the ARM
base, for a local stand-in. Not handled yet: Flex Consumption apps (they deploy through the
app's OneDeploy endpoint, not a package URL) and creating the app itself.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.deploy import names
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

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient

    from bertless.deploy.package import Artifact

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


@dataclass(frozen=True)
class AzureOptions:
    """Where the app and its package live. The storage account is in the app's resource group."""

    subscription: str | None = None
    resource_group: str | None = None
    storage_account: str | None = None
    container: str = CONTAINER


def plan(artifact: Artifact, target: Target, options: AzureOptions) -> Plan:
    """What a deploy would do, from the inputs alone: no credentials read, no request sent."""
    region = _preflight(artifact, target, options)
    steps = Plan("azure", target.name, region or "(the app's)")
    steps.add("check", f"function app {target.name}", f"in resource group {options.resource_group}")
    steps.add(
        "upload",
        f"{options.container}/{_blob_name(target.name, artifact)}",
        f"to storage account {options.storage_account or '(from ' + CONNECTION_STRING_ENV + ')'}",
        artifact.zipped_bytes,
    )
    steps.add("update", "app settings", "WEBSITE_RUN_FROM_PACKAGE and managed identity read")
    level = "anonymous (public)" if target.public else "function"
    steps.add("update", "auth level", level)
    return steps


def deploy(
    artifact: Artifact,
    target: Target,
    options: AzureOptions,
    credential: TokenCredential | None = None,
    progress: Progress | None = None,
) -> Result:
    """Point the app at `artifact`, uploading it once; say so if it already runs it."""
    from azure.core.exceptions import AzureError

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

    say("uploading the package")
    blobs = _blob_service(credential, options)
    try:
        package_url = _upload(blobs, options.container, target.name, artifact, steps)
    except AzureError as error:
        raise DeployError(f"uploading the package to Blob Storage failed: {error}") from None
    wanted = {
        **target.environment,
        "WEBSITE_RUN_FROM_PACKAGE": package_url,
        "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": "SystemAssigned",
        ARTIFACT_SHA_SETTING: artifact.sha256,
        PUBLIC_SETTING: "1" if target.public else "0",
    }
    drift = sorted(key for key, value in wanted.items() if settings.get(key) != value)
    if drift:
        say("granting the app read access to its package")
        principal = _ensure_identity(arm, site_id, site, steps)
        _grant_read(arm, options, blobs.account_name, principal, steps)
        say("updating app settings")
        arm.put(f"{site_id}/config/appsettings", WEB_API, {"properties": {**settings, **wanted}})
        steps.add("update", "app settings", ", ".join(drift))
        arm.post(f"{site_id}/syncfunctiontriggers", WEB_API)
    else:
        steps.add("unchanged", f"function app {target.name}", artifact.sha256[:12])

    url = f"https://{site['properties']['defaultHostName']}"
    result = Result(steps, url, auth="anonymous" if target.public else "function key")
    if target.memory_mb is not None:
        result.notes.append("--memory is ignored: Linux Consumption instances have fixed memory")
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


def _preflight(artifact: Artifact, target: Target, options: AzureOptions) -> str | None:
    names.check_name("azure", target.name)
    check_artifact(artifact, "azure", None)
    if not options.subscription:
        raise PreflightError(
            "no Azure subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID"
        )
    if not options.resource_group:
        raise PreflightError("no Azure resource group: pass --resource-group")
    if not options.storage_account and not os.environ.get(CONNECTION_STRING_ENV):
        raise PreflightError(
            f"no storage account for the package: pass --storage-account or set "
            f"{CONNECTION_STRING_ENV}"
        )
    return names.check_region("azure", target.region) if target.region else None


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _check_site(
    arm: _Arm, site_id: str, target: Target, artifact: Artifact, region: str | None
) -> dict[str, Any]:
    """The app as ARM reports it, refused unless it can run this artifact from a package URL."""
    site = arm.get(site_id, WEB_API, missing_ok=True)
    if site is None:
        raise DeployError(
            f"function app {target.name} does not exist in that resource group; create it with "
            "`az functionapp create --consumption-plan-location REGION --os-type Linux "
            "--runtime python` first"
        )
    properties = site.get("properties", {})
    if properties.get("functionAppConfig"):
        raise DeployError(
            f"{target.name} is a Flex Consumption app, which deploys through OneDeploy; bertless "
            "deploys Linux Consumption apps only so far"
        )
    if "linux" not in site.get("kind", "") or "functionapp" not in site.get("kind", ""):
        raise DeployError(f"{target.name} is not a Linux function app (kind {site.get('kind')!r})")
    if region and names.azure_region(site.get("location", "")) != region:
        raise DeployError(f"{target.name} is in {site.get('location')}, not {region}")
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

    def _send(
        self,
        method: str,
        path: str,
        api_version: str,
        body: Any = None,
        missing_ok: bool = False,
        conflict_ok: bool = False,
    ) -> Any:
        import requests

        try:
            response = self.session.request(
                method,
                f"{self.base}{path}",
                params={"api-version": api_version},
                json=body,
                timeout=60,
            )
        except requests.RequestException as error:
            raise DeployError(f"{method} {path} failed: {error}") from None
        if (missing_ok and response.status_code == 404) or (
            conflict_ok and response.status_code == 409
        ):
            return None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise DeployError(f"{method} {path} failed with {response.status_code}: {message}")
        return response.json() if response.content else {}

    def get(self, path: str, api_version: str, missing_ok: bool = False) -> Any:
        return self._send("GET", path, api_version, missing_ok=missing_ok)

    def post(self, path: str, api_version: str) -> Any:
        return self._send("POST", path, api_version)

    def put(self, path: str, api_version: str, body: Any, conflict_ok: bool = False) -> Any:
        return self._send("PUT", path, api_version, body, conflict_ok=conflict_ok)

    def patch(self, path: str, api_version: str, body: Any) -> Any:
        return self._send("PATCH", path, api_version, body)
