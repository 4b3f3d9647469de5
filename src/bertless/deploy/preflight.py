"""Checks every cloud makes before its first request, and the health check after the last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bertless.deploy.plan import PreflightError, SmokeError
from bertless.platforms import limits, names

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact


def check_artifact(artifact: Artifact, cloud: str, memory_mb: int | None) -> int:
    """Refuse an artifact built for another cloud or runtime; return the memory to deploy with."""
    if artifact.cloud != cloud:
        raise PreflightError(
            f"{artifact.path.name} was packaged for {artifact.cloud}, not {cloud}; "
            f"run `bertless package {cloud} BUNDLE` first"
        )
    try:
        limits.require_runtime(cloud, artifact.python)
        memory = memory_mb if memory_mb is not None else artifact.memory_mb
        limits.check_memory(cloud, memory)
    except (limits.UnsupportedRuntimeError, limits.OutOfRangeError) as error:
        raise PreflightError(str(error)) from None
    if not artifact.path.is_file():
        raise PreflightError(f"artifact {artifact.path} does not exist")
    return memory


def smoke(url: str, headers: Mapping[str, str] | None = None, timeout_s: float = 60) -> None:
    """GET `/health` on a fresh deploy, so a function that cannot load its model fails the deploy.

    The first request to a new function is a cold start, hence the long timeout.
    """
    import requests

    health = url.rstrip("/") + "/health"
    try:
        response = requests.get(health, headers=dict(headers or {}), timeout=timeout_s)
    except requests.RequestException as error:
        raise SmokeError(f"smoke request to {health} failed: {error}") from None
    if response.status_code != 200:
        raise SmokeError(
            f"smoke request to {health} answered {response.status_code}: {response.text[:200]}"
        )


def check_name(cloud: str, name: str) -> None:
    """The function name as the platform would judge it, refused before any request."""
    try:
        names.check_name(cloud, name)
    except names.InvalidNameError as error:
        raise PreflightError(str(error)) from None


def check_region(cloud: str, region: str) -> str:
    """The region as the platform spells it, refused before any request when it has no such one."""
    try:
        return names.check_region(cloud, region)
    except names.InvalidNameError as error:
        raise PreflightError(str(error)) from None
