"""Startup CPU boost for a Cloud Run function: more vCPUs while an instance starts, so a cold
start ends sooner (https://cloud.google.com/run/docs/configuring/services/cpu#startup-boost).

The Cloud Functions v2 API has no field for it (its ServiceConfig stops at availableCpu); the
function's Cloud Run service has it, as `template.containers[].resources.startupCpuBoost` in the
Cloud Run Admin API v2 (https://cloud.google.com/run/docs/reference/rest/v2/
projects.locations.services#ResourceRequirements). So the step reads the service the function
runs on and, when a container lacks the boost, sends the service back with it set
(`services.patch`, the whole resource with its etag, so nothing else changes and a concurrent
change is refused rather than overwritten), a long-running operation polled like the traffic's.

Patching the service makes a revision of its own. A plain deploy then sends all traffic to the
latest revision, which is the boosted one; a canary pins revisions by name, so `--cpu-boost`
is refused with `--canary` (set the boost with a plain deploy, then deploy canaries).
Whether a later function update keeps the boost is not documented: the step is planned again
on every deploy with `--cpu-boost`, and re-reads the service before it patches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertless.deploy.gcp_operation import wait
from bertless.deploy.gcp_traffic import OPERATION_DEADLINE_S, RUN_API, read_service
from bertless.deploy.plan import DeployError, Plan, Say

if TYPE_CHECKING:
    from collections.abc import Callable

    from bertless.deploy.rest import RestClient

BOOST = "startup CPU boost"


def boosted(service: dict[str, Any]) -> bool:
    """Whether every container of the service's template starts with the boost."""
    containers = service.get("template", {}).get("containers", [])
    return bool(containers) and all(
        container.get("resources", {}).get("startupCpuBoost") is True for container in containers
    )


def plan_boost(
    plan: Plan,
    api: RestClient,
    service: str | None,
    function_changes: bool,
    current_service: Callable[[], str | None],
    say: Say,
) -> None:
    """Add the boost step, or say it is already on when nothing else changes the service.

    `service` is the Cloud Run service as planned (None before the function's first build);
    `current_service` names it once the plan's earlier steps ran.
    """
    if service is not None and not function_changes and boosted(read_service(api, service)):
        plan.unchanged(BOOST, "on")
        return

    def run() -> None:
        name = current_service()
        if name is None:
            raise DeployError("Cloud Functions reported no Cloud Run service to boost")
        set_boost(api, name, say)

    plan.add("update", BOOST, "on: the Cloud Run service template's startupCpuBoost", run=run)


def set_boost(api: RestClient, service: str, say: Say) -> None:
    """Turn the boost on in every container of the service's template, unless it is on."""
    current = read_service(api, service)
    if boosted(current):
        return
    template = current.get("template", {})
    containers = template.get("containers", [])
    if not containers:
        raise DeployError(f"Cloud Run service {service} has no container to boost")
    for container in containers:
        container.setdefault("resources", {})["startupCpuBoost"] = True
        # Cloud Run v2: once resources is set, cpuIdle must be sent to keep request-based billing
        container["resources"].setdefault("cpuIdle", True)
    operation = api.patch(f"{RUN_API}/v2/{service}", current)
    failed = "Cloud Run did not turn on the startup CPU boost: {message}"
    wait(api, RUN_API, operation, "Cloud Run", failed, OPERATION_DEADLINE_S, say)
