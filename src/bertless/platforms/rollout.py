"""How each platform splits traffic between two versions of a function, as read on its own pages.

`bertless deploy --canary`, `promote` and `rollback` move traffic with the mechanism named here;
a platform (or hosting plan) whose mechanism is None has none that bertless can use, and the
refusal names what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertless.platforms.records import Sourced

READ_ON_ROLLOUT = "2026-11-29"


@dataclass(frozen=True, kw_only=True)
class TrafficSplit(Sourced):
    """The API that splits traffic on a platform, or None with the alternative to use."""

    mechanism: str | None
    alternative: str = ""


TRAFFIC_SPLIT = {
    "aws": TrafficSplit(
        mechanism="Lambda alias routing configuration (UpdateAlias, RoutingConfig."
        "AdditionalVersionWeights: one extra version with a weight from 0 to 1)",
        source="https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html",
        read_on=READ_ON_ROLLOUT,
    ),
    "gcp": TrafficSplit(
        mechanism="Cloud Run Admin API v2 services.patch of the function's Cloud Run service "
        "(updateMask=traffic; TrafficTarget REVISION or LATEST with a percent); a split or "
        "pinned revision is kept by later deploys",
        source="https://cloud.google.com/functions/docs/configuring/traffic-splitting; "
        "https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration",
        read_on=READ_ON_ROLLOUT,
    ),
    "azure": TrafficSplit(
        mechanism=None,
        alternative="Flex Consumption supports no deployment slots and Linux Consumption is "
        "retired; for a canary run the app on a Premium (Elastic Premium) or Dedicated plan, "
        "whose deployment slots take a share of traffic (`az webapp traffic-routing set`), or "
        "deploy a second function app and split requests in front of both (Azure Front Door)",
        source="https://learn.microsoft.com/azure/azure-functions/functions-scale; "
        "https://learn.microsoft.com/azure/azure-functions/functions-deployment-slots",
        read_on=READ_ON_ROLLOUT,
    ),
}


def refusal(cloud: str) -> str | None:
    """One sentence why `cloud` takes no canary and what to use instead; None when it takes one."""
    split = TRAFFIC_SPLIT[cloud]
    if split.mechanism is not None:
        return None
    return f"{cloud} cannot split traffic between versions here: {split.alternative}"
