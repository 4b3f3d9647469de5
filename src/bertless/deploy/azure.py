"""Deploy an artifact to an existing Azure Functions app: Flex Consumption or Linux Consumption.

The planner reads the app through Azure Resource Manager (management.azure.com,
Microsoft.Web/sites 2023-12-01) with read-only requests: the site, which must exist, be a Linux
function app and run the artifact's Python; its web config (Linux Consumption keeps the stack
there); and its app settings. The site document tells the plans apart: a Flex Consumption app has
`properties.functionAppConfig`, whose `runtime` ({"name": "python", "version": "3.12"}) replaces
linuxFxVersion (https://learn.microsoft.com/python/api/azure-mgmt-web/azure.mgmt.web.models.
functionappconfig). Then:

- Flex Consumption publishes the zip through the app's OneDeploy endpoint (see azure_flex);
- Linux Consumption runs the app from a private blob the app reads with its own identity
  (see azure_blob).

`finish` fetches the default function key (auth level FUNCTION unless public), shown once, and
sends the smoke request.

Credentials: azure-identity's DefaultAzureCredential for ARM, OneDeploy and Blob Storage unless a
TokenCredential is given, or the standard AZURE_STORAGE_CONNECTION_STRING for Blob Storage when
set. `endpoint_url` replaces the ARM base, for a local stand-in; the SCM host always comes from
the site document, reached with ARM's scheme (https, or a loopback stand-in's http). Not handled:
creating the app itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bertless.deploy import azure_blob, azure_flex
from bertless.deploy.azure_app import (
    ARM,
    PUBLIC_SETTING,
    WEB_API,
    App,
    AzureOptions,
    arm_client,
)
from bertless.deploy.azure_scale import FlexScale
from bertless.deploy.plan import DeployError, Plan, PreflightError, Result, Say, Target
from bertless.deploy.preflight import (
    check_artifact,
    check_name,
    check_region,
    instance_concurrency,
    smoke,
)
from bertless.deploy.rest import RestClient
from bertless.deploy.rollout import check_supported
from bertless.platforms import names

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from bertless.packaging.package import Artifact


class AzureDeployer:
    """Plans a deploy to an existing function app from what ARM shows, then carries it out.

    One instance serves one deploy: `plan` keeps the app it read (and the Flex or Linux
    Consumption steps, which keep what one step makes for the next) for the steps and `finish`.
    """

    cloud = "azure"

    def __init__(self, options: AzureOptions, credentials: TokenCredential | None = None):
        self.options = options
        self.credentials = credentials
        self.app: App  # set by plan()

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan:
        """The steps from the app as it is to the one `artifact` and `target` ask for."""
        region = _preflight(artifact, target, self.options)
        concurrency = instance_concurrency(artifact, self.options.concurrency, say)
        scale = FlexScale(self.options.always_ready, self.options.instance_memory_mb, concurrency)
        scale.check()
        credential = self.credentials or _default_credential()
        arm = arm_client(credential, target.endpoint_url, WEB_API)
        site_id = (
            f"/subscriptions/{self.options.subscription}/resourceGroups/"
            f"{self.options.resource_group}/providers/Microsoft.Web/sites/{target.name}"
        )
        say("reading the function app")
        site = _read_site(arm, site_id, target, artifact, region)
        # ARM spells the read of app settings as a POST (they hold secrets); it writes nothing.
        settings = arm.post(f"{ARM}{site_id}/config/appsettings/list")["properties"]
        self.app = App(arm, site_id, site, settings)
        if not self.app.flex and self.options.concurrency is None and concurrency is not None:
            # A Linux Consumption instance has no per-instance HTTP concurrency to set.
            say(f"{target.name} is a Linux Consumption app: its concurrency is left as it is")
            scale = replace(scale, concurrency=None)

        plan = Plan("azure", target.name, names.azure_region(site["location"]))
        wanted = {**target.environment, PUBLIC_SETTING: "1" if target.public else "0"}
        scale.plan(plan, self.app)
        if self.app.flex:
            azure_flex.FlexPublish(self.app, artifact, say).plan(plan, wanted)
        else:
            say("reading the package blob")
            package = azure_blob.BlobPackage(self.app, artifact, self.options, credential)
            package.plan(plan, wanted)
        return plan

    def finish(self, plan: Plan, target: Target, say: Say) -> Result:
        """The URL, the notes, the function key (shown once) and the smoke request."""
        app = self.app
        result = Result(plan, app.url, auth="anonymous" if target.public else "function key")
        if target.memory_mb is not None:
            where = (
                "a Flex app's instance size is set by --instance-memory"
                if app.flex
                else "Linux Consumption instances have fixed memory"
            )
            result.notes.append(f"--memory is ignored: {where}")
        if target.public:
            result.notes.append(f"PUBLIC: anyone on the internet can call {app.url}")
        else:
            say("fetching the function key")
            keys = app.arm.post(app.resource("/host/default/listkeys"))
            result.secret = keys.get("functionKeys", {}).get("default")
            result.secret_label = "function key (send as x-functions-key)"
            if not result.secret:
                raise DeployError(f"{app.name} has no default function key")
        if target.smoke:
            say("smoke request")
            smoke(app.url, None if target.public else {"x-functions-key": result.secret or ""})
        return result


def _preflight(artifact: Artifact, target: Target, options: AzureOptions) -> str | None:
    """The checks that need no request; the region asked for, when one was."""
    check_name("azure", target.name)
    if target.canary is not None:
        check_supported("azure")
    check_artifact(artifact, "azure", options.instance_memory_mb, options.concurrency)
    if not options.subscription:
        raise PreflightError(
            "no Azure subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID"
        )
    if not options.resource_group:
        raise PreflightError("no Azure resource group: pass --resource-group")
    return check_region("azure", target.region) if target.region else None


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _read_site(
    arm: RestClient, site_id: str, target: Target, artifact: Artifact, region: str | None
) -> dict[str, Any]:
    """The app as ARM reports it, refused unless it is a Linux function app on this Python."""
    site = arm.get(f"{ARM}{site_id}", missing_ok=True)
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
        web = arm.get(f"{ARM}{site_id}/config/web")
        stack = web["properties"].get("linuxFxVersion", "")
    if stack and stack.lower() != f"python|{artifact.python}":
        raise DeployError(
            f"{target.name} runs {stack} but the artifact is for Python {artifact.python}; "
            f"package with --python {stack.partition('|')[2]}"
        )
    return site
