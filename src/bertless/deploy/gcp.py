"""Deploy an artifact to Google Cloud Run functions (Cloud Functions 2nd gen) over the v2 REST API.

The planner reads the function (a 404 means there is none) and, when it has a Cloud Run service,
that service's IAM policy; nothing else. The steps it plans, after
https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions:
1. upload: `functions:generateUploadUrl` gives a signed Cloud Storage URL and the `storageSource`
   to name; the zip goes there in one PUT with `content-type: application/zip` and no
   Authorization header (the signed URL is the credential, per the generateUploadUrl reference);
2. create (`functions` POST) or update (PATCH with an updateMask): a long-running operation,
   polled with `operations.get` until `done`; a failed build leaves the previous revision
   serving, because Cloud Run only moves traffic to a revision that became ready;
3. public access: with `public`, `roles/run.invoker` for `allUsers` on the function's Cloud Run
   service (Cloud Run Admin API v2 getIamPolicy / setIamPolicy); without it, that binding goes.
A function that already runs this artifact with these settings is "unchanged" and nothing is
uploaded (see gcp_function). Credentials: `google.auth.default()` unless given. `endpoint_url`
replaces both API bases (cloudfunctions and run), for a local stand-in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.deploy import gcp_boost, gcp_function, gcp_operation, gcp_traffic
from bertless.deploy.gcp_traffic import RUN_API
from bertless.deploy.plan import DeployError, Plan, PreflightError, Result, Say, Target
from bertless.deploy.preflight import (
    check_artifact,
    check_concurrent_peak,
    check_name,
    check_region,
    instance_concurrency,
    smoke,
)
from bertless.deploy.rest import RestClient
from bertless.platforms import limits

if TYPE_CHECKING:
    import google.auth.credentials

    from bertless.packaging.package import Artifact

FUNCTIONS_API = "https://cloudfunctions.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
INVOKER = "roles/run.invoker"
PUBLIC_MEMBER = "allUsers"
OPERATION_DEADLINE_S = 30 * 60
ACCESS = "public access"
UPLOAD = "to a signed generateUploadUrl"


@dataclass(frozen=True)
class GcpOptions:
    """GCP-only choices: the project (default: the one google.auth.default() reports), the
    scale settings of the function's service (None: as Google has them; see
    gcp_function.scale_fields), and its startup CPU boost (deploy/gcp_boost.py)."""

    project: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    concurrency: int | None = None
    cpu: str | None = None
    cpu_boost: bool = False


class GcpDeployer:
    """Plans a function deploy from what Google has, then carries out the plan's steps.

    The values a step makes for a later one (the upload's storageSource, the function as the
    build left it) live on the instance; one instance serves one deploy.
    """

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
        self.artifact: Artifact
        self.name = ""  # projects/P/locations/R/functions/F
        self.wanted: dict[str, Any] = {}
        self.current: dict[str, Any] | None = None
        self.say: Say = lambda _: None

    # The planner: preflight, then read-only requests.

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan:
        """The steps from the function as it is to the one `artifact` and `target` ask for."""
        region, memory = _preflight(artifact, target)
        o = self.options
        if o.cpu_boost and target.canary is not None:
            raise PreflightError(
                "--cpu-boost makes a Cloud Run revision of its own, which a canary's split "
                "cannot name: turn the boost on with a plain deploy, then deploy canaries"
            )
        concurrency = instance_concurrency(artifact, o.concurrency, say)
        try:
            scale = gcp_function.scale_fields(
                memory, o.min_instances, o.max_instances, concurrency, o.cpu
            )
        except PreflightError as error:
            if o.concurrency is not None or concurrency is None:
                raise
            raise PreflightError(
                f"{error} ({artifact.path.name} was packaged for {concurrency} requests at "
                "once; --concurrency 1 deploys it for one)"
            ) from None
        check_concurrent_peak(artifact, memory, concurrency)
        self.credentials, project = _credentials(self.credentials, self.options)
        self.api = _client(self.credentials, target.endpoint_url)
        self.artifact, self.say = artifact, say
        self.name = f"projects/{project}/locations/{region}/functions/{target.name}"
        self.wanted = gcp_function.wanted(artifact, target, memory, self.name, scale)
        plan = Plan("gcp", target.name, region)

        say("reading the function")
        self.current = self.api.get(f"{FUNCTIONS_API}/v2/{self.name}", missing_ok=True)
        what = f"function {target.name}"
        changes = (
            None if self.current is None else gcp_function.differences(self.current, self.wanted)
        )
        mover, traffic = self._traffic(target, say)
        if target.canary is not None and changes:
            gcp_traffic.plan_canary_pin(plan, mover, traffic)
        if changes == []:
            plan.unchanged(what, artifact.sha256[:12])
        else:
            plan.add("upload", "zip", UPLOAD, artifact.zipped_bytes, run=self._upload)
            if changes is None:
                detail = f"{gcp_function.runtime(artifact)} {memory} MB"
                plan.add("create", what, detail, run=self._create)
            else:
                plan.add("update", what, ", ".join(changes), run=self._update)
        if o.cpu_boost:
            gcp_boost.plan_boost(
                plan,
                self.api,
                gcp_function.service(self.current or {}),
                changes != [],
                lambda: gcp_function.service(self.current or {}),
                say,
            )

        service = gcp_function.service(self.current or {})
        # A function without a Cloud Run service yet (not created, or its first build never
        # finished) has no policy to read: a new service has no allUsers binding, so it is
        # planned as private, and the step's run reads the real policy once the service exists.
        is_public = service is not None and _is_public(service_policy(self.api, service))
        plan_access(plan, is_public, target.public, self._open, self._close)
        if target.canary is not None:
            gcp_traffic.plan_canary_split(
                plan,
                mover,
                traffic,
                target.canary,
                bool(changes),
                lambda: gcp_function.revision(self.current or {}),
            )
        elif mover is not None:
            gcp_traffic.plan_plain(plan, mover, traffic)
        return plan

    def _traffic(
        self, target: Target, say: Say
    ) -> tuple[gcp_traffic.Mover | None, gcp_traffic.Traffic | None]:
        """The Cloud Run service's traffic: a canary needs a revision serving, and a plain
        deploy undoes a canary, a pin or a rollback (`deploy/gcp_traffic.py`)."""
        service = gcp_function.service(self.current or {})
        if service is None:
            if target.canary is not None:
                raise DeployError(
                    f"{target.name} has no revision serving yet, so there is nothing to compare "
                    "a canary with: deploy it once without --canary"
                )
            return None, None
        traffic = gcp_traffic.Traffic.read(gcp_traffic.read_service(self.api, service))
        return gcp_traffic.Mover(self.api, service, say), traffic

    # The steps' runs, in the order a plan lists them.

    def _upload(self) -> None:
        """Ask for a signed URL, PUT the zip there, and name the object in the wanted source."""
        parent = self.name.rsplit("/functions/", 1)[0]
        upload = self.api.post(f"{FUNCTIONS_API}/v2/{parent}/functions:generateUploadUrl", {})
        _put_zip(upload["uploadUrl"], self.artifact)
        self.wanted["buildConfig"]["source"] = {"storageSource": upload["storageSource"]}

    def _create(self) -> None:
        parent, function_id = self.name.rsplit("/functions/", 1)
        url = f"{FUNCTIONS_API}/v2/{parent}/functions?functionId={function_id}"
        self._wait(self.api.post(url, self.wanted))

    def _update(self) -> None:
        url = f"{FUNCTIONS_API}/v2/{self.name}?updateMask={gcp_function.update_mask(self.wanted)}"
        self._wait(self.api.patch(url, self.wanted))

    def _wait(self, operation: dict[str, Any]) -> None:
        """Poll the build and rollout until done, then keep the function as it now is."""
        failed = (
            "Cloud Functions operation failed: {message}; the previous revision, if any, "
            "still serves"
        )
        gcp_operation.wait(
            self.api,
            FUNCTIONS_API,
            operation,
            "Cloud Functions",
            failed,
            OPERATION_DEADLINE_S,
            self.say,
            gcp_function.stage,
        )
        self.current = self.api.get(f"{FUNCTIONS_API}/v2/{self.name}")

    def _open(self) -> None:
        self._set_public(True)

    def _close(self) -> None:
        self._set_public(False)

    def _set_public(self, public: bool) -> None:
        """The function's requests go through its Cloud Run service: its policy says who calls."""
        service = gcp_function.service(self.current or {})
        if service is None:
            raise DeployError(f"Cloud Functions reported no Cloud Run service for {self.name}")
        set_public(self.api, service, public)

    # After the plan was carried out.

    def finish(self, plan: Plan, target: Target, say: Say) -> Result:
        """The function's URL and revision, the notes a user needs, and the smoke request."""
        function = self.api.get(f"{FUNCTIONS_API}/v2/{self.name}")
        url = gcp_function.url(function)
        if not url:
            raise DeployError(f"Cloud Functions reported no URL for {self.name}")
        auth = "public" if target.public else f"IAM ({INVOKER})"
        result = Result(plan, url, version=gcp_function.revision(function), auth=auth)
        if target.public:
            result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
        if target.smoke:
            say("smoke request")
            headers = None if target.public else _id_token_headers(self.credentials, url, result)
            if target.public or headers:
                smoke(url, headers)
        return result


