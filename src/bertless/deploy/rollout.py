"""Releasing a new model in steps: a canary share of traffic, then promote, or roll back.

`bertless deploy CLOUD ... --canary PERCENT` deploys as usual but sends only that share of
requests to the new version; `promote` gives it all of them; `rollback` returns all of them to
the version that served before. Promote and rollback only move traffic: they upload and build
nothing, so they take seconds and cannot fail halfway through a build.

Each is a plan of the deploy planner (`deploy/plan.py`): read the cloud (read-only calls), plan
the traffic move, show it, and carry it out unless it is a dry run. Each cloud's `Rollout` reads
and moves its own traffic: AWS an alias's routing configuration (`deploy/aws_rollout.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bertless.deploy.plan import Executor, Plan, PreflightError, Say, Target
from bertless.platforms.rollout import refusal

MOVES = ("promote", "rollback")


def check_canary(percent: float) -> float:
    """The canary's share as a weight in (0, 1); 0 and 100 are not canaries."""
    if not 0 < percent < 100:
        raise PreflightError(
            f"--canary takes a share of traffic between 0 and 100 percent, not {percent:g}: "
            "0 would send the new version nothing and 100 is a plain deploy"
        )
    return round(percent / 100, 4)


def check_supported(cloud: str) -> None:
    """Refuse, before any request, a canary, promote or rollback where traffic cannot be split."""
    sentence = refusal(cloud)
    if sentence is not None:
        raise PreflightError(sentence)


class Rollout(Protocol):
    """What a cloud offers to move traffic between the versions a deploy left behind."""

    cloud: str

    def plan_promote(self, target: Target, say: Say) -> Plan:
        """All traffic to the canary; the version that served before is remembered."""
        ...

    def plan_rollback(self, target: Target, say: Say) -> Plan:
        """All traffic back to the version that served before the canary or the last promote."""
        ...


def move(
    rollout: Rollout,
    how: str,
    target: Target,
    executor: Executor,
    say: Say = lambda _: None,
    shown: Callable[[Plan], None] = lambda _: None,
) -> Plan:
    """Plan a promote or a rollback from the cloud's state, show it, carry it out."""
    if how not in MOVES:
        raise ValueError(f"unknown traffic move {how!r}")
    say(f"reading {target.name} on {rollout.cloud}")
    planner = rollout.plan_promote if how == "promote" else rollout.plan_rollback
    plan = planner(target, say)
    shown(plan)
    executor.execute(plan, say)
    return plan
