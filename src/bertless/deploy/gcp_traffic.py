"""Where a Cloud Run function's requests go: the traffic of the function's Cloud Run service,
set with the Cloud Run Admin API v2 (`services.patch` with `updateMask=traffic`, a
long-running operation polled with `operations.get`), as Google's traffic-splitting page for
functions says: https://cloud.google.com/functions/docs/configuring/traffic-splitting.

Every deploy makes a new revision, and by default all traffic goes to the latest one. Cloud Run
keeps a split or a pinned revision across later deploys
(https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration), which is what makes a
canary possible: pin the serving revision to 100%, update the function (its new revision gets
0%), then give the new revision its share. Promote sends all traffic to the latest revision
again and tags the one before `bertless-previous` (0%), so rollback knows where to go; rollback
pins the revision that served before. A plain deploy sends all traffic to the latest revision.

`deploy/gcp.py` adds these steps to a deploy's plan; `deploy/gcp_rollout.py` plans promote and
rollback with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.deploy.gcp_operation import wait
from bertless.deploy.plan import DeployError, Plan, Say

if TYPE_CHECKING:
    from bertless.deploy.rest import RestClient

RUN_API = "https://run.googleapis.com"
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
PREVIOUS_TAG = "bertless-previous"
OPERATION_DEADLINE_S = 10 * 60
TRAFFIC = "traffic"

Entries = list[dict[str, Any]]


@dataclass(frozen=True)
class Traffic:
    """Where a Cloud Run service sends requests: the revision serving the rest, a canary with
    its percent, the revision tagged as the one before, and whether "latest" is followed."""

    serving: str
    canary: str | None = None
    percent: int = 0
    previous: str | None = None
    follows_latest: bool = False

    @classmethod
    def read(cls, service: dict[str, Any]) -> Traffic:
        latest = service.get("latestReadyRevision", "").rsplit("/", 1)[-1]
        entries = service.get("traffic") or [{"type": LATEST, "percent": 100}]
        shares: dict[str, int] = {}
        previous = None
        for entry in entries:
            revision = latest if entry.get("type") == LATEST else entry.get("revision", "")
            shares[revision] = shares.get(revision, 0) + int(entry.get("percent", 0))
            if entry.get("tag") == PREVIOUS_TAG:
                previous = entry.get("revision")
        serving = sorted((r for r in shares if shares[r] > 0), key=lambda r: -shares[r])
        follows = any(e.get("type") == LATEST and e.get("percent") == 100 for e in entries)
        canary = serving[1] if len(serving) > 1 else None
        return cls(serving[0], canary, shares.get(canary, 0) if canary else 0, previous, follows)

    def __str__(self) -> str:
        if self.canary is None:
            return f"revision {self.serving} serves all traffic"
        return (
            f"revision {self.serving} serves {100 - self.percent}%, "
            f"canary {self.canary} {self.percent}%"
        )


def pinned(revision: str) -> Entries:
    return [{"type": REVISION, "revision": revision, "percent": 100}]


def split(serving: str, canary: str, percent: int) -> Entries:
    return [
        {"type": REVISION, "revision": serving, "percent": 100 - percent},
        {"type": REVISION, "revision": canary, "percent": percent},
    ]


def latest(previous: str | None = None) -> Entries:
    """All traffic to the latest revision; `previous` kept, at 0%, under the tag rollback reads."""
    entries: Entries = [{"type": LATEST, "percent": 100}]
    if previous:
        entries.append({"type": REVISION, "revision": previous, "percent": 0, "tag": PREVIOUS_TAG})
    return entries


def percent_of(weight: float) -> int:
    """Cloud Run takes whole percents; a canary share rounds to at least 1."""
    return max(1, min(99, round(weight * 100)))


def read_service(api: RestClient, service: str) -> dict[str, Any]:
    if not service.startswith("projects/"):
        raise DeployError(f"unexpected Cloud Run service name {service!r}")
    return api.get(f"{RUN_API}/v2/{service}")


def set_traffic(api: RestClient, service: str, entries: Entries, say: Say) -> None:
    """One services.patch of the traffic field, polled until Cloud Run says it is done."""
    operation = api.patch(
        f"{RUN_API}/v2/{service}?updateMask={TRAFFIC}", {"name": service, TRAFFIC: entries}
    )
    failed = "Cloud Run did not move the traffic: {message}; it goes where it went"
    wait(api, RUN_API, operation, "Cloud Run", failed, OPERATION_DEADLINE_S, say)


def describe(entries: Entries) -> str:
    parts = []
    for entry in entries:
        name = "latest" if entry["type"] == LATEST else entry["revision"]
        parts.append(f"{name} {entry['percent']}%")
    return ", ".join(parts)


class Mover:
    """Adds traffic steps to a plan; each step's run sets the entries it names."""

    def __init__(self, api: RestClient, service: str, say: Say):
        self.api, self.service, self.say = api, service, say

    def add(self, plan: Plan, entries: Entries, detail: str = "") -> None:
        """A step that sets `entries`, shown as `detail` or as the entries themselves."""
        self.add_later(plan, lambda: entries, detail or describe(entries))

    def add_later(self, plan: Plan, entries: Callable[[], Entries], detail: str) -> None:
        """A step whose entries are known only when it runs (a revision an earlier step made)."""

        def run() -> None:
            set_traffic(self.api, self.service, entries(), self.say)

        plan.add("update", TRAFFIC, detail, run=run)


def plan_canary_pin(plan: Plan, mover: Mover, traffic: Traffic) -> None:
    """Before the function's update: pin the serving revision, so the new one gets nothing."""
    if traffic.follows_latest or traffic.canary is not None:
        mover.add(plan, pinned(traffic.serving))


def plan_canary_split(
    plan: Plan,
    mover: Mover,
    traffic: Traffic,
    weight: float,
    function_changed: bool,
    new_revision: Callable[[], str | None],
) -> None:
    """After the function's update: the new revision gets its share; or nothing to do."""
    percent = percent_of(weight)
    if function_changed:

        def entries() -> Entries:
            revision = new_revision()
            assert revision, "the function step runs before the traffic step"
            return split(traffic.serving, revision, percent)

        detail = f"{traffic.serving} {100 - percent}%, the new revision {percent}%"
        mover.add_later(plan, entries, detail)
        return
    # The function already runs this artifact: as the canary, or for everyone.
    current = new_revision()
    if traffic.canary == current and traffic.percent != percent:
        mover.add(plan, split(traffic.serving, traffic.canary, percent))
    elif traffic.canary == current or traffic.serving == current:
        plan.unchanged(TRAFFIC, str(traffic))
    else:
        mover.add(plan, split(traffic.serving, current or "", percent))


def plan_plain(plan: Plan, mover: Mover, traffic: Traffic | None) -> None:
    """A plain deploy: all traffic to the latest revision, undoing a pin, split or rollback."""
    if traffic is not None and not traffic.follows_latest:
        mover.add(plan, latest(), "all to the latest revision")
