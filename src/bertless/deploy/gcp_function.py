"""The Cloud Functions v2 Function resource bertless owns, and how to tell it is already right.

Google keeps no hash of the uploaded source that a client can compare, so the artifact's sha256
travels in an environment variable of the function (BERTLESS_ARTIFACT_SHA256); a function whose
hash and settings match needs no upload. Shapes after
https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions and
https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.operations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bertless.deploy.plan import ARTIFACT_SHA_SETTING, PreflightError, Target
from bertless.platforms import limits

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact

UPDATE_PATHS = (
    "buildConfig.runtime",
    "buildConfig.entryPoint",
    "buildConfig.source",
    "serviceConfig.availableMemory",
    "serviceConfig.timeoutSeconds",
    "serviceConfig.environmentVariables",
    "labels",
)
# ServiceConfig fields set only when a flag asks (--min-instances, --max-instances, --concurrency,
# --cpu); the Functions v2 API carries them, so one API deploys and scales the function. Startup
# CPU boost is not among them (it is Cloud Run Admin v2's containers[].resources.startupCpuBoost).
SCALE_FIELDS = {
    "minInstanceCount": "min instances",
    "maxInstanceCount": "max instances",
    "maxInstanceRequestConcurrency": "concurrency",
    "availableCpu": "CPU",
}


def update_mask(want: Mapping[str, Any]) -> str:
    """The updateMask of a PATCH: what bertless owns, and the scale fields it was asked for."""
    scale = [f"serviceConfig.{key}" for key in SCALE_FIELDS if key in want["serviceConfig"]]
    return ",".join([*UPDATE_PATHS, *scale])


def scale_fields(
    memory_mb: int,
    min_instances: int | None = None,
    max_instances: int | None = None,
    concurrency: int | None = None,
    cpu: str | None = None,
) -> dict[str, Any]:
    """The ServiceConfig scale fields asked for, refused first as the API would refuse them."""
    if min_instances is not None and min_instances < 0:
        raise PreflightError(f"--min-instances takes 0 or more; got {min_instances}")
    if max_instances is not None and max_instances < max(1, min_instances or 0):
        raise PreflightError(
            f"--max-instances must be at least 1 and at least --min-instances; got {max_instances}"
        )
    most = 1000  # Cloud Run's per-instance maximum (limits.GCP's warm pricing, max_concurrency)
    warm = limits.GCP.pricing.warm if limits.GCP.pricing else None
    if warm and warm.max_concurrency:
        most = warm.max_concurrency.value
    if concurrency is not None and not 1 <= concurrency <= most:
        raise PreflightError(f"--concurrency takes 1 to {most}; got {concurrency}")
    vcpus = limits.vcpus_for_memory("gcp", memory_mb)
    if cpu is not None:
        try:
            vcpus = float(cpu)
        except ValueError:
            vcpus = 0.0
        if vcpus <= 0:
            raise PreflightError(f"--cpu takes a number of vCPUs, like 1 or 0.583; got {cpu!r}")
    if (concurrency or 1) > 1 and vcpus < 1:
        raise PreflightError(
            f"Cloud Run takes more than one request per instance only with at least 1 vCPU, and "
            f"{memory_mb} MB gets {vcpus:g}: pass --cpu 1 as well"
        )
    given = {
        "minInstanceCount": min_instances,
        "maxInstanceCount": max_instances,
        "maxInstanceRequestConcurrency": concurrency,
        "availableCpu": cpu,
    }
    return {key: value for key, value in given.items() if value is not None}


def runtime(artifact: Artifact) -> str:
    """The Cloud Functions runtime id for the artifact's Python (python312, ...)."""
    return limits.require_runtime("gcp", artifact.python).identifier


def wanted(
    artifact: Artifact,
    target: Target,
    memory: int,
    name: str,
    scale: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Function as the deploy asks for it, without its source (the upload names that);
    `scale` is `scale_fields`' answer."""
    return {
        "name": name,
        "environment": "GEN_2",
        "labels": {"deployed-by": "bertless"},
        "buildConfig": {"runtime": runtime(artifact), "entryPoint": artifact.entry_point},
        "serviceConfig": {
            "availableMemory": f"{memory}Mi",
            "timeoutSeconds": target.timeout_s,
            "environmentVariables": {**target.environment, ARTIFACT_SHA_SETTING: artifact.sha256},
            **(scale or {}),
        },
    }


_MEMORY = re.compile(r"(\d+)(k|M|G|Mi|Gi)?")
_MEMORY_UNITS = {"k": 1e3, "M": 1e6, "G": 1e9, "Mi": 2**20, "Gi": 2**30, None: 1}


def memory_bytes(text: str) -> float:
    """availableMemory in bytes; Google accepts k, M, G, Mi and Gi and may answer in another."""
    match = _MEMORY.fullmatch(text)
    if not match:
        return -1
    return int(match[1]) * _MEMORY_UNITS[match[2]]


def differences(current: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What keeps the current function from being the wanted one, in words; empty when none.

    The words go into the plan's update step, so a dry run says why it would update.
    """
    have_build, want_build = current.get("buildConfig", {}), want["buildConfig"]
    have, wanted_service = current.get("serviceConfig", {}), want["serviceConfig"]
    have_env = have.get("environmentVariables", {})
    want_env = wanted_service["environmentVariables"]
    found = []
    if current.get("state") != "ACTIVE":
        found.append(f"state {current.get('state', 'unknown')}")
    if have_env.get(ARTIFACT_SHA_SETTING) != want_env[ARTIFACT_SHA_SETTING]:
        found.append(f"artifact {want_env[ARTIFACT_SHA_SETTING][:12]}")
    for key, label in (("runtime", "runtime"), ("entryPoint", "entry point")):
        if have_build.get(key) != want_build[key]:
            found.append(f"{label} {want_build[key]}")
    have_memory = memory_bytes(have.get("availableMemory", ""))
    if have_memory != memory_bytes(wanted_service["availableMemory"]):
        found.append(f"memory {wanted_service['availableMemory']}")
    if have.get("timeoutSeconds") != wanted_service["timeoutSeconds"]:
        found.append(f"timeout {wanted_service['timeoutSeconds']} s")
    for key, label in SCALE_FIELDS.items():
        if key in wanted_service and not _same(have.get(key), wanted_service[key]):
            found.append(f"{label} {wanted_service[key]}")
    other = {k: v for k, v in have_env.items() if k != ARTIFACT_SHA_SETTING}
    if other != {k: v for k, v in want_env.items() if k != ARTIFACT_SHA_SETTING}:
        found.append("environment")
    return found


def _same(have: Any, want: Any) -> bool:
    """Scale values as the API may echo them: availableCpu "1" and "1.0" are one setting."""
    if isinstance(want, str):
        try:
            return have is not None and float(have) == float(want)
        except ValueError:
            return have == want
    return have == want


def service(function: dict[str, Any]) -> str | None:
    """The Cloud Run service that serves the function; none before its first build finished."""
    return function.get("serviceConfig", {}).get("service")


def revision(function: dict[str, Any]) -> str | None:
    return function.get("serviceConfig", {}).get("revision")


def url(function: dict[str, Any]) -> str | None:
    return function.get("url") or function.get("serviceConfig", {}).get("uri")


def stage(operation: dict[str, Any]) -> str | None:
    """The stage in progress, from the operation's metadata (OperationMetadata.stages)."""
    for each in operation.get("metadata", {}).get("stages", []):
        if each.get("state") == "IN_PROGRESS":
            return f"{each.get('name', '').lower().replace('_', ' ')}: {each.get('message', '')}"
    return None
