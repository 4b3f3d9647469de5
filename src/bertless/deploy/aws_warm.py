"""AWS's two ways to keep a Lambda function warm, as deploy settings and steps.

SnapStart (`--snapstart`) snapshots each published version after its INIT phase and restores new
execution environments from it: it is the function setting `SnapStart.ApplyOn =
PublishedVersions`, and the versions `bertless deploy aws` publishes for alias `live` get it.
Provisioned concurrency (`--provisioned N`) keeps N environments of the alias initialised.
Lambda refuses SnapStart before Python 3.12 and with provisioned concurrency on the same
version, so both are refused here first, with the reason, before any request.
Prices: `bertless.platforms.aws` (WarmPricing); `bertless cost` prices both.
API: https://docs.aws.amazon.com/lambda/latest/api/API_SnapStart.html,
https://docs.aws.amazon.com/lambda/latest/api/API_PutProvisionedConcurrencyConfig.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertless.deploy.aws_steps import step
from bertless.deploy.plan import Plan, PreflightError
from bertless.platforms.names import LAMBDA_ALIAS

if TYPE_CHECKING:
    from bertless.deploy.aws_steps import Clients
    from bertless.packaging.package import Artifact

SNAPSTART_FROM = (3, 12)  # the first Python runtime SnapStart supports (GA 2024-11-18)


def check(artifact: Artifact, snapstart: bool, provisioned: int) -> None:
    """Refuse, before any request, what Lambda would refuse later."""
    if provisioned < 0:
        raise PreflightError(f"--provisioned takes 0 or more environments; got {provisioned}")
    if not snapstart:
        return
    if provisioned:
        raise PreflightError(
            "SnapStart and provisioned concurrency cannot serve one version (Lambda refuses "
            "both together): drop --snapstart or --provisioned"
        )
    version = tuple(int(part) for part in artifact.python.split(".")[:2])
    if version < SNAPSTART_FROM:
        raise PreflightError(
            f"SnapStart needs Python 3.12 or later and this artifact runs Python "
            f"{artifact.python}: package it again with --python 3.12"
        )


def settings(snapstart: bool) -> dict[str, Any]:
    """The function setting SnapStart adds; without the flag SnapStart is left as it is."""
    return {"SnapStart": {"ApplyOn": "PublishedVersions"}} if snapstart else {}


def snapstart_as_set(current: dict[str, Any]) -> dict[str, str]:
    """The part of GetFunctionConfiguration's SnapStart a deploy compares: ApplyOn only
    (OptimizationStatus is Lambda's to report)."""
    return {"ApplyOn": (current.get("SnapStart") or {}).get("ApplyOn", "None")}


def plan_provisioned(
    plan: Plan, clients: Clients, name: str, count: int, alias_exists: bool
) -> None:
    """Provisioned concurrency on alias `live`: set when it differs from `count`, else unchanged.

    It follows the alias: when the alias moves to a new version, Lambda provisions that one.
    """
    if count == 0:
        return
    awslambda = clients.awslambda
    current = None
    if alias_exists:
        try:
            current = awslambda.get_provisioned_concurrency_config(
                FunctionName=name, Qualifier=LAMBDA_ALIAS
            )
        except awslambda.exceptions.ProvisionedConcurrencyConfigNotFoundException:
            current = None
    what = f"provisioned concurrency on {LAMBDA_ALIAS}"
    detail = f"{count} environment{'s' if count > 1 else ''} kept initialised"
    if current is not None and current.get("RequestedProvisionedConcurrentExecutions") == count:
        plan.unchanged(what, detail)
        return
    run = step(_provision, clients, name, count)
    plan.add("create" if current is None else "update", what, detail, run=run)


def _provision(clients: Clients, name: str, count: int) -> None:
    """PutProvisionedConcurrencyConfig; Lambda readies the environments in the background."""
    clients.awslambda.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=LAMBDA_ALIAS, ProvisionedConcurrentExecutions=count
    )
