"""Cold starts: fresh processes started the way the platform starts them, timed phase by phase.

- An AWS artifact runs under the real runtime client (awslambdaric) against the Runtime API
  stand-in, in a clean interpreter of the function's Python with only the unzipped artifact and
  the runtime client on its path. Phases are the ones Lambda reports: init (process start to
  the first `next` call: interpreter, imports and the model load at the handler module's top
  level) and the first invocation (event sent to answer received).
- A bundle directory runs in a fresh `python -I` of this environment, which reports when its
  code began, when the imports were done, when the model was loaded and when the first request
  was answered: interpreter start, import, model load and first answer, separately.
- A deployed AWS function is forced onto a new instance by changing a variable of its
  configuration (Lambda starts new execution environments for a new version of the function),
  and its first request is timed from the client. The phases inside are Lambda's to report
  (Init Duration in the function's log); the client sees the sum, plus the network.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bertless.bench.latency import BenchError, HttpEndpoint, function_url_event
from bertless.local.execution_environment import ExecutionEnvironment, Launch
from bertless.local.runtime_api import RuntimeApiError
from bertless.platforms.names import LAMBDA_ALIAS

NONCE_VARIABLE = "BERTLESS_BENCH_NONCE"
# Runs in the fresh interpreter; stdlib and bertless only. It prints one JSON line of wall-clock
# times (time.time(), comparable across processes) for the parent to turn into phases.
PROBE = r"""
import json, sys, time
began = time.time()
spec = json.loads(sys.argv[1])
import bertless.core.service as service_module
imported = time.time()
service = service_module.Service.from_bundle(spec["bundle"])
loaded = time.time()
request = service_module.Request(
    "POST", spec["route"], {"Content-Type": "application/json"}, spec["body"].encode()
)
status = service.handle(request).status
print(json.dumps({"began": began, "imported": imported, "loaded": loaded,
                  "answered": time.time(), "status": status}))
"""


@dataclass(frozen=True)
class ColdStart:
    """K cold starts of one target: each run's phases in ms, in order, and how they were taken."""

    method: str
    phases: tuple[str, ...]
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self) -> dict[str, float]:
        """Each phase's median over the runs, and the median total."""
        names = [*self.phases, "total"]
        return {name: statistics.median(run[name] for run in self.runs) for name in names}

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "phases": list(self.phases),
            "runs": self.runs,
            "median": self.median() if self.runs else None,
        }


def lambda_cold_starts(launch: Launch, count: int, route: str, body: bytes) -> ColdStart:
    """`count` fresh execution environments of an AWS artifact, each to its first answer."""
    result = ColdStart(
        method=(
            "fresh awslambdaric process per run (python -I -S -B, unzipped artifact and the "
            "runtime client on the path) against the local Runtime API stand-in; init = "
            "process start to the first /next call, first invocation = event sent to answer"
        ),
        phases=("init", "first invocation"),
    )
    for _ in range(count):
        with ExecutionEnvironment(launch) as environment:
            environment.start()
            init = environment.wait_ready()
            invocation = environment.invoke(function_url_event("POST", route, body))
            answer = invocation.json() if invocation.kind == "response" else {}
            if answer.get("statusCode") != 200:
                raise RuntimeApiError(
                    f"the first invocation failed: {invocation.body[:300]!r}\n"
                    f"{environment.log_tail()}"
                )
            first = (invocation.answered - invocation.sent) * 1e3
            total = (invocation.answered - environment.started) * 1e3
            result.runs.append({"init": init, "first invocation": first, "total": total})
    return result


