"""Canary, promote and rollback on Cloud Run functions, against the Cloud Functions + Cloud Run
STAND-IN of test_deploy_gcp (not Google's service; it checks the documented shapes, and that
traffic percents add up to 100 over revisions it made).

What a user would check in the console after each command: which revision of the function's
Cloud Run service gets what share of requests.
"""

from __future__ import annotations

import pytest
import test_deploy_gcp
from test_deploy_gcp import PROJECT, REGION, credentials, deploy, target, uploads

from bertless.deploy.gcp_rollout import GcpRollout
from bertless.deploy.plan import Apply, DeployError, Show
from bertless.deploy.rollout import move

# The GCP deploy tests' fixtures: the storage emulator's bucket and the API stand-in.
google_env = test_deploy_gcp.google_env
upload_bucket = test_deploy_gcp.upload_bucket
stand_in = test_deploy_gcp.stand_in


def function(name: str) -> str:
    return f"projects/{PROJECT}/locations/{REGION}/functions/{name}"


def rollout() -> GcpRollout:
    return GcpRollout(project=PROJECT, credentials=credentials())


def canary(artifacts, server, name: str, weight: float = 0.1):
    """Deploy v1 for all traffic, then v2 as a canary with `weight` of it."""
    deploy(artifacts("gcp", b"v1"), server, name)
    return deploy(artifacts("gcp", b"v2"), server, name, canary=weight)


def test_canary_keeps_the_old_revision_serving_and_splits_to_the_new(artifacts, stand_in):
    result = canary(artifacts, stand_in, "canary-fn", 0.1)

    assert stand_in.api.shares(function("canary-fn")) == {
        "canary-fn-00001-abc": 90,
        "canary-fn-00002-abc": 10,
    }
    actions = [(step.action, step.what) for step in result.plan.steps]
    assert actions[0] == ("update", "traffic")  # pinned before the new revision exists
    assert actions[-1] == ("update", "traffic")


def test_a_second_canary_of_the_same_artifact_changes_nothing(artifacts, stand_in):
    canary(artifacts, stand_in, "again-fn", 0.1)
    stand_in.calls.clear()

    again = deploy(artifacts("gcp", b"v2"), stand_in, "again-fn", canary=0.1)

    assert not again.changed and stand_in.writes() == []


def test_promote_then_rollback_move_traffic_and_upload_nothing(artifacts, stand_in):
    canary(artifacts, stand_in, "release-fn", 0.25)
    uploaded = uploads(stand_in)
    stand_in.calls.clear()
    where = target(stand_in, "release-fn")

    move(rollout(), "promote", where, Apply())
    assert stand_in.api.shares(function("release-fn")) == {"release-fn-00002-abc": 100}

    move(rollout(), "rollback", where, Apply())
    assert stand_in.api.shares(function("release-fn")) == {"release-fn-00001-abc": 100}

    assert uploads(stand_in) == uploaded
    writes = [(call.method, call.path.rsplit("/", 1)[1]) for call in stand_in.writes()]
    assert writes == [("PATCH", "release-fn")] * 2  # services.patch of traffic only


def test_a_plain_deploy_after_a_rollback_serves_the_latest_again(artifacts, stand_in):
    canary(artifacts, stand_in, "after-fn", 0.1)
    move(rollout(), "rollback", target(stand_in, "after-fn"), Apply())

    deploy(artifacts("gcp", b"v3"), stand_in, "after-fn")

    assert stand_in.api.shares(function("after-fn")) == {"after-fn-00003-abc": 100}


def test_dry_run_promote_sends_only_reads(artifacts, stand_in):
    canary(artifacts, stand_in, "shown-fn", 0.1)
    stand_in.calls.clear()

    plan = move(rollout(), "promote", target(stand_in, "shown-fn"), Show())

    assert [str(step) for step in plan.steps] == [
        "update traffic latest 100%, shown-fn-00001-abc 0%"
    ]
    assert stand_in.calls and stand_in.writes() == []


def test_rollback_with_nothing_before_is_one_sentence(artifacts, stand_in):
    deploy(artifacts("gcp"), stand_in, "only-fn")
    with pytest.raises(DeployError, match="nothing to roll back to"):
        move(rollout(), "rollback", target(stand_in, "only-fn"), Show())


def test_a_canary_needs_a_revision_already_serving(artifacts, stand_in):
    with pytest.raises(DeployError, match="deploy it once without --canary"):
        deploy(artifacts("gcp"), stand_in, "fresh-fn", canary=0.1)
