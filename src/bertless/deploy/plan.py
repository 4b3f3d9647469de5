"""A deploy is a plan computed from the cloud's current state, then carried out step by step.

Each cloud's planner reads what is there with read-only calls and returns a `Plan`: the steps that
bring the cloud to what the artifact and the flags ask for, "unchanged" included. An executor
then takes the plan: `Apply` runs every step's action in order, `Show` runs none, which is all a
`--dry-run` is. Because both take the same plan, the plan shown is the plan executed (the shape
of Chalice's planner and executors, and of Terraform's plan and apply).

A step's action may need what an earlier one made (a role's ARN, an upload's storage location):
each cloud's deployer keeps those on itself, so a plan is a list of bound methods and text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bertless.core.errors import BertlessError
from bertless.say import Say

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact

log = logging.getLogger(__name__)

ARTIFACT_SHA_SETTING = "BERTLESS_ARTIFACT_SHA256"
"""The setting that carries the artifact's sha256 where a platform keeps no code hash of its own."""

ACTIONS = ("create", "update", "upload", "open", "close", "unchanged")
WRITES = ("create", "update", "upload", "open", "close")


class DeployError(BertlessError):
    """A deploy that cannot go on; the message says what is wrong and what to do."""


class PreflightError(DeployError):
    """Input refused before any request reaches a cloud."""


class SmokeError(DeployError):
    """The deployed function did not answer its health check."""


@dataclass(frozen=True)
class Target:
    """What to deploy to, common to every cloud.

    memory_mb None keeps the artifact's own setting; environment is extra function settings;
    canary, a weight between 0 and 1, sends only that share of requests to the new version
    (`deploy/rollout.py`).
    """

    name: str
    region: str | None = None
    memory_mb: int | None = None
    timeout_s: int = 30
    public: bool = False
    endpoint_url: str | None = None
    smoke: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)
    canary: float | None = None


@dataclass(frozen=True)
class Step:
    """One thing a deploy creates, updates, uploads, opens, closes or leaves alone.

    Two steps are equal when they read the same: the action is how it is done, not what.
    """

    action: str  # one of ACTIONS
    what: str
    detail: str = ""
    size: int | None = None
    run: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown step action {self.action!r}")
        if (self.run is None) != (self.action == "unchanged"):
            raise ValueError(f"step {self.what!r}: only an unchanged step has nothing to run")

    def __str__(self) -> str:
        return " ".join(part for part in (self.action, self.what, self.detail) if part)


@dataclass
class Plan:
    """The steps that take a cloud from what it has to what the deploy asks for."""

    cloud: str
    name: str
    region: str
    steps: list[Step] = field(default_factory=list)

    def add(
        self,
        action: str,
        what: str,
        detail: str = "",
        size: int | None = None,
        run: Callable[[], object] | None = None,
    ) -> None:
        self.steps.append(Step(action, what, detail, size, run))

    def unchanged(self, what: str, detail: str = "") -> None:
        self.add("unchanged", what, detail)

    @property
    def changed(self) -> bool:
        """True when carrying the plan out writes anything to the cloud."""
        return any(step.action in WRITES for step in self.steps)


@dataclass
class Result:
    """A finished deploy. `secret` is shown once to the user and never logged or stored."""

    plan: Plan
    url: str
    version: str | None = None
    auth: str = ""
    notes: list[str] = field(default_factory=list)
    secret: str | None = field(default=None, repr=False)
    secret_label: str = ""

    @property
    def changed(self) -> bool:
        return self.plan.changed


class Deployer(Protocol):
    """What every cloud's deploy client offers; `deploy()` below is the only caller.

    `plan` sends read-only requests and nothing else; `finish` runs after the plan was carried
    out and reads what a user needs (the URL, the version, a key) and smoke-tests it.
    """

    cloud: str

    def plan(self, artifact: Artifact, target: Target, say: Say) -> Plan: ...

    def finish(self, plan: Plan, target: Target, say: Say) -> Result: ...


class Apply:
    """Carries a plan out, one step after another; a failing step stops the rest."""

    dry_run = False

    def execute(self, plan: Plan, say: Say) -> None:
        for step in plan.steps:
            if step.run is not None:
                say(str(step))
                log.info("%s", step)
                step.run()


class Show:
    """Carries nothing out: the executor of `--dry-run`."""

    dry_run = True

    def execute(self, plan: Plan, say: Say) -> None:
        return None


Executor = Apply | Show


def deploy(
    deployer: Deployer,
    artifact: Artifact,
    target: Target,
    executor: Executor,
    say: Say = lambda _: None,
    shown: Callable[[Plan], None] = lambda _: None,
) -> Result | None:
    """Plan from the cloud's state, show the plan, carry it out; None for a dry run."""
    say(f"reading {target.name} on {deployer.cloud}")
    plan = deployer.plan(artifact, target, say)
    shown(plan)
    executor.execute(plan, say)
    if executor.dry_run:
        return None
    return deployer.finish(plan, target, say)
