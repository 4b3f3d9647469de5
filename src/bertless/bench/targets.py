"""What a sweep measures: a URL, a bundle served here, or an AWS artifact run here under
awslambdaric, each able to serve itself (and cold-start) at a memory size.

A deployed function is not emulated: its memory is set for real between runs (AWS, through
`update_function_configuration`), and restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bertless.bench.coldstart import (
    AwsFunction,
    ColdStart,
    bundle_cold_starts,
    lambda_cold_starts,
    remote_cold_starts,
)
from bertless.bench.cpu import CpuLimit, cpu_share, emulation
from bertless.bench.latency import BenchError, Endpoint, HttpEndpoint, LambdaEndpoint, fetch_info
from bertless.bench.report import Emulation
from bertless.local.execution_environment import ExecutionEnvironment, Launch, provision_runtime
from bertless.local.server import local_server
from bertless.platforms import limits
from bertless.say import Say

DEFAULT_MEMORY_MB = 1769  # one full Lambda vCPU: the setting to assume when nothing says


class BenchTarget(ABC):
    """Something to benchmark; it knows how to serve itself at a memory size."""

    kind: str
    label: str
    cloud = "aws"  # whose CPU share per memory size is emulated

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """The model's facts as `/info` gives them (task and model_id at least)."""

    def default_memory(self) -> int:
        return DEFAULT_MEMORY_MB

    def emulate(self, memory_mb: int) -> tuple[Emulation, Callable[[], CpuLimit | None]]:
        """The emulation of `memory_mb`, and a maker of CPU limits that give it."""
        cpus = min(limits.vcpus_for_memory(self.cloud, memory_mb), os.cpu_count() or 1)
        probe = CpuLimit.create(cpus)
        described = emulation(self.cloud, memory_mb, probe)
        if probe is not None:
            probe.close()
        return described, lambda: CpuLimit.create(cpus)

    @abstractmethod
    def serving(
        self, setting: Emulation, limit: Callable[[], CpuLimit | None], concurrency: int
    ) -> contextlib.AbstractContextManager[Endpoint]:
        """The target running at `setting`, for `concurrency` workers, until the block ends."""

    @abstractmethod
    def cold_starts(
        self,
        setting: Emulation,
        limit: Callable[[], CpuLimit | None],
        count: int,
        route: str,
        body: bytes,
    ) -> ColdStart | str:
        """`count` cold starts, or a sentence saying why this target has none."""

    @abstractmethod
    def close(self) -> None:
        """Undo what the benchmark changed and remove what it made; safe to call again."""


class UrlTarget(BenchTarget):
    """A URL; with an AWS function named, its memory and instances are the benchmark's to set."""

    kind = "url"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        sigv4_region: str | None = None,
        function: AwsFunction | None = None,
    ) -> None:
        self.label = url
        self.endpoint = HttpEndpoint(url, api_key, sigv4_region)
        self.function = function

    def info(self) -> dict[str, Any]:
        return fetch_info(self.endpoint)

    def default_memory(self) -> int:
        return self.function.original_memory if self.function else DEFAULT_MEMORY_MB

    def emulate(self, memory_mb: int) -> tuple[Emulation, Callable[[], CpuLimit | None]]:
        how = (
            f"memory set on {self.function.describe()}"
            if self.function
            else f"the URL's own hardware; {memory_mb} MB is what the cost assumes"
        )
        return Emulation(memory_mb, None, None, None, how), lambda: None

    @contextlib.contextmanager
    def serving(
        self, setting: Emulation, limit: Callable[[], CpuLimit | None], concurrency: int
    ) -> Iterator[Endpoint]:
        if self.function and self.function.memory_mb != setting.memory_mb:
            self.function.configure(setting.memory_mb)
        yield self.endpoint

    def cold_starts(
        self,
        setting: Emulation,
        limit: Callable[[], CpuLimit | None],
        count: int,
        route: str,
        body: bytes,
    ) -> ColdStart | str:
        if self.function is None:
            return "a URL's cold start needs --aws-function, to force a new instance"
        return remote_cold_starts(
            self.endpoint, self.function, setting.memory_mb, count, route, body
        )

    def close(self) -> None:
        if self.function:
            self.function.restore()


