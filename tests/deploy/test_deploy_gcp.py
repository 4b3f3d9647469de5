"""`bertless deploy gcp`: the source zip goes to a real Cloud Storage emulator; the API calls go to
a STAND-IN for the Cloud Functions v2 and Cloud Run v2 IAM APIs, which have no emulator.

The stand-in below is not Google's service: it is a small http.server app that answers in the
documented shapes (https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.
functions, .../operations/get, Cloud Run v2 services getIamPolicy/setIamPolicy, get, and patch
of `traffic`) and CHECKS what it receives against them (traffic: percents adding up to 100 over
revisions that exist): the bearer token, functionId's rules, the required fields of a Function,
updateMask paths, a storageSource it issued whose object really is in the emulator, and that
operations are polled until done. A request that breaks those rules is answered 400 and listed in
`violations`, which every test asserts is empty.
"""

from __future__ import annotations

import copy
import io
import itertools
import re
import zipfile
from typing import TYPE_CHECKING

import google.oauth2.credentials
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from bertless.deploy import gcp
from bertless.deploy.plan import (
    ARTIFACT_SHA_SETTING,
    Apply,
    DeployError,
    Plan,
    PreflightError,
    Result,
    Show,
    Target,
)
from bertless.deploy.plan import deploy as run_deploy

if TYPE_CHECKING:
    from deploy_fixtures import Call


PROJECT, REGION = "bertless-test", "europe-west1"
TOKEN = "stand-in-token"
UPLOAD_BUCKET = "gcf-v2-uploads-stand-in"
RUNTIMES = {"python311", "python312", "python313", "python314"}
MASK_PATHS = {
    "buildConfig.runtime",
    "buildConfig.entryPoint",
    "buildConfig.source",
    "serviceConfig.availableMemory",
    "serviceConfig.timeoutSeconds",
    "serviceConfig.environmentVariables",
    "labels",
}
FUNCTIONS = re.compile(r"/v2/projects/([^/]+)/locations/([^/]+)/functions")
SERVICES = re.compile(r"/v2/projects/([^/]+)/locations/([^/]+)/services/[^/:]+")
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"


