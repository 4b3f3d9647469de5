"""Deploy an artifact to Google Cloud Run functions (Cloud Functions 2nd gen) over the v2 REST API.

Steps, after https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions:
1. `functions:generateUploadUrl` gives a signed Cloud Storage URL and the `storageSource` to name;
2. the zip goes there in one PUT with `content-type: application/zip` and no Authorization header
   (the signed URL is the credential, per the generateUploadUrl reference);
3. `functions` POST (create) or PATCH with an updateMask (update) returns a long-running
   operation, polled with `operations.get` until `done`; a failed build leaves the previous
   revision serving, because Cloud Run only moves traffic to a revision that became ready;
4. with `public`, `roles/run.invoker` for `allUsers` on the function's Cloud Run service
   (Cloud Run Admin API v2 getIamPolicy / setIamPolicy); without it, that binding is removed.

Google keeps no hash of the uploaded source that a client can compare, so the artifact's sha256
travels in an environment variable of the function (BERTLESS_ARTIFACT_SHA256); a re-deploy whose
hash and settings match uploads nothing. Credentials: `google.auth.default()`. `endpoint_url`
replaces both API bases (cloudfunctions and run), for a local stand-in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
from bertless.platforms import limits, names

if TYPE_CHECKING:
    import google.auth.credentials

    from bertless.packaging.package import Artifact

FUNCTIONS_API = "https://cloudfunctions.googleapis.com"
RUN_API = "https://run.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
INVOKER = "roles/run.invoker"
PUBLIC_MEMBER = "allUsers"
OPERATION_DEADLINE_S = 30 * 60
UPDATE_MASK = ",".join(
    [
        "buildConfig.runtime",
        "buildConfig.entryPoint",
        "buildConfig.source",
        "serviceConfig.availableMemory",
        "serviceConfig.timeoutSeconds",
        "serviceConfig.environmentVariables",
        "labels",
    ]
)


@dataclass(frozen=True)
class GcpOptions:
    """GCP-only choices: the project (default: the one google.auth.default() reports)."""

    project: str | None = None


def plan(artifact: Artifact, target: Target, options: GcpOptions) -> Plan:
    """What a deploy would do, from the inputs alone: no credentials read, no request sent."""
    region, memory = _preflight(artifact, target)
    project = options.project or "(default project)"
    steps = Plan("gcp", target.name, region)
    steps.add("upload", "zip", "to a signed generateUploadUrl", artifact.zipped_bytes)
    steps.add(
        "create",
        f"function projects/{project}/locations/{region}/functions/{target.name}",
        f"or update if it exists; {_runtime(artifact)} {memory} MB",
    )
    if target.public:
        steps.add("open", "Cloud Run service", f"{INVOKER} for {PUBLIC_MEMBER}")
    return steps


def deploy(
    artifact: Artifact,
    target: Target,
    options: GcpOptions,
    credentials: google.auth.credentials.Credentials | None = None,
    progress: Progress | None = None,
) -> Result:
    """Create or update the function so it serves `artifact`; say so if it already did."""
    import requests
    from google.auth.transport.requests import AuthorizedSession

    region, memory = _preflight(artifact, target)
    credentials, project = _credentials(credentials, options)
    say = progress or (lambda _: None)
    api = _Api(AuthorizedSession(credentials), target.endpoint_url)
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/functions/{target.name}"
    steps = Plan("gcp", target.name, region)
    wanted = _function(artifact, target, memory, name)

    say("reading the function")
    current = api.get(f"{FUNCTIONS_API}/v2/{name}", missing_ok=True)
    if current is not None and _matches(current, wanted):
        steps.add("unchanged", f"function {target.name}", artifact.sha256[:12])
    else:
        say("uploading the source")
        upload = api.post(f"{FUNCTIONS_API}/v2/{parent}/functions:generateUploadUrl", {})
        _put_zip(requests, upload["uploadUrl"], artifact)
        steps.add("upload", "zip", "to the signed upload URL", artifact.zipped_bytes)
        wanted["buildConfig"]["source"] = {"storageSource": upload["storageSource"]}
        if current is None:
            say("creating the function (build and rollout)")
            url = f"{FUNCTIONS_API}/v2/{parent}/functions?functionId={target.name}"
            operation = api.post(url, wanted)
            action = "create"
        else:
            say("updating the function (build and rollout)")
            url = f"{FUNCTIONS_API}/v2/{name}?updateMask={UPDATE_MASK}"
            operation = api.patch(url, wanted)
            action = "update"
        api.wait(operation, say)
        steps.add(action, f"function {target.name}", f"{wanted['buildConfig']['runtime']}")
        current = api.get(f"{FUNCTIONS_API}/v2/{name}")

    service = current.get("serviceConfig", {}).get("service")
    if service:
        _access(api, service, target.public, steps)
    url = current.get("url") or current.get("serviceConfig", {}).get("uri")
    if not url:
        raise DeployError(f"Cloud Functions reported no URL for {name}")
    auth = "public" if target.public else "IAM (roles/run.invoker)"
    result = Result(steps, url, version=_revision(current), auth=auth)
    if target.public:
        result.notes.append(f"PUBLIC: anyone on the internet can call {url}")
    if target.smoke:
        say("smoke request")
        headers = None if target.public else _id_token_headers(credentials, url, result)
        if target.public or headers:
            smoke(url, headers)
    return result


def _preflight(artifact: Artifact, target: Target) -> tuple[str, int]:
    names.check_name("gcp", target.name)
    memory = check_artifact(artifact, "gcp", target.memory_mb)
    if not target.region:
        raise PreflightError("no GCP region: pass --region (for example us-central1)")
    names.check_region("gcp", target.region)
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


def _runtime(artifact: Artifact) -> str:
    return limits.require_runtime("gcp", artifact.python).identifier


def _function(artifact: Artifact, target: Target, memory: int, name: str) -> dict[str, Any]:
    """The Function resource bertless owns (v2 REST shape)."""
    return {
        "name": name,
        "environment": "GEN_2",
        "labels": {"deployed-by": "bertless"},
        "buildConfig": {"runtime": _runtime(artifact), "entryPoint": artifact.entry_point},
        "serviceConfig": {
            "availableMemory": f"{memory}Mi",
            "timeoutSeconds": target.timeout_s,
            "environmentVariables": {**target.environment, ARTIFACT_SHA_SETTING: artifact.sha256},
        },
    }


_MEMORY = re.compile(r"(\d+)(k|M|G|Mi|Gi)?")
_MEMORY_UNITS = {"k": 1e3, "M": 1e6, "G": 1e9, "Mi": 2**20, "Gi": 2**30, None: 1}


def _memory_bytes(text: str) -> float:
    """availableMemory in bytes; Google accepts k, M, G, Mi and Gi and may answer in another."""
    match = _MEMORY.fullmatch(text)
    if not match:
        return -1
    return int(match[1]) * _MEMORY_UNITS[match[2]]


def _matches(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when the function already runs this artifact with these settings, and is healthy."""
    have_build, want_build = current.get("buildConfig", {}), wanted["buildConfig"]
    have, want = current.get("serviceConfig", {}), wanted["serviceConfig"]
    return (
        current.get("state") == "ACTIVE"
        and have_build.get("runtime") == want_build["runtime"]
        and have_build.get("entryPoint") == want_build["entryPoint"]
        and _memory_bytes(have.get("availableMemory", "")) == _memory_bytes(want["availableMemory"])
        and have.get("timeoutSeconds") == want["timeoutSeconds"]
        and have.get("environmentVariables", {}) == want["environmentVariables"]
    )


