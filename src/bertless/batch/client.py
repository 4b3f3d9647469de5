"""Requests to a deployed endpoint: kept alive, as many at once as `Limiter` allows, retried.

Every route of the contract is safe to repeat, so whatever did not come back whole is retried:

- 429, 503, 502/504 and client timeouts are overload: the limiter backs off, and the request waits
  the server's `Retry-After` if it sent one, else a capped, jittered backoff, before it goes again;
- 500, 408 and broken connections are retried the same way without counting as overload;
- 413 and 422 are about the texts themselves: the request is split in halves until the text that
  cannot be scored stands alone, with the endpoint's sentence as its error;
- 401, 403, 404, 405, 415 and 424 mean the run is pointed at the wrong place: `EndpointError`.

An input whose request still fails after `retries` retries gets the last error, and the others
go on.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from bertless import sigv4
from bertless.batch.adaptive import Limiter, backoff
from bertless.batch.local import BatchError
from bertless.core.predictor import label_names
from bertless.platforms.limits import PLATFORMS

DEFAULT_TEXTS_PER_REQUEST = 32
START_CONCURRENCY = 4
MAX_CONCURRENCY = 1000  # Lambda's default concurrency per account and region (AWS_QUOTAS)
OVERLOAD = {
    429: "throttled (429)",
    502: "bad gateway (502)",
    503: "unavailable (503)",
    504: "gateway timeout (504)",
}
RETRY = {500: "server error (500)", 408: "request timeout (408)"}
ABOUT_THE_TEXTS = {413, 422}
PAYLOAD_BYTES = min(platform.request_bytes.value for platform in PLATFORMS.values())
"""The smallest request any platform takes (Lambda's 6 MB), so one setting fits every cloud."""
RESPONSE_BYTES = min(p.response_bytes.value for p in PLATFORMS.values() if p.response_bytes)
"""The smallest answer any platform returns (Lambda's 6 MB)."""
BYTES_A_NUMBER = 24  # a float32 as JSON: "-0.012929881922900677, " at most

Scored = tuple["list[float] | None", "str | None"]
"""An input's scores (label order for a classifier), or why it has none."""


class EndpointError(BatchError):
    """The endpoint refuses the whole run: wrong URL, wrong key, or a model of another task."""


@dataclass(frozen=True)
class Options:
    """How hard to drive the endpoint and how patiently to retry."""

    concurrency: int | None = None  # None: adaptive
    max_concurrency: int = MAX_CONCURRENCY
    texts_per_request: int = DEFAULT_TEXTS_PER_REQUEST
    retries: int = 8
    backoff_base: float = 0.1
    backoff_cap: float = 20.0
    max_retry_after: float = 60.0
    timeout: float = 60.0
    api_key: str | None = None
    sigv4_region: str | None = None  # sign with AWS SigV4 (an AWS_IAM Function URL)
    endpoint_url: str | None = None  # a `lambda:NAME` run: the Lambda API's base (boto3's default)
    region: str | None = None  # a `lambda:NAME` run: the function's region (boto3's default)
    seed: int | None = None


@dataclass(frozen=True)
class Info:
    """What the endpoint's `GET /info` says that scoring needs."""

    task: str
    labels: list[str]
    dimension: int | None
    max_batch: int
    max_body_bytes: int
    checksum: str
    auto_truncate: bool
    normalize: bool = True  # the bundle's, sent with every /embed so vectors match the Predictor's

    @property
    def route(self) -> str:
        return "/embed" if self.task == "feature-extraction" else "/predict"


@dataclass
class _Outcome:
    """One request's end: its parsed answer, or the last error and whether halving may help."""

    answer: list | None = None
    error: str | None = None
    split: bool = False
    retried: bool = False


class SigV4(httpx.Auth):
    """Every request signed with AWS Signature Version 4 for the `lambda` service, as a Function
    URL with AWS_IAM auth requires, with the credentials botocore finds (profile, environment,
    role). A retry is signed afresh, so its signature never outlives its five minutes."""

    requires_request_body = True

    def __init__(self, region: str) -> None:
        sign = sigv4.signer(region)
        if sign is None:
            raise EndpointError(
                "--sigv4 needs AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY."
            )
        self.sign = sign

    def auth_flow(self, request: httpx.Request):
        content_type = request.headers.get("Content-Type", "application/json")
        signed = self.sign(
            request.method, str(request.url), request.content, {"Content-Type": content_type}
        )
        request.headers.update(signed)
        yield request


class Client:
    """One endpoint, its `/info`, and every request made to it in a run, counted by outcome."""

    def __init__(self, url: str, options: Options, http: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.options = options
        self.http = http
        self.rng = random.Random(options.seed)
        self.requests = 0
        self.retries: Counter[str] = Counter()
        self.latencies = array("d")  # seconds of each answered request, for the summary
        self.retry_after = 0.0
        self.limiter = Limiter(
            options.concurrency or START_CONCURRENCY,
            options.concurrency or options.max_concurrency,
            fixed=bool(options.concurrency),
        )
        self.truncate: bool | None = None

    @classmethod
    def session(cls, options: Options) -> httpx.AsyncClient:
        """The kept-alive connection pool a run sends through, authenticated as asked."""
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        auth = SigV4(options.sigv4_region) if options.sigv4_region else None
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        return httpx.AsyncClient(headers=headers, auth=auth, limits=limits, timeout=options.timeout)

    async def read_info(self) -> Info:
        """Ask the endpoint what it serves; `self.info` keeps the answer."""
        try:
            response = await self.http.get(self.url + "/info")
        except httpx.HTTPError as error:
            raise EndpointError(
                f"{self.url}/info did not answer ({error}): is the URL right?"
            ) from None
        if response.status_code != 200:
            raise EndpointError(
                f"{self.url}/info answered {response.status_code} ({_error_sentence(response)}): "
                "check the URL and the API key."
            )
        info = response.json()
        self.info = Info(
            task=info["task"],
            labels=list(info.get("labels") or []),
            dimension=info.get("dimension"),
            max_batch=int(info.get("max_client_batch_size") or DEFAULT_TEXTS_PER_REQUEST),
            max_body_bytes=int(info.get("max_body_bytes") or PAYLOAD_BYTES),
            checksum=str(info.get("bundle_sha256")),
            auto_truncate=bool(info.get("auto_truncate")),
            normalize=bool(info.get("normalize", True)),  # older servers: /embed's default
        )
        return self.info

    def texts_per_request(self) -> int:
        """The texts asked for, at most the endpoint's max batch and what fits in one answer."""
        width = self.info.dimension or max(1, len(self.info.labels)) * 2  # label and score
        fits = RESPONSE_BYTES * 3 // 4 // (width * BYTES_A_NUMBER)
        return max(1, min(self.options.texts_per_request, self.info.max_batch, fits))

    def payload_limit(self) -> int:
        return min(self.info.max_body_bytes, PAYLOAD_BYTES)

    async def score(self, inputs: list, retries: int | None = None) -> list[Scored]:
        """(scores, None) or (None, error) per input, in order.

        A request that fails for its texts (413, 422), or that keeps failing without overload
        (500, broken connections) after its retries, is split in halves, so one input the
        endpoint cannot take fails alone. Halves of a request already retried get one retry
        each: what failed `retries` times together is not transient, and a broken endpoint must
        not cost a chunk's rows times the retries.
        """
        retries = self.options.retries if retries is None else retries
        outcome = await self._attempts(inputs, retries)
        if outcome.answer is not None:
            return [(self._values(answer), None) for answer in outcome.answer]
        if outcome.split and len(inputs) > 1:
            half = len(inputs) // 2
            again = min(retries, 1) if outcome.retried else retries
            first, second = await asyncio.gather(
                self.score(inputs[:half], again), self.score(inputs[half:], again)
            )
            return first + second
        return [(None, outcome.error)] * len(inputs)

    async def _attempts(self, inputs: list, retries: int) -> _Outcome:
        """Send one request until it is answered, refused for its texts, or out of retries."""
        body: dict = {"inputs": [i if isinstance(i, list) else [i] for i in inputs]}
        if self.info.task == "feature-extraction":
            body["inputs"] = inputs
            body["normalize"] = self.info.normalize
        if self.truncate is not None:
            body["truncate"] = self.truncate
        outcome = _Outcome()
        cause = None
        for attempt in range(retries + 1):
            await self.limiter.acquire()
            started = time.perf_counter()
            self.requests += 1
            cause, retry_after, overloaded = None, None, False
            try:
                response = await self.http.post(self.url + self.info.route, json=body)
            except httpx.TimeoutException:
                cause, overloaded = "timeout", True
                outcome = _Outcome(error=f"no answer within {self.options.timeout:g} s")
            except httpx.TransportError as error:
                cause = "connection"
                outcome = _Outcome(error=f"the connection failed: {type(error).__name__}: {error}")
            else:
                outcome, cause, overloaded = self._read(response, len(inputs))
                retry_after = _retry_after(response.headers.get("Retry-After"))
            latency = None if cause else time.perf_counter() - started
            if latency is not None:
                self.latencies.append(latency)
            await self.limiter.release(latency, overloaded=overloaded)
            if cause is None or attempt == retries:
                break
            self.retries[cause] += 1
            wait = backoff(
                attempt + 1, self.options.backoff_base, self.options.backoff_cap, self.rng
            )
            if retry_after is not None:
                honoured = min(retry_after, self.options.max_retry_after)
                self.retry_after += honoured
                wait = max(wait, honoured)
            await asyncio.sleep(wait)
        if cause is not None:
            times = "1 retry" if retries == 1 else f"{retries} retries"
            outcome.error = f"{outcome.error} (still failing after {times})"
            outcome.retried = True
            outcome.split = not overloaded
        return outcome

    def _read(self, response: httpx.Response, n: int) -> tuple[_Outcome, str | None, bool]:
        """The outcome of one answer, the cause to retry it for (None: do not), and overload."""
        status = response.status_code
        if status == 200:
            answer = response.json()
            if not isinstance(answer, list) or len(answer) != n:
                return (
                    _Outcome(error=f"the endpoint answered {n} inputs with {_shape(answer)}"),
                    None,
                    False,
                )
            return _Outcome(answer=answer), None, False
        sentence = f"the endpoint answered {status}: {_error_sentence(response).rstrip('.')}"
        if status in OVERLOAD:
            return _Outcome(error=sentence), OVERLOAD[status], True
        if status in RETRY or status >= 500:
            return _Outcome(error=sentence), RETRY.get(status, f"server error ({status})"), False
        if status in ABOUT_THE_TEXTS:
            return _Outcome(error=sentence, split=True), None, False
        raise EndpointError(
            f"{self.url}{self.info.route} answered {status} ({_error_sentence(response)}): check "
            "the URL, the API key and that the endpoint serves the model you mean."
        )

    def _values(self, answer: list) -> list[float]:
        if self.info.task == "feature-extraction":
            return answer
        names = label_names(self.info.labels, len(answer))
        scores = {item["label"]: item["score"] for item in answer}
        return [scores[name] for name in names]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_sentence(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return json.dumps(body)[:200]


def _shape(answer: object) -> str:
    if isinstance(answer, list):
        return f"{len(answer)} results"
    return f"a JSON {type(answer).__name__}"