def _preflight(artifact: Artifact, target: Target) -> tuple[str, int]:
    """The region and memory to deploy with, or a PreflightError before any request."""
    check_name("gcp", target.name)
    memory = check_artifact(artifact, "gcp", target.memory_mb)
    if not target.region:
        raise PreflightError("no GCP region: pass --region (for example us-central1)")
    check_region("gcp", target.region)
    if not 1 <= target.timeout_s <= limits.GCP.timeout_s.value:
        raise PreflightError(f"Cloud Functions timeout must be 1 to {limits.GCP.timeout_s.value} s")
    return target.region, memory


def _credentials(
    credentials: google.auth.credentials.Credentials | None, options: GcpOptions
) -> tuple[google.auth.credentials.Credentials, str]:
    """google.auth.default()'s credentials and project, refused in one sentence when absent."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    project = options.project
    if credentials is None:
        try:
            credentials, found = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError:
            raise PreflightError(
                "no Google Cloud credentials found: run `gcloud auth application-default login` "
                "or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
        project = project or found
    if not project:
        raise PreflightError("no GCP project: pass --project or set GOOGLE_CLOUD_PROJECT")
    return credentials, project


def _client(
    credentials: google.auth.credentials.Credentials, endpoint_url: str | None
) -> RestClient:
    from google.auth.transport.requests import AuthorizedSession

    return RestClient(AuthorizedSession(credentials), (FUNCTIONS_API, RUN_API), endpoint_url)


def plan_access(
    plan: Plan, is_public: bool, public: bool, open_: Callable[[], None], close: Callable[[], None]
) -> None:
    """The access step: allUsers added to or removed from the invoker role, or unchanged."""
    if public == is_public:
        detail = f"{PUBLIC_MEMBER} holds {INVOKER}" if is_public else "authenticated callers only"
        plan.unchanged(ACCESS, detail)
    elif public:
        plan.add("open", ACCESS, f"{INVOKER} for {PUBLIC_MEMBER}", run=open_)
    else:
        plan.add("close", ACCESS, f"{PUBLIC_MEMBER} removed from {INVOKER}", run=close)


def service_policy(api: RestClient, service: str) -> dict[str, Any]:
    """A Cloud Run service's IAM policy: `getIamPolicy` is a GET in Cloud Run Admin v2."""
    if not service.startswith("projects/"):
        raise DeployError(f"unexpected Cloud Run service name {service!r}")
    return api.get(f"{RUN_API}/v2/{service}:getIamPolicy")


