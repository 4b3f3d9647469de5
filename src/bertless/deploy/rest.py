"""JSON over HTTPS with a bearer token, for the two clouds bertless reaches without their SDKs.

Google's Cloud Functions and Cloud Run APIs and Azure Resource Manager are the same kind of API:
JSON bodies, `{"error": {"message": ...}}` on failure, and long-running work that answers at once
and is polled until it is done. One client serves both; each cloud names its own bases (so a
local stand-in can replace them with `endpoint_url`) and its own way of telling "done".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from bertless.deploy.plan import DeployError, Say

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

READS = frozenset({"GET", "HEAD"})


class RestClient:
    """One session's JSON calls; errors become a sentence naming the request and the reason.

    `bases` are the public API roots this client may call; with `endpoint_url` every one of them
    is replaced by it, so the same code talks to a stand-in on loopback.
    """

    def __init__(
        self,
        session: requests.Session,
        bases: tuple[str, ...],
        endpoint_url: str | None = None,
        params: Mapping[str, str] | None = None,
    ):
        self.session = session
        self.bases = bases
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.params = dict(params or {})

    def url(self, url: str) -> str:
        """The URL to send to: a public base swapped for the stand-in's, when there is one."""
        if self.endpoint_url:
            for base in self.bases:
                if url.startswith(base):
                    return self.endpoint_url + url[len(base) :]
        return url

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request as it is, for bodies that are not JSON and answers read by the caller."""
        import requests

        kwargs.setdefault("timeout", 60)
        try:
            return self.session.request(method, self.url(url), **kwargs)
        except requests.RequestException as error:
            raise DeployError(f"{method} {url} failed: {error}") from None

    def send(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        missing_ok: bool = False,
        conflict_ok: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """A JSON request; None for a 404 (missing_ok) or a 409 (conflict_ok)."""
        response = self.call(method, url, json=body, params={**self.params, **(params or {})})
        if (missing_ok and response.status_code == 404) or (
            conflict_ok and response.status_code == 409
        ):
            return None
        return check(response, f"{method} {url}")

    def get(self, url: str, *, missing_ok: bool = False) -> Any:
        return self.send("GET", url, missing_ok=missing_ok)

    def post(self, url: str, body: Any = None) -> Any:
        return self.send("POST", url, body)

    def put(self, url: str, body: Any, *, conflict_ok: bool = False) -> Any:
        return self.send("PUT", url, body, conflict_ok=conflict_ok)

    def patch(self, url: str, body: Any) -> Any:
        return self.send("PATCH", url, body)


def check(response: requests.Response, what: str) -> Any:
    """The response's JSON, or a DeployError naming the request and the platform's message."""
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise DeployError(f"{what} failed with {response.status_code}: {message}")
    return response.json() if response.content else {}


def poll(
    read: Callable[[], T],
    done: Callable[[T], bool],
    what: str,
    deadline_s: float,
    say: Say = lambda _: None,
    describe: Callable[[T], str | None] = lambda _: None,
    first_s: float = 0.2,
    most_s: float = 5.0,
) -> T:
    """Read until `done`, backing off from `first_s` to `most_s`; a DeployError past the deadline.

    `describe` turns a reading into a progress line (a build stage), shown as it changes.
    """
    deadline = time.monotonic() + deadline_s
    delay = first_s
    state = read()
    while not done(state):
        if time.monotonic() > deadline:
            raise DeployError(f"{what} did not finish within {deadline_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, most_s)
        state = read()
        line = describe(state)
        if line:
            say(line)
    return state
