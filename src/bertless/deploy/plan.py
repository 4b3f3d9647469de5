"""What a deploy will do, what it did, and the checks every cloud shares.

A deploy is a list of steps. `--dry-run` prints the steps a deploy *would* take without reading or
writing anything in the cloud, so the same types describe the plan and the result; the result
also says whether anything changed, so a repeated deploy can say "unchanged".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bertless.core.errors import BertlessError
from bertless.platforms import limits

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact

log = logging.getLogger(__name__)

ARTIFACT_SHA_SETTING = "BERTLESS_ARTIFACT_SHA256"
"""The setting that carries the artifact's sha256 where a platform keeps no code hash of its own."""

Progress = Callable[[str], None]


class DeployError(BertlessError):
    """A deploy that cannot go on; the message says what is wrong and what to do."""


class PreflightError(DeployError):
    """Input refused before any request reaches a cloud."""


class SmokeError(DeployError):
    """The deployed function did not answer its health check."""


@dataclass(frozen=True)
class Target:
    """What to deploy to, common to every cloud.

    memory_mb None keeps the artifact's own setting; environment is extra function settings.
    """

    name: str
    region: str | None = None
    memory_mb: int | None = None
    timeout_s: int = 30
    public: bool = False
    endpoint_url: str | None = None
    smoke: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One thing a deploy creates, updates, uploads or leaves alone."""

    action: str  # create, update, upload, unchanged, open, close, delete, check
    what: str
    detail: str = ""
    size: int | None = None


@dataclass
class Plan:
    """The steps of one deploy; a dry run prints it, a real deploy fills it as it goes."""

    cloud: str
    name: str
    region: str
    steps: list[Step] = field(default_factory=list)

    def add(self, action: str, what: str, detail: str = "", size: int | None = None) -> None:
        self.steps.append(Step(action, what, detail, size))
        log.info("%s %s %s", action, what, detail)

    @property
    def changed(self) -> bool:
        """True when any step wrote to the cloud."""
        return any(step.action not in ("unchanged", "check") for step in self.steps)


@dataclass
class Result:
    """A finished deploy. `secret` is shown once to the user and never logged or stored."""

    plan: Plan
    url: str | None
    version: str | None = None
    auth: str = ""
    notes: list[str] = field(default_factory=list)
    secret: str | None = field(default=None, repr=False)
    secret_label: str = ""

    @property
    def changed(self) -> bool:
        return self.plan.changed


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
