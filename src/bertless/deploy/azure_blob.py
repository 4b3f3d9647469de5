"""Linux Consumption: the app runs from a zip in Blob Storage that it reads with its own identity.

On Linux Consumption WEBSITE_RUN_FROM_PACKAGE must be a URL (https://learn.microsoft.com/azure/
azure-functions/run-functions-from-deployment-package). The blob stays private: instead of a SAS
token in an app setting (a secret that expires, since user-delegation SAS lasts at most 7 days),
the app fetches it with its system-assigned managed identity
(WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID=SystemAssigned), which gets Storage Blob Data Reader
on the deployment container only. The planner reads the container, the blob's metadata, the
site's identity and the role assignment; the steps:
1. create the private container if it is missing;
2. upload `NAME/SHA256.zip` with the sha256 in the blob's metadata, unless it is there; content
   addressing means an old package stays available to roll back to;
3. turn on the app's identity and grant it read on the container;
4. merge the settings (WEBSITE_RUN_FROM_PACKAGE, BERTLESS_ARTIFACT_SHA256, BERTLESS_PUBLIC and the
   user's) into the app's settings and sync triggers; the platform swaps the package at restart,
   so a request is served by the whole old package or the whole new one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from bertless.deploy.plan import ARTIFACT_SHA_SETTING, DeployError, Plan

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient

    from bertless.deploy.azure_app import App, AzureOptions
    from bertless.packaging.package import Artifact

T = TypeVar("T")

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
AUTHORIZATION_API = "2022-04-01"
# Built-in role "Storage Blob Data Reader":
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
BLOB_READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


def blob_service(credential: TokenCredential, options: AzureOptions) -> BlobServiceClient:
    """The storage account's client: the connection string when set, else the Entra credential."""
    from azure.storage.blob import BlobServiceClient

    connection_string = os.environ.get(CONNECTION_STRING_ENV)
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string)
    return BlobServiceClient(
        f"https://{options.storage_account}.blob.core.windows.net", credential=credential
    )


class BlobPackage:
    """The steps of a Linux Consumption deploy; the app's principal id once it has one."""

    def __init__(
        self, app: App, artifact: Artifact, options: AzureOptions, credential: TokenCredential
    ):
        if not options.storage_account and not os.environ.get(CONNECTION_STRING_ENV):
            raise DeployError(
                f"{app.name} is a Linux Consumption app, which runs its package from Blob "
                f"Storage: pass --storage-account or set {CONNECTION_STRING_ENV}"
            )
        self.app = app
        self.artifact = artifact
        self.options = options
        self.blobs = blob_service(credential, options)
        self.blob = self.blobs.get_blob_client(
            options.container, f"{app.name}/{artifact.sha256}.zip"
        )
        identity = app.site.get("identity") or {}
        on = "SystemAssigned" in identity.get("type", "")
        self.principal: str | None = identity.get("principalId") if on else None

    def plan(self, plan: Plan, wanted: Mapping[str, str]) -> None:
        """Container, blob, identity, read access, then the settings that point at the blob."""
        container = self.options.container
        if not _storage("reading the container", self.blobs.get_container_client(container).exists):
            plan.add("create", f"container {container}", "private", run=self.create_container)
        if self._uploaded():
            plan.unchanged(f"blob {self.blob.blob_name}", "already uploaded")
        else:
            size = self.artifact.zipped_bytes
            plan.add(
                "upload", f"blob {self.blob.blob_name}", f"to {container}", size, run=self.upload
            )
        if self.principal:
            plan.unchanged("app identity", "system-assigned")
        else:
            plan.add("update", "app identity", "system-assigned identity on", run=self.identity_on)
        grant = f"Storage Blob Data Reader on {container}"
        if self.principal and self._granted():
            plan.unchanged("role assignment", grant)
        else:
            plan.add("create", "role assignment", grant, run=self.grant_read)
        wanted = {
            **wanted,
            "WEBSITE_RUN_FROM_PACKAGE": self.blob.url,  # no SAS: the identity reads it
            "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": "SystemAssigned",
            ARTIFACT_SHA_SETTING: self.artifact.sha256,
        }
        if self.app.plan_settings(plan, wanted):
            plan.add("update", "function triggers", "sync", run=self.sync_triggers)

    # Reads, for the planner.

    def _uploaded(self) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            properties = _storage("reading the package blob", self.blob.get_blob_properties)
        except ResourceNotFoundError:
            return False
        return properties.metadata.get("sha256") == self.artifact.sha256

    def _granted(self) -> bool:
        found = self.app.arm.send(
            "GET", self._assignment(), missing_ok=True, params={"api-version": AUTHORIZATION_API}
        )
        return found is not None

    def _assignment(self) -> str:
        """The role assignment's URL; its name is derived from what it grants, so it is stable."""
        group = self.app.id.split("/providers/")[0]  # /subscriptions/S/resourceGroups/G
        scope = (
            f"{group}/providers/Microsoft.Storage/storageAccounts/{self.blobs.account_name}"
            f"/blobServices/default/containers/{self.options.container}"
        )
        name = uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{self.principal}|{BLOB_READER_ROLE}")
        return self.app.at(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")

    # The steps.

    def create_container(self) -> None:
        """A private container (no public access level); one made since the plan will do."""
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            _storage("creating the container", self.blobs.create_container, self.options.container)

    def upload(self) -> None:
        from azure.storage.blob import ContentSettings

        with self.artifact.path.open("rb") as data:
            _storage(
                "uploading the package to Blob Storage",
                self.blob.upload_blob,
                data,
                overwrite=True,
                metadata={"sha256": self.artifact.sha256},
                content_settings=ContentSettings(content_type="application/zip"),
            )

    def identity_on(self) -> None:
        """Add the system-assigned identity to whatever identity the app has."""
        current = (self.app.site.get("identity") or {}).get("type", "None")
        kinds = "SystemAssigned" if current in ("", "None") else f"{current}, SystemAssigned"
        patched = self.app.arm.patch(self.app.resource(), {"identity": {"type": kinds}})
        self.principal = patched["identity"]["principalId"]

    def grant_read(self) -> None:
        """Storage Blob Data Reader for the app on the deployment container, and nothing wider."""
        subscription = self.app.id.split("/")[2]
        body = {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{subscription}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{BLOB_READER_ROLE}",
                "principalId": self.principal,
                "principalType": "ServicePrincipal",
            }
        }
        # 409: the same grant already exists under another name, which is what this step wants.
        self.app.arm.send(
            "PUT",
            self._assignment(),
            body,
            conflict_ok=True,
            params={"api-version": AUTHORIZATION_API},
        )

    def sync_triggers(self) -> None:
        self.app.arm.post(self.app.resource("/syncfunctiontriggers"))


def _storage(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A Blob Storage call whose failure is one sentence (a missing blob or container is not)."""
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

    try:
        return call(*args, **kwargs)
    except (ResourceNotFoundError, ResourceExistsError):
        raise
    except AzureError as error:
        raise DeployError(f"{what} failed: {error}") from None