class CloudFunctionsStandIn:
    """Cloud Functions v2 + Cloud Run v2 IAM, as far as a deploy uses them. Not Google's code."""

    def __init__(self, bucket: storage.Bucket):
        self.bucket = bucket
        self.functions: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.issued: set[str] = set()
        self.fail_next_build: str | None = None
        self.revisions: dict[str, list[str]] = {}  # Cloud Run service -> its revisions, in order
        self.traffic: dict[str, list[dict]] = {}  # service -> its traffic targets, when set
        self.url = ""
        self.ids = itertools.count(1)

    def __call__(self, call: Call) -> tuple[int, object]:
        if call.path.startswith("/fn/"):
            return self.serve_function(call)
        assert call.headers.get("authorization") == f"Bearer {TOKEN}", "no bearer token"
        path = call.path
        if path.endswith("/functions:generateUploadUrl") and call.method == "POST":
            return self.generate_upload_url(path)
        if "/operations/" in path and call.method == "GET":
            return self.get_operation(path.removeprefix("/v2/"))
        if path.endswith(":getIamPolicy") and call.method == "GET":
            return 200, self.policies.get(path, {"etag": "BwAAAA=="})
        if path.endswith(":setIamPolicy") and call.method == "POST":
            return self.set_iam_policy(path, call.body)
        if FUNCTIONS.fullmatch(path) and call.method == "POST":
            return self.create(path, call)
        if SERVICES.fullmatch(path):
            return self.service(path.removeprefix("/v2/"), call)
        if call.method == "GET":
            name = path.removeprefix("/v2/")
            if name not in self.functions:
                return 404, {"error": {"code": 404, "message": f"{name} not found"}}
            return 200, self.functions[name]
        if call.method == "PATCH":
            return self.update(path.removeprefix("/v2/"), call)
        raise AssertionError(f"no such method: {call.method} {path}")

    def generate_upload_url(self, path: str) -> tuple[int, object]:
        assert FUNCTIONS.fullmatch(path.removesuffix(":generateUploadUrl")), "bad parent"
        obj = f"{PROJECT}-{next(self.ids)}.zip"
        self.issued.add(obj)
        host = self.bucket.client._connection.API_BASE_URL  # the emulator
        url = f"{host}/{UPLOAD_BUCKET}/{obj}?X-Goog-Signature=stand-in&X-Goog-Expires=1800"
        return 200, {"uploadUrl": url, "storageSource": {"bucket": UPLOAD_BUCKET, "object": obj}}

    def check_function(self, body: dict, name: str) -> None:
        """The fields a deploy must send, per the v2 Function resource."""
        assert body.get("name") == name, "name does not match the path"
        assert body.get("environment") == "GEN_2", "environment must be GEN_2"
        build = body.get("buildConfig", {})
        assert build.get("runtime") in RUNTIMES, f"unknown runtime {build.get('runtime')}"
        assert build.get("entryPoint"), "buildConfig.entryPoint is required"
        source = build.get("source", {}).get("storageSource", {})
        assert source.get("bucket") == UPLOAD_BUCKET, "storageSource.bucket was not issued"
        assert source.get("object") in self.issued, "storageSource.object was not issued"
        blob = self.bucket.get_blob(source["object"])
        assert blob is not None, "nothing was uploaded to the signed URL"
        assert zipfile.is_zipfile(io.BytesIO(blob.download_as_bytes())), "upload is not a zip"
        service = body.get("serviceConfig", {})
        assert re.fullmatch(r"\d+(k|M|G|Mi|Gi)?", service.get("availableMemory", "")), "memory"

    def create(self, path: str, call: Call) -> tuple[int, object]:
        function_id = call.query.get("functionId", [""])[0]
        assert re.fullmatch(r"[a-z][a-z0-9-]{2,61}[a-z0-9]", function_id), "bad functionId"
        name = f"{path.removeprefix('/v2/')}/{function_id}"
        assert name not in self.functions, "function exists"
        self.check_function(call.body, name)
        return 200, self.operation(name, call.body)

    def update(self, name: str, call: Call) -> tuple[int, object]:
        assert name in self.functions, "function does not exist"
        mask = call.query.get("updateMask", [""])[0].split(",")
        assert set(mask) <= MASK_PATHS, f"unknown updateMask paths {set(mask) - MASK_PATHS}"
        self.check_function(call.body, name)
        return 200, self.operation(name, call.body)

    def operation(self, name: str, function: dict) -> dict:
        """A long-running operation that is done on its second poll."""
        location = name.split("/functions/")[0]
        op_name = f"{location}/operations/operation-{next(self.ids)}"
        self.operations[op_name] = {"polls": 0, "function": function, "error": self.fail_next_build}
        self.fail_next_build = None
        return {"name": op_name, "done": False, "metadata": {"target": name}}

    def get_operation(self, op_name: str) -> tuple[int, object]:
        assert op_name in self.operations, "unknown operation"
        op = self.operations[op_name]
        op["polls"] += 1
        if op["polls"] < 2:
            stages = [{"name": "BUILD", "state": "IN_PROGRESS", "message": "building"}]
            return 200, {"name": op_name, "done": False, "metadata": {"stages": stages}}
        if op["error"]:
            return 200, {
                "name": op_name,
                "done": True,
                "error": {"code": 3, "message": op["error"]},
            }
        function = self.finish(op["function"])
        return 200, {"name": op_name, "done": True, "response": function}

    def finish(self, body: dict) -> dict:
        name = body["name"]
        short = name.rsplit("/", 1)[1]
        revision = len([o for o in self.operations.values() if o["function"]["name"] == name])
        location = name.split("/functions/")[0]
        function = {
            **body,
            "state": "ACTIVE",
            "url": f"{self.url}/fn/{short}",
            "serviceConfig": {
                **body["serviceConfig"],
                "availableMemory": normalized(body["serviceConfig"]["availableMemory"]),
                "service": f"{location}/services/{short}",
                "revision": f"{short}-{revision:05d}-abc",
                "uri": f"{self.url}/fn/{short}",
            },
        }
        self.functions[name] = function
        service = function["serviceConfig"]["service"]
        self.revisions.setdefault(service, []).append(function["serviceConfig"]["revision"])
        return function

    def service(self, name: str, call: Call) -> tuple[int, object]:
        """Cloud Run v2 services get, and patch of `traffic` (an operation done at once)."""
        if name not in self.revisions:
            return 404, {"error": {"code": 404, "message": f"{name} not found"}}
        if call.method == "PATCH":
            assert call.query.get("updateMask") == ["traffic"], "only traffic may change"
            entries = call.body["traffic"]
            assert sum(e["percent"] for e in entries) == 100, "percents must add up to 100"
            for entry in entries:
                assert entry["type"] in (LATEST, REVISION), f"bad type {entry['type']}"
                if entry["type"] == REVISION:
                    assert entry["revision"] in self.revisions[name], "no such revision"
            self.traffic[name] = entries
            return 200, {"name": f"{name.split('/services/')[0]}/operations/run-1", "done": True}
        latest = f"{name}/revisions/{self.revisions[name][-1]}"
        traffic = self.traffic.get(name, [{"type": LATEST, "percent": 100}])
        return 200, {"name": name, "latestReadyRevision": latest, "traffic": traffic}

    def shares(self, function: str) -> dict[str, int]:
        """Which revision of a function's service gets what percent of requests."""
        service = f"{function.split('/functions/')[0]}/services/{function.rsplit('/', 1)[1]}"
        shares: dict[str, int] = {}
        for entry in self.traffic.get(service, [{"type": LATEST, "percent": 100}]):
            revision = self.revisions[service][-1] if entry["type"] == LATEST else entry["revision"]
            if entry["percent"]:
                shares[revision] = shares.get(revision, 0) + entry["percent"]
        return shares

    def set_iam_policy(self, path: str, body: dict) -> tuple[int, object]:
        policy = body.get("policy")
        assert isinstance(policy, dict), "body must be {'policy': Policy}"
        for binding in policy.get("bindings", []):
            assert binding.get("role") and binding.get("members"), "a binding needs role+members"
        stored = path.replace(":setIamPolicy", ":getIamPolicy")
        self.policies[stored] = {**policy, "etag": "BwAAAB=="}
        return 200, self.policies[stored]

    def serve_function(self, call: Call) -> tuple[int, object]:
        """The deployed function's URL: open only when allUsers holds roles/run.invoker."""
        short = call.path.split("/")[2]
        policy = next((p for k, p in self.policies.items() if f"/services/{short}:" in k), {})
        public = any(
            "allUsers" in b["members"] and b["role"] == "roles/run.invoker"
            for b in policy.get("bindings", [])
        )
        if not public:
            return 403, {"error": "forbidden"}
        return 200, {"status": "ok"}


