"""The function app being deployed to, and the options that say where it is.

Both plans (Flex Consumption in azure_flex, Linux Consumption in azure_blob) and the planner in
azure.py share these, so they live apart from all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bertless.deploy.plan import DeployError, Plan, PreflightError
from bertless.deploy.rest import RestClient

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

CONTAINER = "bertless-deployments"
ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
WEB_API = "2023-12-01"
PUBLIC_SETTING = "BERTLESS_PUBLIC"  # bertless.adapters.azure: "1" means auth level ANONYMOUS


@dataclass(frozen=True)
class AzureOptions:
    """Where the app and the Linux Consumption package live (in the app's resource group), and
    the Flex app's scale settings to set (None: as they are; see azure_scale)."""

    subscription: str | None = None
    resource_group: str | None = None
    storage_account: str | None = None
    container: str = CONTAINER
    always_ready: int | None = None
    instance_memory_mb: int | None = None
    concurrency: int | None = None


@dataclass
class App:
    """The function app as ARM showed it to the planner, and the client that reaches it.

    `settings` follows the app's settings as the steps change them, so each write keeps what
    an earlier step wrote and the app's own settings.
    """

    arm: RestClient
    id: str  # /subscriptions/.../providers/Microsoft.Web/sites/NAME
    site: dict[str, Any]
    settings: dict[str, str]

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def flex(self) -> bool:
        return bool(self.site.get("properties", {}).get("functionAppConfig"))

    @property
    def url(self) -> str:
        return f"https://{self.site['properties']['defaultHostName']}"

    def resource(self, suffix: str = "") -> str:
        """The public ARM URL of the site, or of one of its parts (`/config/web`)."""
        return self.at(self.id + suffix)

    @staticmethod
    def at(path: str) -> str:
        """The public ARM URL of any resource (the client swaps the base for a stand-in's)."""
        return ARM + path

    def scm(self) -> str:
        """The app's Kudu (SCM) base URL: ARM's hostType Repository entry, as azure-cli finds it."""
        scheme = urlsplit(self.arm.url(ARM)).scheme
        for state in self.site["properties"].get("hostNameSslStates") or []:
            if state.get("hostType") == "Repository":
                return f"{scheme}://{state['name']}"
        raise DeployError(f"{self.name} lists no SCM host name, so it cannot take a deployment")

    def plan_settings(self, plan: Plan, wanted: Mapping[str, str]) -> bool:
        """Plan merging `wanted` into the app's settings; True when that is a write."""
        drift = sorted(key for key, value in wanted.items() if self.settings.get(key) != value)
        if not drift:
            plan.unchanged("app settings")
            return False
        plan.add("update", "app settings", ", ".join(drift), run=lambda: self.put_settings(wanted))
        return True

    def put_settings(self, wanted: Mapping[str, str]) -> None:
        """Merge `wanted` into the app's settings: ARM's PUT replaces them all, so send all."""
        self.settings = {**self.settings, **wanted}
        self.arm.put(self.resource("/config/appsettings"), {"properties": self.settings})


def arm_client(
    credential: TokenCredential, endpoint_url: str | None, api_version: str
) -> RestClient:
    """A client with an ARM bearer token (ARM and a function app's SCM host both take it), for
    one resource provider's API version (Microsoft.Web's WEB_API, Microsoft.App's)."""
    import requests
    from azure.core.exceptions import ClientAuthenticationError

    try:
        token = credential.get_token(ARM_SCOPE).token
    except ClientAuthenticationError:
        raise PreflightError(
            "no Azure credentials found: run `az login`, or set AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET"
        ) from None
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return RestClient(session, (ARM,), endpoint_url, params={"api-version": api_version})
