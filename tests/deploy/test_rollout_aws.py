"""Canary, promote and rollback on AWS Lambda against moto's server: alias `live`'s weights.

What a user would check in the console after each command: which version alias `live` points
at, and the weight its RoutingConfig gives the other one. Neither promote nor rollback may
upload or publish anything: the recorded API calls are reads and one UpdateAlias.
"""

from __future__ import annotations

import pytest
import test_deploy_aws
from test_deploy_aws import REGION, deploy_aws, recording_session, target, versions

from bertless.deploy.aws_rollout import AwsRollout
from bertless.deploy.plan import Apply, DeployError, PreflightError, Show
from bertless.deploy.rollout import check_canary, move

# The AWS deploy tests' fixtures: moto's credentials and a Lambda client on its server.
aws_env = test_deploy_aws.aws_env
awslambda = test_deploy_aws.awslambda


def routing(awslambda, name: str) -> tuple[str, dict[str, float]]:
    """Alias `live`'s version and its additional version weights, as Lambda reports them."""
    alias = awslambda.get_alias(FunctionName=name, Name="live")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"], weights


def canary(artifacts, endpoint: str, name: str, percent: float = 10):
    """Deploy v1 for all traffic, then v2 as a canary with `percent` of it."""
    deploy_aws(artifacts("aws", b"v1"), target(name, endpoint))
    return deploy_aws(artifacts("aws", b"v2"), target(name, endpoint, canary=check_canary(percent)))


def test_canary_leaves_live_on_the_old_version_and_weights_the_new(
    artifacts, moto_endpoint, awslambda
):
    result = canary(artifacts, moto_endpoint, "canaried", percent=10)

    assert versions(awslambda, "canaried") == ["1", "2"]
    assert routing(awslambda, "canaried") == ("1", {"2": 0.1})
    assert result.version == "1"


def test_a_second_canary_of_the_same_artifact_changes_nothing(artifacts, moto_endpoint, awslambda):
    canary(artifacts, moto_endpoint, "twice", percent=10)

    again = deploy_aws(artifacts("aws", b"v2"), target("twice", moto_endpoint, canary=0.1))

    assert {step.action for step in again.plan.steps} == {"unchanged"}
    assert versions(awslambda, "twice") == ["1", "2"]
    assert routing(awslambda, "twice") == ("1", {"2": 0.1})


def test_a_canary_at_another_share_only_reweights(artifacts, moto_endpoint, awslambda):
    canary(artifacts, moto_endpoint, "reweighted", percent=10)

    again = deploy_aws(artifacts("aws", b"v2"), target("reweighted", moto_endpoint, canary=0.5))

    assert [step.action for step in again.plan.steps if step.action != "unchanged"] == ["update"]
    assert versions(awslambda, "reweighted") == ["1", "2"]
    assert routing(awslambda, "reweighted") == ("1", {"2": 0.5})


def test_promote_moves_live_and_rollback_returns_it_with_only_reads_and_update_alias(
    artifacts, moto_endpoint, awslambda
):
    canary(artifacts, moto_endpoint, "released", percent=25)
    calls: list[str] = []
    rollout = AwsRollout(recording_session(calls))
    where = target("released", moto_endpoint)

    move(rollout, "promote", where, Apply())
    assert routing(awslambda, "released") == ("2", {})

    move(rollout, "rollback", where, Apply())
    assert routing(awslambda, "released") == ("1", {})

    assert versions(awslambda, "released") == ["1", "2"]
    assert [call for call in calls if not call.startswith("Get")] == ["UpdateAlias"] * 2


def test_rollback_of_a_canary_drops_its_weight(artifacts, moto_endpoint, awslambda):
    canary(artifacts, moto_endpoint, "dropped", percent=10)

    move(AwsRollout(), "rollback", target("dropped", moto_endpoint), Apply())

    assert routing(awslambda, "dropped") == ("1", {})


def test_rollback_after_a_plain_deploy_returns_to_the_version_before(
    artifacts, moto_endpoint, awslambda
):
    deploy_aws(artifacts("aws", b"v1"), target("plain", moto_endpoint))
    deploy_aws(artifacts("aws", b"v2"), target("plain", moto_endpoint))
    assert routing(awslambda, "plain") == ("2", {})

    move(AwsRollout(), "rollback", target("plain", moto_endpoint), Apply())

    assert routing(awslambda, "plain") == ("1", {})
    with pytest.raises(DeployError, match="nothing to roll back to"):
        move(AwsRollout(), "rollback", target("plain", moto_endpoint), Apply())