def normalized(memory: str) -> str:
    """Whole GiB in Gi, as the API may answer: the client must compare bytes, not strings."""
    match = re.fullmatch(r"(\d+)Mi", memory)
    if match and int(match[1]) % 1024 == 0:
        return f"{int(match[1]) // 1024}Gi"
    return memory


@pytest.fixture
def google_env(monkeypatch, tmp_path):
    """No way for google-auth to find real credentials or to probe the metadata server."""
    import google.auth.compute_engine._metadata as metadata

    monkeypatch.setattr(metadata, "_NO_GCE_CHECK", True)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for key in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def upload_bucket(gcs_endpoint) -> storage.Bucket:
    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_endpoint},
    )
    bucket = client.bucket(UPLOAD_BUCKET)
    if not bucket.exists():
        bucket = client.create_bucket(UPLOAD_BUCKET)
    return bucket


@pytest.fixture
def stand_in(upload_bucket, google_env, serve_stand_in):
    api = CloudFunctionsStandIn(upload_bucket)
    with serve_stand_in(api) as server:
        api.url = server.url
        server.api = api
        yield server
    assert server.violations == []


def credentials():
    return google.oauth2.credentials.Credentials(token=TOKEN)


def deployer(given=credentials) -> gcp.GcpDeployer:
    """A fresh deployer, as the CLI makes one per deploy."""
    return gcp.GcpDeployer(gcp.GcpOptions(project=PROJECT), given() if given else None)


def target(server, name: str, **extra) -> Target:
    extra.setdefault("smoke", False)
    return Target(name=name, region=REGION, endpoint_url=server.url, **extra)


def deploy(artifact, server, name: str, **extra) -> Result:
    return run_deploy(deployer(), artifact, target(server, name, **extra), Apply())


def uploads(server) -> int:
    """How many objects the signed uploads put into the storage emulator."""
    return len(list(server.api.bucket.list_blobs()))


