"""Flex Consumption: the package goes through the app's OneDeploy endpoint.

Zip deploy and WEBSITE_RUN_FROM_PACKAGE are not supported there; the app runs from the package it
is given (https://learn.microsoft.com/azure/azure-functions/deployment-zip-push). The steps:
1. merge the settings (BERTLESS_PUBLIC and the user's) through ARM `config/appsettings`;
2. POST the zip to `https://<scm host>/api/publish?RemoteBuild=false` with Content-Type
   application/zip and the same Entra ID bearer token as ARM (ARM audience): Azure/azure-cli
   `enable_zip_deploy_flex` in src/azure-cli/azure/cli/command_modules/appservice/custom.py and
   Azure/azure-dev cli/azd/pkg/azsdk/funcapp_host_client.go. RemoteBuild=false because the
   artifact already carries its Linux wheels in .python_packages/lib/site-packages; a remote
   build would reinstall them (https://learn.microsoft.com/azure/azure-functions/
   python-build-options). The answer is the deployment id as a JSON string; then poll
   `/api/deployments/<id>` about once a second until `status` is 4 (success); -1 cancelled,
   3 failed, 5 conflict and 6 partial success are failures, explained by `status_text`
   (https://github.com/Azure/azure-dev/issues/3658, and funcapp_host_client.go above);
3. record BERTLESS_ARTIFACT_SHA256 in the settings last, as a receipt: a publish that fails is
   retried in full, and the planner skips the publish of an artifact the app already runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bertless.deploy.plan import ARTIFACT_SHA_SETTING, DeployError, Plan, Say
from bertless.deploy.rest import check, poll

if TYPE_CHECKING:
    from bertless.deploy.azure_app import App
    from bertless.packaging.package import Artifact

# OneDeploy deployment status codes (Azure/azure-dev#3658): 0 pending, 1 building, 2 deploying.
STAGES = {0: "deployment pending", 1: "building", 2: "deploying"}
SUCCEEDED = 4
FAILED = {-1: "was cancelled", 3: "failed", 5: "lost to another deployment", 6: "partly failed"}
POLL_S = 1.0  # "recommended by the service team" (azd funcapp_host_client.go)
PUBLISH_TIMEOUT_S = 900
APPEAR_TRIES = 3  # azd: a new deployment can take a moment to appear


class FlexPublish:
    """The steps of a Flex Consumption deploy: settings, the publish, the receipt."""

    def __init__(self, app: App, artifact: Artifact, say: Say):
        self.app = app
        self.artifact = artifact
        self.say = say

    def plan(self, plan: Plan, wanted: Mapping[str, str]) -> None:
        """Settings first; the package unless the receipt says the app already runs it."""
        self.app.plan_settings(plan, wanted)
        sha = self.artifact.sha256
        if self.app.settings.get(ARTIFACT_SHA_SETTING) == sha:
            plan.unchanged(f"package {sha[:12]}", "already published")
            return
        plan.add(
            "upload",
            f"package {sha[:12]}",
            "through OneDeploy (no remote build)",
            self.artifact.zipped_bytes,
            run=self.publish,
        )
        plan.add(
            "update",
            "package receipt",
            f"{ARTIFACT_SHA_SETTING} in the app settings",
            run=self.record,
        )

    def publish(self) -> None:
        """POST the zip to OneDeploy and wait until the deployment succeeds."""
        scm = self.app.scm()
        with self.artifact.path.open("rb") as data:
            response = self.app.arm.call(
                "POST",
                f"{scm}/api/publish",
                params={"RemoteBuild": "false", "Deployer": "bertless"},
                data=data,
                headers={"Content-Type": "application/zip"},
                timeout=PUBLISH_TIMEOUT_S,
            )
        if response.status_code == 409:
            raise DeployError(f"{scm} is running another deployment; deploy again when it is done")
        deployment = check(response, "POST /api/publish")
        if not isinstance(deployment, str) or not deployment:
            raise DeployError(f"{scm}/api/publish answered {deployment!r}, not a deployment id")
        self.say("waiting for the deployment")
        self.wait_for(f"{scm}/api/deployments/{deployment}")

    def wait_for(self, url: str) -> None:
        """Poll a OneDeploy deployment until it succeeds; its failure becomes a DeployError."""
        seen, misses = False, 0

        def read() -> int | None:
            """The deployment's status code; None while it has not appeared yet."""
            nonlocal seen, misses
            response = self.app.arm.call("GET", url)
            if response.status_code == 404 and seen:
                return SUCCEEDED  # azd: the worker that ran it can be recycled once it is done
            if response.status_code == 404 and misses < APPEAR_TRIES:
                misses += 1
                return None
            status, seen = check(response, f"GET {url}"), True
            code = status.get("status")
            if code != SUCCEEDED and code not in STAGES:
                outcome = FAILED.get(code, f"ended with status {code}")
                raise DeployError(
                    f"the deployment {outcome}: {status.get('status_text') or 'no reason given'}"
                    f" (log: {status.get('log_url') or url + '/log'})"
                )
            return code

        poll(
            read,
            lambda code: code == SUCCEEDED,
            f"the deployment {url}",
            PUBLISH_TIMEOUT_S,
            self.say,
            describe=lambda code: STAGES.get(code) if code is not None else None,
            first_s=POLL_S,
            most_s=POLL_S,
        )

    def record(self) -> None:
        """The receipt, written only after the deployment succeeded."""
        self.app.put_settings({ARTIFACT_SHA_SETTING: self.artifact.sha256})
