"""Direct Lambda invocation for the endpoint engine (`bertless batch --aws-function NAME`).

Instead of an HTTP endpoint (a Function URL or an API Gateway), each request is one synchronous
`Invoke` of the function through the Lambda API (boto3), with the direct-invoke event the AWS
adapter reads (`{"path": "/embed", "body": {...}}`) and its answer `{"statusCode", "headers",
"body"}`. No URL or gateway is needed, the caller's IAM credentials authorise it, and the
throttling is Lambda's own: 429 TooManyRequestsException above the function's concurrency.
The API's address is boto3's: AWS_ENDPOINT_URL_LAMBDA, or `endpoint_url` (`--endpoint-url`).

`Invoker` stands in for the httpx client that `client.Client` sends through: `get` and `post` take
the route after a `lambda:NAME` base and give back an `httpx.Response` made from the function's
answer, so retries, splitting and the limiter work the same for both. Lambda's own errors come
back as their HTTP status (a throttle as 429), a function that crashed (X-Amz-Function-Error) as
a 500, time-outs and broken connections as httpx's exceptions.

Each invocation asks for the tail of its log (LogType=Tail), whose REPORT line carries the Billed
Duration and Memory Size: `Bill` adds them up, so a run is priced as Lambda bills it, from the
measured durations, at the prices of the platforms data. Throttled invocations are not billed.

boto3 is synchronous: invocations run on a thread pool as large as the concurrency ceiling (its
threads start as they are needed), with botocore's own retries off, since the client retries by
cause.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from bertless.batch.client import EndpointError

PREFIX = "lambda:"
_REPORT = re.compile(r"Billed Duration: (\d+(?:\.\d+)?) ms\s+Memory Size: (\d+) MB")
_HOP = {"content-length", "content-type", "content-encoding", "transfer-encoding"}


@dataclass
class Bill:
    """What Lambda bills for a run: the invocations that ran and their GB-seconds."""

    invocations: int = 0
    billed_ms: float = 0.0
    gb_seconds: float = 0.0

    def add(self, log_tail: str) -> None:
        """Count one invocation from its log's REPORT line (none: it did not run)."""
        report = _REPORT.search(log_tail)
        if report is not None:
            milliseconds, megabytes = float(report[1]), int(report[2])
            self.invocations += 1
            self.billed_ms += milliseconds
            self.gb_seconds += milliseconds / 1000 * megabytes / 1024

    def usd(self, arch: str = "x86_64") -> float:
        """Requests plus GB-seconds at the platforms data's on-demand prices, before the free
        tier."""
        from bertless.platforms.limits import get_platform

        pricing = get_platform("aws").pricing
        per_gb_second = pricing.per_gb_second
        if arch == "arm64" and pricing.per_gb_second_arm64 is not None:
            per_gb_second = pricing.per_gb_second_arm64
        requests = self.invocations / 1e6 * pricing.per_million_requests.value
        return self.gb_seconds * per_gb_second.value + requests


class Invoker:
    """A function invoked through the Lambda API, in the shape of an `httpx.AsyncClient`."""

    def __init__(
        self,
        function: str,
        *,
        threads: int,
        timeout: float,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import NoRegionError
        except ImportError:
            message = "--aws-function needs boto3: pip install 'bertless[deploy]'."
            raise EndpointError(message) from None

        self.name, _, self.qualifier = function.partition(":")
        config = Config(
            max_pool_connections=threads,
            retries={"total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=timeout,
        )
        try:
            self.api = boto3.client(
                "lambda", endpoint_url=endpoint_url, region_name=region, config=config
            )
        except NoRegionError:
            raise EndpointError(
                "--aws-function needs a region: give --region or set AWS_REGION."
            ) from None
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lambda-invoke")
        self.bill = Bill()

    async def get(self, url: str) -> httpx.Response:
        return await self._send(url, None)

    async def post(self, url: str, json: Any) -> httpx.Response:
        return await self._send(url, json)

    async def aclose(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Invoker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, url: str, body: Any) -> httpx.Response:
        route = "/" + url.removeprefix(PREFIX).partition("/")[2]
        event: dict[str, Any] = {"path": route}
        if body is not None:
            event["body"] = body
        loop = asyncio.get_running_loop()
        response, log_tail = await loop.run_in_executor(self.pool, self._invoke, event)
        self.bill.add(log_tail)
        return response

    def _invoke(self, event: dict) -> tuple[httpx.Response, str]:
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            ConnectTimeoutError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        request: dict[str, Any] = {
            "FunctionName": self.name,
            "Payload": json.dumps(event).encode(),
            "LogType": "Tail",
        }
        if self.qualifier:
            request["Qualifier"] = self.qualifier
        try:
            answer = self.api.invoke(**request)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500
            details = error.response.get("Error", {})
            sentence = f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
            return httpx.Response(status, json={"error": sentence}), ""
        except (ReadTimeoutError, ConnectTimeoutError) as error:
            raise httpx.ReadTimeout(str(error)) from None
        except ConnectionError as error:
            raise httpx.ConnectError(str(error)) from None
        except NoCredentialsError:
            raise EndpointError(
                "--aws-function needs AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY."
            ) from None
        log_tail = base64.b64decode(answer.get("LogResult") or b"").decode(errors="replace")
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            failure = payload[:300].decode(errors="replace")
            sentence = f"the function failed ({answer['FunctionError']}): {failure}"
            return httpx.Response(500, json={"error": sentence}), log_tail
        return _http(self.name, payload), log_tail


def _http(name: str, payload: bytes) -> httpx.Response:
    """The AWS adapter's direct-invoke answer as the HTTP answer it stands for."""
    try:
        answer = json.loads(payload)
        status, headers, body = answer["statusCode"], answer.get("headers") or {}, answer["body"]
    except (ValueError, TypeError, KeyError):
        raise EndpointError(
            f"the function {name} did not answer as bertless's AWS adapter does "
            '({"statusCode", "headers", "body"}): is it a bertless function?'
        ) from None
    kept = {key: value for key, value in headers.items() if key.lower() not in _HOP}
    if isinstance(body, str):
        return httpx.Response(status, headers=kept, text=body)
    return httpx.Response(status, headers=kept, json=body)
