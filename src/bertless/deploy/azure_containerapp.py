"""Deploy a pushed image to an existing Azure Functions app on Azure Container Apps.

`bertless deploy azure NAME-image.json` (the report of `bertless package azure --format image
--push`) lands here: Microsoft recommends Functions on Azure Container Apps for most new
containerized function apps (https://learn.microsoft.com/azure/azure-functions/
functions-container-apps-hosting, read 2026-11-29), a `Microsoft.App/containerApps` resource of
`kind: functionapp` whose container runs the Functions host from the image. As with the zip
deploys (azure.py), the app must exist (`az containerapp create --kind functionapp ...`): it
carries the environment, ingress, scale and the registry credentials to pull with, which are the
app's own. bertless owns the container's image, pinned by digest, and its environment
(BERTLESS_PUBLIC and `--env`): ARM's Container Apps API
(https://learn.microsoft.com/rest/api/resource-manager/containerapps/container-apps) reads the
app, PATCHes the template when either differs (a new revision), and is polled until its
`provisioningState` settles; the same digest and environment change nothing.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from bertless.deploy.azure import _default_credential, _preflight
from bertless.deploy.azure_app import ARM, PUBLIC_SETTING, AzureOptions, arm_client
from bertless.deploy.plan import DeployError, Plan, Result, Say, Target
from bertless.deploy.preflight import smoke
from bertless.deploy.rest import RestClient, poll
from bertless.platforms import names

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from bertless.packaging.package import Artifact

APP_API = "2024-03-01"  # Microsoft.App, the Container Apps resource provider
ROLLOUT_DEADLINE_S = 20 * 60


class ContainerAppDeployer:
    """Plans the image and environment of an existing Functions container app, then sets them."""

    cloud = "azure"

    def __init__(self, options: AzureOptions, credentials: TokenCredential | None = None):
        self.options = options
        self.credentials = credentials
        # Set by plan(), which runs before any step:
        self.arm: RestClient
        self.url = ""  # the app's public ARM URL
        self.template: dict[str, Any] = {}
        self.say: Say = lambda _: None

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan:
        """The app's container compared with the image and environment asked for."""
        _preflight(artifact, target, self.options)
        credential = self.credentials or _default_credential()
        self.arm, self.say = arm_client(credential, target.endpoint_url, APP_API), say
        self.url = (
            f"{ARM}/subscriptions/{self.options.subscription}/resourceGroups/"
            f"{self.options.resource_group}/providers/Microsoft.App/containerApps/{target.name}"
        )
        say("reading the container app")
        app = self.arm.get(self.url, missing_ok=True)
        if app is None:
            raise DeployError(
                f"container app {target.name} does not exist in that resource group; create it "
                "with `az containerapp create --kind functionapp --environment ENV ...` first"
            )
        if "functionapp" not in app.get("kind", ""):
            raise DeployError(f"{target.name} is not a Functions container app (kind functionapp)")
        plan = Plan("azure", target.name, names.azure_region(app.get("location", "")))
        self.template = copy.deepcopy(app["properties"]["template"])
        container = self.template["containers"][0]
        wanted = {**target.environment, PUBLIC_SETTING: "1" if target.public else "0"}
        have = {e["name"]: e.get("value") for e in container.get("env", [])}
        changes = ["image"] if container.get("image") != artifact.image_uri else []
        changes += ["environment"] if any(have.get(k) != v for k, v in wanted.items()) else []
        container["image"] = artifact.image_uri
        container["env"] = [e for e in container.get("env", []) if e["name"] not in wanted]
        container["env"] += [{"name": k, "value": v} for k, v in sorted(wanted.items())]
        what = f"container app {target.name}"
        if changes:
            plan.add("update", what, ", ".join(changes), run=self._update)
        else:
            plan.unchanged(what, f"image {artifact.image_uri}")
        return plan

    def _update(self) -> None:
        """PATCH the template (a new revision), then wait for ARM to settle it."""
        self.arm.patch(self.url, {"properties": {"template": self.template}})
        app = poll(
            lambda: self.arm.get(self.url),
            lambda state: state["properties"].get("provisioningState") in SETTLED,
            f"container app {self.url.rpartition('/')[2]}",
            ROLLOUT_DEADLINE_S,
            self.say,
        )
        if app["properties"]["provisioningState"] != "Succeeded":
            raise DeployError(
                f"the container app's update ended {app['properties']['provisioningState']}; "
                "its previous revision, if any, still serves"
            )

    def finish(self, plan: Plan, target: Target, say: Say) -> Result:
        """The app's URL and revision; the smoke request when the app is public."""
        app = self.arm.get(self.url)
        fqdn = (app["properties"].get("configuration", {}).get("ingress") or {}).get("fqdn")
        if not fqdn:
            raise DeployError(f"{target.name} has no ingress: enable external ingress on port 80")
        url = f"https://{fqdn}"
        revision = app["properties"].get("latestReadyRevisionName")
        auth = "anonymous" if target.public else "function key"
        result = Result(plan, url, version=revision, auth=auth)
        if target.public:
            result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
            if target.smoke:
                say("smoke request")
                smoke(url)
        else:
            result.notes.append(
                "the function key is the app's own: read it with `az containerapp function keys "
                "list`; no smoke request was sent"
            )
        return result


SETTLED = ("Succeeded", "Failed", "Canceled")