def _put_zip(requests: Any, upload_url: str, artifact: Artifact) -> None:
    """One PUT to the signed URL; no Authorization header, as the API reference requires."""
    with artifact.path.open("rb") as body:
        response = requests.put(
            upload_url,
            data=body,
            headers={"content-type": "application/zip"},
            timeout=600,
        )
    if response.status_code not in (200, 201):
        raise DeployError(
            f"uploading the source failed with {response.status_code}: {response.text[:200]}"
        )


def _access(api: _Api, service: str, public: bool, steps: Plan) -> None:
    """Add or remove allUsers as invoker on the Cloud Run service; touch nothing otherwise."""
    if not service.startswith("projects/"):
        raise DeployError(f"unexpected Cloud Run service name {service!r}")
    policy = api.get(f"{RUN_API}/v2/{service}:getIamPolicy")
    bindings = policy.get("bindings", [])
    invoker = next((b for b in bindings if b.get("role") == INVOKER), None)
    is_public = invoker is not None and PUBLIC_MEMBER in invoker.get("members", [])
    if public == is_public:
        return
    if public:
        if invoker is None:
            bindings.append({"role": INVOKER, "members": [PUBLIC_MEMBER]})
        else:
            invoker["members"].append(PUBLIC_MEMBER)
        steps.add("open", "Cloud Run service", f"{INVOKER} for {PUBLIC_MEMBER}")
    else:
        invoker["members"].remove(PUBLIC_MEMBER)
        if not invoker["members"]:
            bindings.remove(invoker)
        steps.add("close", "Cloud Run service", f"{PUBLIC_MEMBER} removed from {INVOKER}")
    policy["bindings"] = bindings
    api.post(f"{RUN_API}/v2/{service}:setIamPolicy", {"policy": policy})