class BundleTarget(BenchTarget):
    """A bundle directory, served by `bertless serve` (functions-framework) on this machine."""

    kind = "bundle"

    def __init__(self, path: Path) -> None:
        from bertless.core.bundle import load_bundle

        self.path = Path(path).resolve()
        self.label = str(path)
        self.manifest = load_bundle(self.path, verify=False).manifest

    def info(self) -> dict[str, Any]:
        return {"task": self.manifest.task, "model_id": self.manifest.model_id}

    @contextlib.contextmanager
    def serving(
        self, setting: Emulation, limit: Callable[[], CpuLimit | None], concurrency: int
    ) -> Iterator[Endpoint]:
        with (
            cpu_share(limit) as cpu,
            local_server(
                self.path,
                env={"BERTLESS_THREADS": str(setting.threads)},
                wrapper=cpu.wrapper() if cpu else (),
                timeout=300,
            ) as url,
        ):
            yield HttpEndpoint(url)

    def cold_starts(
        self,
        setting: Emulation,
        limit: Callable[[], CpuLimit | None],
        count: int,
        route: str,
        body: bytes,
    ) -> ColdStart | str:
        with cpu_share(limit) as cpu:
            env = {**os.environ, "BERTLESS_THREADS": str(setting.threads)}
            wrapper = cpu.wrapper() if cpu else ()
            return bundle_cold_starts(str(self.path), count, route, body, env, wrapper)

    def close(self) -> None:
        """Nothing outlives a size: each one's server stops when its block ends."""


class AwsArtifactTarget(BenchTarget):
    """An AWS artifact zip, run locally under awslambdaric and the Runtime API stand-in."""

    kind = "aws artifact"

    def __init__(self, path: Path, say: Say) -> None:
        from bertless.packaging.layer import unpack
        from bertless.packaging.package import read_artifact
        from bertless.packaging.proof import find_interpreter, skip_reason

        self.artifact = artifact = read_artifact(Path(path))
        self.label = str(path)
        if artifact.cloud != "aws":
            raise BenchError(
                f"{path} is a {artifact.cloud} artifact; only AWS artifacts run locally (under "
                "awslambdaric): bench its bundle directory, or the deployed function's URL."
            )
        runtime = limits.require_runtime("aws", artifact.python)
        reason = skip_reason(artifact.python, artifact.arch, runtime.glibc or "2.17")
        interpreter = find_interpreter(artifact.python)
        if reason or interpreter is None:
            raise BenchError(f"{path} cannot run on this machine: {reason}.")
        say(f"unzipping {Path(path).name}")
        self._scratch = Path(tempfile.mkdtemp(prefix="bertless-bench-"))
        self.task_root = self._scratch / "task"
        unpack(artifact.path, artifact.layer, self.task_root)
        say(f"runtime client for CPython {artifact.python}")
        self.runtime_root = provision_runtime(artifact.python, artifact.arch, say)
        self.interpreter = interpreter

    def info(self) -> dict[str, Any]:
        from bertless.core.bundle import load_bundle

        manifest = load_bundle(self.task_root / "bundle", verify=False).manifest
        return {"task": manifest.task, "model_id": manifest.model_id}

    def default_memory(self) -> int:
        return self.artifact.memory_mb

    def launch(self, setting: Emulation, cpu: CpuLimit | None) -> Launch:
        return Launch(
            task_root=self.task_root,
            runtime_root=self.runtime_root,
            interpreter=self.interpreter,
            handler=self.artifact.entry_point,
            python=self.artifact.python,
            memory_mb=setting.memory_mb,
            environment={"BERTLESS_THREADS": str(setting.threads)},
            wrapper=cpu.wrapper() if cpu else (),
        )

    @contextlib.contextmanager
    def serving(
        self, setting: Emulation, limit: Callable[[], CpuLimit | None], concurrency: int
    ) -> Iterator[Endpoint]:
        with contextlib.ExitStack() as stack:
            # one CPU share per execution environment
            cpus = [stack.enter_context(cpu_share(limit)) for _ in range(concurrency)]
            environments = [ExecutionEnvironment(self.launch(setting, cpu)) for cpu in cpus]
            try:
                for environment in environments:
                    environment.start()
                for environment in environments:
                    environment.wait_ready()
                yield LambdaEndpoint(self.label, environments)
            finally:
                for environment in environments:
                    environment.close()

    def cold_starts(
        self,
        setting: Emulation,
        limit: Callable[[], CpuLimit | None],
        count: int,
        route: str,
        body: bytes,
    ) -> ColdStart | str:
        with cpu_share(limit) as cpu:
            return lambda_cold_starts(self.launch(setting, cpu), count, route, body)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