def set_public(api: RestClient, service: str, public: bool) -> None:
    """Add or remove allUsers as the service's invoker, keeping every other binding."""
    policy = service_policy(api, service)
    if _is_public(policy) != public:
        policy["bindings"] = _with_public(policy.get("bindings", []), public)
        api.post(f"{RUN_API}/v2/{service}:setIamPolicy", {"policy": policy})


def _is_public(policy: dict[str, Any]) -> bool:
    return any(
        binding.get("role") == INVOKER and PUBLIC_MEMBER in binding.get("members", [])
        for binding in policy.get("bindings", [])
    )


def _with_public(bindings: list[dict[str, Any]], public: bool) -> list[dict[str, Any]]:
    """The bindings with allUsers added to or removed from the invoker role; a role left with
    no members is dropped, as setIamPolicy refuses an empty binding."""
    result = []
    for binding in bindings:
        if binding.get("role") == INVOKER:
            members = [m for m in binding.get("members", []) if m != PUBLIC_MEMBER]
            binding = {**binding, "members": members + ([PUBLIC_MEMBER] if public else [])}
        if binding.get("members"):
            result.append(binding)
    if public and not any(binding.get("role") == INVOKER for binding in bindings):
        result.append({"role": INVOKER, "members": [PUBLIC_MEMBER]})
    return result


def _put_zip(upload_url: str, artifact: Artifact) -> None:
    """One PUT to the signed URL; no Authorization header, as the API reference requires."""
    import requests

    try:
        with artifact.path.open("rb") as body:
            response = requests.put(
                upload_url, data=body, headers={"content-type": "application/zip"}, timeout=600
            )
    except requests.RequestException as error:
        raise DeployError(f"uploading the source failed: {error}") from None
    if response.status_code not in (200, 201):
        raise DeployError(
            f"uploading the source failed with {response.status_code}: {response.text[:200]}"
        )


def _id_token_headers(
    credentials: google.auth.credentials.Credentials | None, url: str, result: Result
) -> dict[str, str] | None:
    """An ID token for the URL when the credentials can mint one; else a note and no smoke."""
    import google.auth.transport.requests
    import google.oauth2.credentials
    from google.auth.exceptions import DefaultCredentialsError, RefreshError
    from google.oauth2 import id_token

    if isinstance(credentials, google.oauth2.credentials.Credentials):
        result.notes.append(
            "smoke request skipped: user credentials cannot mint an ID token for a private "
            'function; try `curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" '
            f"{url}/health`"
        )
        return None
    try:
        token = id_token.fetch_id_token(google.auth.transport.requests.Request(), url)
    except (DefaultCredentialsError, RefreshError) as error:
        result.notes.append(f"smoke request skipped: no ID token for {url} ({error})")
        return None
    return {"Authorization": f"Bearer {token}"}