def test_dry_run_promote_shows_the_move_and_sends_only_reads(artifacts, moto_endpoint, awslambda):
    canary(artifacts, moto_endpoint, "shown", percent=10)
    calls: list[str] = []

    rollout = AwsRollout(recording_session(calls))
    plan = move(rollout, "promote", target("shown", moto_endpoint), Show())

    assert [str(step) for step in plan.steps] == [
        "update alias live version 1 -> canary version 2, all traffic"
    ]
    assert calls and all(call.startswith("Get") for call in calls)
    assert routing(awslambda, "shown") == ("1", {"2": 0.1})


def test_promote_without_a_canary_changes_nothing(artifacts, moto_endpoint, awslambda):
    deploy_aws(artifacts("aws"), target("steady", moto_endpoint))

    plan = move(AwsRollout(), "promote", target("steady", moto_endpoint), Apply())

    assert not plan.changed
    assert routing(awslambda, "steady") == ("1", {})


def test_a_canary_needs_a_version_already_serving(artifacts, moto_endpoint, awslambda):
    with pytest.raises(DeployError, match="deploy it once without --canary"):
        deploy_aws(artifacts("aws"), target("fresh", moto_endpoint, canary=0.1))


@pytest.mark.parametrize("percent", [0, 100, -5, 150])
def test_a_canary_share_outside_0_to_100_is_refused(percent):
    with pytest.raises(PreflightError, match="between 0 and 100"):
        check_canary(percent)


def test_promote_of_a_function_never_deployed_is_one_sentence(moto_endpoint, aws_env):
    with pytest.raises(DeployError, match="has no alias live"):
        move(AwsRollout(), "promote", target("absent", moto_endpoint), Show())


def test_check_canary_turns_percent_into_lambda_weight():
    assert check_canary(10) == 0.1 and check_canary(2.5) == 0.025


def test_the_cli_canary_then_dry_run_promote_then_promote(
    artifacts, moto_endpoint, awslambda, deploy_cli, capsys
):
    from bertless.cli.main import main

    deploy_aws(artifacts("aws", b"v1"), target("cli", moto_endpoint))
    argv = ["aws", "x", "--name", "cli", "--no-smoke", "--endpoint-url", moto_endpoint]
    assert deploy_cli(artifacts("aws", b"v2"), [*argv, "--canary", "20"]) == 0
    assert routing(awslambda, "cli") == ("1", {"2": 0.2})
    assert "canary: 20% of requests go to the new version" in capsys.readouterr().out

    where = ["aws", "--name", "cli", "--region", REGION, "--endpoint-url", moto_endpoint]
    assert main(["promote", *where, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing touched" in out and "canary version 2" in out
    assert routing(awslambda, "cli") == ("1", {"2": 0.2})

    assert main(["promote", *where]) == 0
    assert routing(awslambda, "cli") == ("2", {})


@pytest.mark.parametrize("how", ["promote", "rollback"])
def test_azure_refuses_a_traffic_move_naming_the_alternative(how, capsys):
    from bertless.cli.main import main

    assert main([how, "azure", "--name", "app"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bertless {how}: azure cannot split traffic")
    assert "deployment slots" in err and "Traceback" not in err


def test_a_canary_deploy_to_azure_is_refused_before_any_request(artifacts, deploy_cli, capsys):
    argv = ["azure", "x", "--name", "app", "--subscription", "s", "--resource-group", "g"]
    with pytest.raises(PreflightError, match="azure cannot split traffic"):
        deploy_cli(artifacts("azure"), [*argv, "--canary", "10"])


def test_the_cli_refuses_a_canary_of_100_percent(artifacts, deploy_cli, aws_env):
    with pytest.raises(PreflightError, match="between 0 and 100"):
        deploy_cli(artifacts("aws"), ["aws", "x", "--name", "all", "--canary", "100"])


def test_a_plain_deploy_of_the_serving_artifact_during_a_canary_removes_the_canary(
    artifacts, moto_endpoint, awslambda
):
    canary(artifacts, moto_endpoint, "withdrawn", percent=10)

    result = deploy_aws(artifacts("aws", b"v1"), target("withdrawn", moto_endpoint))

    assert routing(awslambda, "withdrawn") == ("1", {})
    assert versions(awslambda, "withdrawn") == ["1", "2"]
    assert "canary version 2 gets none" in [step.detail for step in result.plan.steps][-2]
