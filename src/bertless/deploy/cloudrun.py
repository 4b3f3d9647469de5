"""Deploy a pushed image to Cloud Run as a service, over the Cloud Run Admin API v2.

`bertless deploy gcp NAME-image.json` (the report of `bertless package gcp --format image --push`)
lands here instead of Cloud Functions: the image already holds functions-framework serving
`main.handle` on $PORT (`platforms/images.py`), so Cloud Run runs it as it is, with no build.
After https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services:
1. `services.get` (a 404: there is none), then `services.create` (`?serviceId=`) or
   `services.patch`, each a long-running operation polled with `operations.get` until `done`; Cloud
   Run moves traffic to the new revision only once it is ready, so a failed one leaves the last
   serving;
2. public access as for a function: `roles/run.invoker` for `allUsers` on the service, added or
   removed with the service's own getIamPolicy / setIamPolicy.
The image is named by digest, so a service whose template runs this digest with these settings
is "unchanged" and nothing is sent. Credentials, project and the stand-in endpoint as in gcp.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertless.deploy.gcp import (
    INVOKER,
    OPERATION_DEADLINE_S,
    GcpOptions,
    _client,
    _credentials,
    _id_token_headers,
    _is_public,
    _preflight,
    plan_access,
    service_policy,
    set_public,
)
from bertless.deploy.gcp_operation import wait
from bertless.deploy.gcp_traffic import RUN_API
from bertless.deploy.plan import DeployError, Plan, Result, Say, Target
from bertless.deploy.preflight import check_concurrent_peak, instance_concurrency, smoke
from bertless.deploy.rest import RestClient
from bertless.platforms.images import GCP_IMAGE

if TYPE_CHECKING:
    import google.auth.credentials

    from bertless.packaging.package import Artifact


def template(artifact: Artifact, target: Target, memory: int, concurrency: int) -> dict[str, Any]:
    """The service's revision template: the image by digest on Cloud Run's port, and the
    settings bertless owns."""
    assert artifact.image_uri and GCP_IMAGE.port
    container = {
        "image": artifact.image_uri,
        "ports": [{"containerPort": GCP_IMAGE.port}],
        "resources": {"limits": {"memory": f"{memory}Mi", "cpu": "1"}},
        "env": [{"name": k, "value": v} for k, v in sorted(target.environment.items())],
    }
    return {
        "containers": [container],
        "maxInstanceRequestConcurrency": concurrency,
        "timeout": f"{target.timeout_s}s",
    }


def differences(current: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What in the running template differs from the wanted one, by name."""
    have = current.get("template", {})
    have_container = (have.get("containers") or [{}])[0]
    want_container = want["containers"][0]
    changed = [
        key
        for key in ("image", "resources", "env")
        if have_container.get(key) != want_container.get(key)
    ]
    changed += [
        key for key in ("maxInstanceRequestConcurrency", "timeout") if have.get(key) != want[key]
    ]
    return changed


class CloudRunDeployer:
    """Plans a Cloud Run service from what Google has, then carries out the plan's steps."""

    cloud = "gcp"

    def __init__(
        self,
        options: GcpOptions,
        credentials: google.auth.credentials.Credentials | None = None,
    ):
        self.options = options
        self.credentials = credentials
        # Set by plan(), which runs before any step:
        self.api: RestClient
        self.name = ""  # projects/P/locations/R/services/S
        self.wanted: dict[str, Any] = {}
        self.say: Say = lambda _: None

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan:
        """The steps from the service as it is to one running this image with these settings."""
        region, memory = _preflight(artifact, target)
        concurrency = instance_concurrency(artifact, self.options.concurrency, say) or 1
        check_concurrent_peak(artifact, memory, concurrency)
        self.credentials, project = _credentials(self.credentials, self.options)
        self.api = _client(self.credentials, target.endpoint_url)
        self.name = f"projects/{project}/locations/{region}/services/{target.name}"
        self.wanted = {"template": template(artifact, target, memory, concurrency)}
        self.say = say
        plan = Plan("gcp", target.name, region)
        say("reading the service")
        current = self.api.get(f"{RUN_API}/v2/{self.name}", missing_ok=True)
        what = f"service {target.name}"
        if current is None:
            detail = f"image {artifact.image_uri} {memory} MB"
            plan.add("create", what, detail, run=self._create)
        elif changes := differences(current, self.wanted["template"]):
            plan.add("update", what, ", ".join(changes), run=self._update)
        else:
            plan.unchanged(what, f"image {artifact.image_uri}")
        is_public = current is not None and _is_public(service_policy(self.api, self.name))
        plan_access(plan, is_public, target.public, self._open, self._close)
        return plan

    def _create(self) -> None:
        parent, service_id = self.name.rsplit("/services/", 1)
        self._wait(
            self.api.post(f"{RUN_API}/v2/{parent}/services?serviceId={service_id}", self.wanted)
        )

    def _update(self) -> None:
        self._wait(self.api.patch(f"{RUN_API}/v2/{self.name}", self.wanted))

    def _wait(self, operation: dict[str, Any]) -> None:
        """Poll the rollout until done; a failed one is a sentence (the last revision serves)."""
        failed = (
            "Cloud Run operation failed: {message}; the previous revision, if any, still serves"
        )
        wait(self.api, RUN_API, operation, "Cloud Run", failed, OPERATION_DEADLINE_S, self.say)

    def _open(self) -> None:
        set_public(self.api, self.name, True)

    def _close(self) -> None:
        set_public(self.api, self.name, False)

    def finish(self, plan: Plan, target: Target, say: Say) -> Result:
        """The service's URL and revision, the notes a user needs, and the smoke request."""
        service = self.api.get(f"{RUN_API}/v2/{self.name}")
        url = service.get("uri")
        if not url:
            raise DeployError(f"Cloud Run reported no URL for {self.name}")
        revision = (service.get("latestReadyRevision") or "").rpartition("/")[2] or None
        auth = "public" if target.public else f"IAM ({INVOKER})"
        result = Result(plan, url, version=revision, auth=auth)
        if target.public:
            result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
        if target.smoke:
            say("smoke request")
            headers = None if target.public else _id_token_headers(self.credentials, url, result)
            if target.public or headers:
                smoke(url, headers)
        return result