def _revision(function: dict[str, Any]) -> str | None:
    return function.get("serviceConfig", {}).get("revision")


def _id_token_headers(
    credentials: google.auth.credentials.Credentials, url: str, result: Result
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


class _Api:
    """JSON over an authorized session; errors become sentences; operations are polled."""

    def __init__(self, session: Any, endpoint_url: str | None):
        self.session = session
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None

    def _url(self, url: str) -> str:
        if self.endpoint_url:
            for base in (FUNCTIONS_API, RUN_API):
                if url.startswith(base):
                    return self.endpoint_url + url[len(base) :]
        return url

    def _send(self, method: str, url: str, body: Any = None, missing_ok: bool = False) -> Any:
        import requests

        try:
            response = self.session.request(method, self._url(url), json=body, timeout=60)
        except requests.RequestException as error:
            raise DeployError(f"{method} {url} failed: {error}") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise DeployError(f"{method} {url} failed with {response.status_code}: {message}")
        return response.json() if response.content else {}

    def get(self, url: str, missing_ok: bool = False) -> Any:
        return self._send("GET", url, missing_ok=missing_ok)

    def post(self, url: str, body: Any) -> Any:
        return self._send("POST", url, body)

    def patch(self, url: str, body: Any) -> Any:
        return self._send("PATCH", url, body)

    def wait(self, operation: dict[str, Any], say: Progress) -> dict[str, Any]:
        """Poll `operations.get` until done; a failed operation becomes a DeployError."""
        deadline = time.monotonic() + OPERATION_DEADLINE_S
        delay = 0.2
        while not operation.get("done"):
            if time.monotonic() > deadline:
                raise DeployError(f"operation {operation['name']} did not finish in time")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            operation = self.get(f"{FUNCTIONS_API}/v2/{operation['name']}")
            stage = _stage(operation)
            if stage:
                say(stage)
        if "error" in operation:
            raise DeployError(
                f"Cloud Functions operation failed: {operation['error'].get('message', '')}; "
                "the previous revision, if any, still serves"
            )
        return operation.get("response", {})


def _stage(operation: dict[str, Any]) -> str | None:
    """The stage in progress, from the operation's metadata (OperationMetadata.stages)."""
    for stage in operation.get("metadata", {}).get("stages", []):
        if stage.get("state") == "IN_PROGRESS":
            return f"{stage.get('name', '').lower().replace('_', ' ')}: {stage.get('message', '')}"
    return None