def test_first_deploy_uploads_real_bytes_and_creates_a_private_function(artifacts, stand_in):
    artifact = artifacts("gcp")
    result = deploy(artifact, stand_in, "first-fn")

    name = f"projects/{PROJECT}/locations/{REGION}/functions/first-fn"
    function = stand_in.api.functions[name]
    source = function["buildConfig"]["source"]["storageSource"]
    uploaded = stand_in.api.bucket.get_blob(source["object"]).download_as_bytes()
    assert uploaded == artifact.path.read_bytes()
    assert function["buildConfig"]["runtime"] == "python312"
    assert function["buildConfig"]["entryPoint"] == "handle"
    assert function["serviceConfig"]["environmentVariables"][ARTIFACT_SHA_SETTING] == (
        artifact.sha256
    )
    assert function["serviceConfig"]["availableMemory"] == "512Mi"
    assert result.url == function["url"] and result.changed
    assert result.version == function["serviceConfig"]["revision"]
    assert not any(c.path.endswith(":setIamPolicy") for c in stand_in.calls)  # private
    polls = [c for c in stand_in.calls if "/operations/" in c.path]
    assert len(polls) == 2  # polled until done


def test_second_deploy_of_same_artifact_uploads_nothing_and_says_unchanged(artifacts, stand_in):
    artifact = artifacts("gcp")
    deploy(artifact, stand_in, "same-fn")
    stand_in.calls.clear()

    result = deploy(artifact, stand_in, "same-fn")

    assert not result.changed
    assert stand_in.writes() == []
    assert [step.action for step in result.plan.steps] == ["unchanged", "unchanged"]


def test_changed_artifact_patches_with_an_update_mask(artifacts, stand_in):
    deploy(artifacts("gcp", b"v1"), stand_in, "changing-fn")
    changed = artifacts("gcp", b"v2")

    result = deploy(changed, stand_in, "changing-fn")

    patch = next(c for c in stand_in.calls if c.method == "PATCH")
    assert "buildConfig.source" in patch.query["updateMask"][0]
    function = stand_in.api.functions[patch.path.removeprefix("/v2/")]
    assert function["serviceConfig"]["environmentVariables"][ARTIFACT_SHA_SETTING] == (
        changed.sha256
    )
    assert result.version.startswith("changing-fn-00002")
    update = next(step for step in result.plan.steps if step.action == "update")
    assert update.detail == f"artifact {changed.sha256[:12]}"  # the plan says why


def test_memory_reported_in_another_unit_is_still_unchanged(artifacts, stand_in):
    artifact = artifacts("gcp", memory_mb=1024)
    deploy(artifact, stand_in, "units-fn")  # the stand-in answers "1Gi", as Google may
    stand_in.calls.clear()
    deploy(artifact, stand_in, "units-fn")
    assert stand_in.writes() == []


def test_public_grants_invoker_to_all_users_and_the_smoke_request_passes(artifacts, stand_in):
    result = deploy(artifacts("gcp"), stand_in, "open-fn", public=True, smoke=True)

    policy = next(iter(stand_in.api.policies.values()))
    assert {"role": "roles/run.invoker", "members": ["allUsers"]} in policy["bindings"]
    assert any(c.path == "/fn/open-fn/health" for c in stand_in.calls)
    assert any(note.startswith("PUBLIC") for note in result.notes)

    result = deploy(artifacts("gcp"), stand_in, "open-fn")  # private again
    policy = next(iter(stand_in.api.policies.values()))
    assert policy["bindings"] == []
    assert [step.action for step in result.plan.steps] == ["unchanged", "close"]


def test_opening_keeps_the_other_bindings_of_the_policy(artifacts, stand_in):
    deploy(artifacts("gcp"), stand_in, "shared-fn")
    service = f"/v2/projects/{PROJECT}/locations/{REGION}/services/shared-fn:getIamPolicy"
    viewer = {"role": "roles/run.viewer", "members": ["user:ana@example.com"]}
    invoker = {"role": "roles/run.invoker", "members": ["serviceAccount:ci@example.com"]}
    stand_in.api.policies[service] = {"bindings": [viewer, invoker], "etag": "BwAAAC=="}

    deploy(artifacts("gcp"), stand_in, "shared-fn", public=True)
    invoker_open = {**invoker, "members": [*invoker["members"], "allUsers"]}
    assert stand_in.api.policies[service]["bindings"] == [viewer, invoker_open]

    deploy(artifacts("gcp"), stand_in, "shared-fn")
    assert stand_in.api.policies[service]["bindings"] == [viewer, invoker]


