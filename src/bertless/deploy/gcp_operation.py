"""Waiting on a Google long-running operation, as Cloud Functions v2 and Cloud Run v2 answer a
create or patch: `{"name": ..., "done": false}` at once, then `operations.get` on that name until
`done`, with either `response` or `error` set (https://google.aip.dev/151).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bertless.deploy.plan import DeployError, Say
from bertless.deploy.rest import poll

if TYPE_CHECKING:
    from bertless.deploy.rest import RestClient


def wait(
    api: RestClient,
    base: str,
    operation: dict[str, Any],
    what: str,
    failed: str,
    deadline_s: float,
    say: Say,
    describe: Callable[[dict[str, Any]], str | None] = lambda _: None,
) -> dict[str, Any]:
    """Poll `operation` at `{base}/v2/{name}` until done and return it; an error is a
    DeployError, `failed` with `{message}` filled in by Google's message.

    `what` names the API in the deadline's message ("Cloud Run"); `describe` turns a reading
    into a progress line (a build stage), said as it changes.
    """
    if not operation.get("done"):
        name = operation["name"]
        operation = poll(
            lambda: api.get(f"{base}/v2/{name}"),
            lambda state: bool(state.get("done")),
            f"{what} operation {name}",
            deadline_s,
            say,
            describe,
        )
    if "error" in operation:
        raise DeployError(failed.format(message=operation["error"].get("message", "")))
    return operation
