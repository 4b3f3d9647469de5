"""Promote and rollback on Cloud Run functions: plans that only move the traffic of the
function's Cloud Run service (`deploy/gcp_traffic.py`); nothing is uploaded or built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bertless.deploy import gcp, gcp_function
from bertless.deploy.gcp_traffic import (
    PREVIOUS_TAG,
    TRAFFIC,
    Mover,
    Traffic,
    latest,
    pinned,
    read_service,
)
from bertless.deploy.plan import DeployError, Plan, Say, Target
from bertless.deploy.preflight import check_name, check_region

if TYPE_CHECKING:
    import google.auth.credentials


class GcpRollout:
    """Promote and rollback plans for a function's Cloud Run service."""

    cloud = "gcp"

    def __init__(
        self,
        project: str | None = None,
        credentials: google.auth.credentials.Credentials | None = None,
    ):
        self.project = project
        self.credentials = credentials

    def _read(self, target: Target, say: Say) -> tuple[Plan, Mover, Traffic]:
        check_name("gcp", target.name)
        if not target.region:
            raise DeployError("no GCP region: pass --region (for example us-central1)")
        check_region("gcp", target.region)
        options = gcp.GcpOptions(project=self.project)
        credentials, project = gcp._credentials(self.credentials, options)
        api = gcp._client(credentials, target.endpoint_url)
        name = f"projects/{project}/locations/{target.region}/functions/{target.name}"
        say("reading the function and its Cloud Run service")
        function = api.get(f"{gcp.FUNCTIONS_API}/v2/{name}", missing_ok=True)
        service = gcp_function.service(function or {})
        if service is None:
            raise DeployError(
                f"{target.name} has no Cloud Run service in {target.region}: deploy it first "
                f"with `bertless deploy gcp ... --name {target.name}`"
            )
        traffic = Traffic.read(read_service(api, service))
        return Plan("gcp", target.name, target.region), Mover(api, service, say), traffic

    def plan_promote(self, target: Target, say: Say) -> Plan:
        plan, mover, traffic = self._read(target, say)
        if traffic.canary is None:
            plan.unchanged(TRAFFIC, f"{traffic}; no canary to promote")
        else:
            mover.add(plan, latest(previous=traffic.serving))
        return plan

    def plan_rollback(self, target: Target, say: Say) -> Plan:
        plan, mover, traffic = self._read(target, say)
        back_to = traffic.serving if traffic.canary is not None else traffic.previous
        if back_to is None:
            raise DeployError(
                f"nothing to roll back to: {traffic} and no revision is tagged {PREVIOUS_TAG}"
            )
        mover.add(plan, pinned(back_to))
        return plan
