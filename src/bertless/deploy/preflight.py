"""Checks every cloud makes before its first request, and the health check after the last."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bertless.deploy.plan import PreflightError, Say, SmokeError
from bertless.platforms import limits, names

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact


def check_artifact(
    artifact: Artifact, cloud: str, memory_mb: int | None, concurrency: int | None = None
) -> int:
    """Refuse an artifact built for another cloud or runtime, or a memory or concurrency its
    measured peak does not cover; return the memory to deploy with."""
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
    check_concurrent_peak(artifact, memory, concurrency)
    return memory


def check_concurrent_peak(artifact: Artifact, memory_mb: int, concurrency: int | None) -> None:
    """The memory must hold the peak `bertless package` measured with the artifact's
    `--concurrency` worst requests at once, and an instance must not take more than that."""
    peak, packaged = artifact.peak_memory_mb, artifact.concurrency
    at_once = f"{packaged} request{'s' if packaged > 1 else ''} at once"
    if concurrency is not None and concurrency > packaged:
        raise PreflightError(
            f"--concurrency {concurrency} is more than the {at_once} {artifact.path.name} was "
            f"measured with, so its memory is unknown: package it again with --concurrency "
            f"{concurrency}"
        )
    if peak is not None and memory_mb < peak:
        raise PreflightError(
            f"{memory_mb} MB is below the {peak:,.0f} MB {artifact.path.name} peaked at with "
            f"{at_once} (its packaging report): deploy with at least {math.ceil(peak)} MB, "
            "or package it for fewer requests at once"
        )


def instance_concurrency(artifact: Artifact, asked: int | None, say: Say) -> int | None:
    """The requests an instance is to take at once: what the user asked for, else what the
    artifact was packaged for (`bertless package --concurrency N`, its memory measured with N
    worst requests at once) when that is more than one; None leaves the platform's setting."""
    if asked is not None:
        return asked
    if artifact.concurrency > 1:
        say(
            f"instance concurrency {artifact.concurrency}: what {artifact.path.name} was "
            "packaged for (--concurrency sets another)"
        )
        return artifact.concurrency
    return None


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
