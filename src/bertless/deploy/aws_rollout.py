"""Canary, promote and rollback on AWS Lambda: the weights of alias `live`.

An alias points at one version and may send a share of its requests to a second one through
its routing configuration (`RoutingConfig.AdditionalVersionWeights`, a weight from 0 to 1):
https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html. A canary deploy
publishes the new version and gives it that weight while `live` still points at the old one;
promote points `live` at the new one with no routing; rollback drops the routing, or, after a
promote, points `live` back at the version it served before.

Lambda keeps no history of an alias, so bertless writes the version that served before into
the alias's description whenever it moves the alias (`served before: version 3`). Every move
is one UpdateAlias call: requests go to one version or the other, never to a half-updated one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.deploy.aws_steps import Clients, as_sentence, route, step
from bertless.deploy.plan import DeployError, Plan, Say, Target
from bertless.platforms.names import LAMBDA_ALIAS

if TYPE_CHECKING:
    import boto3

_PREVIOUS = re.compile(r"served before: version (\d+)")  # as aws_steps.describe writes it


@dataclass(frozen=True)
class AliasState:
    """Where alias `live` sends requests: its version, a canary with its weight, and the
    version it served before (as bertless recorded it)."""

    version: str
    canary: str | None = None
    weight: float = 0.0
    previous: str | None = None

    def __str__(self) -> str:
        if self.canary is None:
            return f"version {self.version} serves all traffic"
        share = round(self.weight * 100, 2)
        return (
            f"version {self.version} serves {100 - share:g}%, "
            f"canary version {self.canary} {share:g}%"
        )


def read_alias(clients: Clients, name: str) -> AliasState | None:
    """Alias `live` as it is now; None when there is no function or no alias."""
    awslambda = clients.awslambda
    try:
        alias = awslambda.get_alias(FunctionName=name, Name=LAMBDA_ALIAS)
    except awslambda.exceptions.ResourceNotFoundException:
        return None
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    found = _PREVIOUS.search(alias.get("Description") or "")
    canary, weight = next(iter(weights.items()), (None, 0.0))
    return AliasState(
        alias["FunctionVersion"], canary, float(weight), found.group(1) if found else None
    )


def version_config(clients: Clients, name: str, version: str) -> dict[str, Any]:
    """A published version's configuration (its code hash and settings)."""
    return clients.awslambda.get_function_configuration(FunctionName=name, Qualifier=version)


class AwsRollout:
    """Promote and rollback plans for a Lambda function's alias `live`.

    `credentials` is a boto3 Session; None means boto3's default chain, as for a deploy.
    """

    cloud = "aws"

    def __init__(self, credentials: boto3.session.Session | None = None):
        self.credentials = credentials

    def _read(self, target: Target, say: Say) -> tuple[Plan, Clients, AliasState]:
        import boto3

        from bertless.deploy.preflight import check_name, check_region

        check_name("aws", target.name)
        session = self.credentials or boto3.session.Session(region_name=target.region)
        region = target.region or session.region_name
        if not region:
            raise DeployError("no AWS region: pass --region or set AWS_REGION")
        check_region("aws", region)
        clients = Clients(session, region, target.endpoint_url)
        say("reading the alias")
        with as_sentence():
            state = read_alias(clients, target.name)
        if state is None:
            raise DeployError(
                f"{target.name} has no alias {LAMBDA_ALIAS} in {region}: "
                f"deploy it first with `bertless deploy aws ... --name {target.name}`"
            )
        return Plan("aws", target.name, region), clients, state

    def plan_promote(self, target: Target, say: Say) -> Plan:
        plan, clients, state = self._read(target, say)
        what = f"alias {LAMBDA_ALIAS}"
        if state.canary is None:
            plan.unchanged(what, f"{state}; no canary to promote")
            return plan
        detail = f"version {state.version} -> canary version {state.canary}, all traffic"
        run = step(route, clients, target.name, state.canary, None, 0.0, state.version)
        plan.add("update", what, detail, run=run)
        return plan

    def plan_rollback(self, target: Target, say: Say) -> Plan:
        plan, clients, state = self._read(target, say)
        what = f"alias {LAMBDA_ALIAS}"
        if state.canary is not None:
            detail = f"canary version {state.canary} gets none; version {state.version} all"
            run = step(route, clients, target.name, state.version, None, 0.0, state.previous)
            plan.add("update", what, detail, run=run)
        elif state.previous is not None:
            detail = f"version {state.version} -> version {state.previous}, all traffic"
            run = step(route, clients, target.name, state.previous, None, 0.0, None)
            plan.add("update", what, detail, run=run)
        else:
            raise DeployError(
                f"nothing to roll back to: {LAMBDA_ALIAS} {state} and bertless recorded no "
                "version that served before it"
            )
        return plan


def plan_serving(plan: Plan, clients: Clients, name: str, version: str) -> None:
    """A plain deploy of what alias `live`'s own version already runs: nothing to do, unless a
    canary still takes a share; a plain deploy means all traffic, so the canary's weight goes."""
    state = read_alias(clients, name)
    what = f"alias {LAMBDA_ALIAS}"
    if state is None or state.canary is None:
        plan.unchanged(what, f"version {version}")
        return
    detail = f"canary version {state.canary} gets none; version {state.version} all"
    run = step(route, clients, name, state.version, None, 0.0, state.previous)
    plan.add("update", what, detail, run=run)


def plan_canary(
    plan: Plan,
    clients: Clients,
    serves: Callable[[dict[str, Any]], bool],
    weight: float,
    publish: Callable[[], object],
    published: Callable[[], str | None],
) -> None:
    """The alias steps of a canary deploy (after the function's own steps).

    `serves(config)` tells whether a version runs this artifact with these settings;
    `publish` is the deploy's publish step and `published()` the version it made.
    """
    name = plan.name
    state = read_alias(clients, name)
    what = f"alias {LAMBDA_ALIAS}"
    if state is None:
        raise DeployError(
            f"{name} has no version serving yet, so there is nothing to compare a canary with: "
            "deploy it once without --canary"
        )
    if serves(version_config(clients, name, state.version)):
        plan.unchanged(what, f"{state}; it already runs this artifact")
        return
    if state.canary is not None and serves(version_config(clients, name, state.canary)):
        if state.weight == weight:
            plan.unchanged(what, str(state))
            return
        detail = f"canary version {state.canary}: {state.weight:.0%} -> {weight:.0%}"
        run = step(route, clients, name, state.version, state.canary, weight, state.previous)
        plan.add("update", what, detail, run=run)
        return
    plan.add("create", "version", "published from $LATEST", run=publish)

    def send_canary() -> None:
        canary = published()
        assert canary, "the version step runs before the alias step"
        route(clients, name, state.version, canary, weight, state.previous)

    detail = f"version {state.version} keeps {1 - weight:.0%}, the new version gets {weight:.0%}"
    plan.add("update", what, detail, run=step(send_canary))