def bundle_cold_starts(
    bundle: str, count: int, route: str, body: bytes, env: dict[str, str], wrapper: Sequence[str]
) -> ColdStart:
    """`count` fresh interpreters that import bertless, load the bundle and answer once."""
    result = ColdStart(
        method=(
            f"fresh `{sys.executable} -I` per run: interpreter start, import of "
            "bertless.core.service (numpy, tokenizers, msgspec), Service.from_bundle "
            "(onnxruntime's import and session, or a static table), the first request through "
            "Service.handle"
        ),
        phases=("interpreter start", "import", "model load", "first answer"),
    )
    spec = json.dumps({"bundle": bundle, "route": route, "body": body.decode()})
    for _ in range(count):
        spawned = time.time()
        done = subprocess.run(
            [*wrapper, sys.executable, "-I", "-c", PROBE, spec],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"the cold-start process failed: {tail}")
        marks = json.loads(done.stdout.strip().splitlines()[-1])
        if marks["status"] != 200:
            raise BenchError(f"the first request of a cold start answered {marks['status']}")
        result.runs.append(
            {
                "interpreter start": (marks["began"] - spawned) * 1e3,
                "import": (marks["imported"] - marks["began"]) * 1e3,
                "model load": (marks["loaded"] - marks["imported"]) * 1e3,
                "first answer": (marks["answered"] - marks["loaded"]) * 1e3,
                "total": (marks["answered"] - spawned) * 1e3,
            }
        )
    return result


def remote_cold_starts(
    endpoint: HttpEndpoint,
    function: AwsFunction,
    memory_mb: int,
    count: int,
    route: str,
    body: bytes,
) -> ColdStart:
    """`count` first requests to a deployed function, each after forcing a new instance."""
    result = ColdStart(
        method=(
            f"configuration change of {function.describe()} before each run (a new version "
            "gets new execution environments), then the first request timed by the client "
            "on a new connection; each run also records `server`, its Server-Timing (the "
            "handler alone: init is not in it)"
        ),
        phases=("first request",),
    )
    for _ in range(count):
        function.configure(memory_mb, fresh=True)
        endpoint.fresh()
        reply = endpoint.call(0, "POST", route, body)
        if not reply.ok:
            raise BenchError(f"the first request after a new instance answered {reply.status}")
        run = {"first request": reply.client_ms, "total": reply.client_ms}
        if reply.server_ms is not None:
            run["server"] = reply.server_ms
        result.runs.append(run)
    return result


class AwsFunction:
    """A deployed Lambda function whose configuration a benchmark may change, then restores.

    Function URLs made by `bertless deploy` point at alias `LAMBDA_ALIAS` (`live`), which serves
    a published version: a change of `$LATEST` alone would not reach them. So every change here
    is made to `$LATEST`, published, and the alias moved to it, as deploy does; without the
    alias the change to `$LATEST` is all. boto3 finds the credentials, region and endpoint as usual
    (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
    """

    def __init__(self, name: str, alias: str = LAMBDA_ALIAS, region: str | None = None) -> None:
        import boto3

        self.name = name
        self.client = boto3.client("lambda", region_name=region)
        original = self.client.get_function_configuration(FunctionName=name)
        self.original_memory: int = original["MemorySize"]
        self.original_variables: dict[str, str] = original.get("Environment", {}).get(
            "Variables", {}
        )
        self.alias = alias if self._has_alias(alias) else None
        self.memory_mb = self.original_memory
        self.changed = False

    def describe(self) -> str:
        return f"Lambda function {self.name}" + (f" (alias {self.alias})" if self.alias else "")

    def configure(self, memory_mb: int | None = None, fresh: bool = False) -> None:
        """Set the memory and, when `fresh`, a new nonce variable; wait until it serves."""
        variables = dict(self.original_variables)
        if fresh:
            variables[NONCE_VARIABLE] = uuid.uuid4().hex
        self._update(memory_mb or self.memory_mb, variables)
        self.memory_mb = memory_mb or self.memory_mb
        self.changed = True

    def restore(self) -> None:
        """Put back the memory and variables the function had before the benchmark, if changed."""
        if self.changed:
            self._update(self.original_memory, self.original_variables)
            self.memory_mb, self.changed = self.original_memory, False

    def _update(self, memory_mb: int, variables: dict[str, str]) -> None:
        client, name = self.client, self.name
        client.update_function_configuration(
            FunctionName=name, MemorySize=memory_mb, Environment={"Variables": variables}
        )
        client.get_waiter("function_updated_v2").wait(FunctionName=name)
        if self.alias is None:
            return
        version = client.publish_version(FunctionName=name)["Version"]
        client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version)
        client.update_alias(FunctionName=name, Name=self.alias, FunctionVersion=version)

    def _has_alias(self, alias: str) -> bool:
        try:
            self.client.get_alias(FunctionName=self.name, Name=alias)
        except self.client.exceptions.ResourceNotFoundException:
            return False
        return True