def test_failed_build_is_one_error_and_the_old_revision_keeps_serving(artifacts, stand_in):
    deploy(artifacts("gcp", b"v1"), stand_in, "failing-fn")
    stand_in.api.fail_next_build = "Build failed: pip could not install"

    with pytest.raises(DeployError, match=r"Build failed.*previous revision, if any, still serves"):
        deploy(artifacts("gcp", b"v2"), stand_in, "failing-fn")

    name = f"projects/{PROJECT}/locations/{REGION}/functions/failing-fn"
    assert stand_in.api.functions[name]["serviceConfig"]["revision"].startswith("failing-fn-00001")


# (deploys before, then the artifact payload and --public of the deploy under test, its actions)
SCENARIOS = [
    pytest.param([], (b"v1", False), ["upload", "create", "unchanged"], id="first-deploy"),
    pytest.param([(b"v1", False)], (b"v1", False), ["unchanged", "unchanged"], id="repeat"),
    pytest.param(
        [(b"v1", False)], (b"v2", False), ["upload", "update", "unchanged"], id="changed-artifact"
    ),
    pytest.param([], (b"v1", True), ["upload", "create", "open"], id="first-deploy-public"),
    pytest.param([(b"v1", True)], (b"v2", False), ["upload", "update", "close"], id="made-private"),
]


@pytest.mark.parametrize(("before", "now", "actions"), SCENARIOS)
def test_dry_run_steps_equal_the_steps_the_deploy_took(artifacts, stand_in, before, now, actions):
    for payload, public in before:
        deploy(artifacts("gcp", payload), stand_in, "planned-fn", public=public)
    payload, public = now
    artifact, wanted = artifacts("gcp", payload), target(stand_in, "planned-fn", public=public)
    stored, objects = copy.deepcopy(stand_in.api.functions), uploads(stand_in)
    stand_in.calls.clear()

    shown: list[Plan] = []
    assert run_deploy(deployer(), artifact, wanted, Show(), shown=shown.append) is None

    assert [call.method for call in stand_in.calls if call.method != "GET"] == []
    assert stand_in.api.functions == stored and uploads(stand_in) == objects
    result = run_deploy(deployer(), artifact, wanted, Apply())
    assert [step.action for step in shown[0].steps] == actions
    assert shown[0].steps == result.plan.steps
    fresh = deployer().plan(artifact, wanted, lambda _: None)
    assert [step.action for step in fresh.steps] == ["unchanged", "unchanged"]


def test_cli_dry_run_prints_the_plan_and_sends_only_reads(
    artifacts, stand_in, deploy_cli, monkeypatch, capsys
):
    import google.auth

    monkeypatch.setattr(google.auth, "default", lambda scopes: (credentials(), PROJECT))
    argv = ["gcp", "x", "--name", "planned-fn", "--region", REGION, "--dry-run"]

    assert deploy_cli(artifacts("gcp"), [*argv, "--endpoint-url", stand_in.url]) == 0

    out = capsys.readouterr().out
    assert "dry run: nothing touched" in out
    assert "function planned-fn" in out and "public access" in out
    assert [call.method for call in stand_in.calls] == ["GET"]  # the function: absent
    assert stand_in.api.functions == {}


@pytest.mark.parametrize("executor", [Apply(), Show()], ids=["deploy", "dry-run"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Upper_Case"}, "gcp refuses the name 'Upper_Case'"),
        ({"name": "abc"}, "4 to 63 lowercase letters"),
        ({"name": "ends-with-"}, "not ending with a hyphen"),
        ({"region": "mars-central1"}, "gcp has no region 'mars-central1'"),
        ({"cloud": "azure"}, "was packaged for azure, not gcp"),
        ({"timeout_s": 3601}, "timeout must be 1 to 3600 s"),
        ({"credentials": None}, "no Google Cloud credentials found"),
    ],
)
def test_bad_input_is_one_sentence_before_any_request(
    artifacts, recorder, google_env, executor, change, message
):
    artifact = artifacts(change.get("cloud", "gcp"))
    spec = {"name": "fine-fn", "region": REGION, "timeout_s": 30}
    spec.update({k: v for k, v in change.items() if k in spec})
    given = None if "credentials" in change else credentials
    wanted = Target(endpoint_url=recorder.url, smoke=False, **spec)
    with pytest.raises(PreflightError) as refused:
        run_deploy(deployer(given), artifact, wanted, executor)
    assert message in str(refused.value)
    assert recorder.calls == []
