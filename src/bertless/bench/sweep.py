"""The memory sweep: every target measured at every memory size, then priced at that size.

On a cloud, memory buys CPU: Lambda gives 1 vCPU at 1,769 MB and CPU in proportion between its
documented points, Cloud Run and Azure step by tier. A local run cannot change the hardware, so
it emulates the share a memory size buys, as closely as this machine allows:
- ONNX Runtime's intra-op threads are set to max(1, round(vCPUs)) through BERTLESS_THREADS,
  what bertless would pick if it saw the platform's quota; capped at this machine's cores;
- the CPU time of the serving processes is capped at the vCPU share by a cgroup CFS quota
  (cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`, in a child group made for the run), so that
  a 512 MB Lambda's 0.29 vCPU runs at 0.29 of a core here. A quota is a ceiling, not a
  reservation: on a busy machine the processes get less, and the report records the load.
  Without a writable cgroup the CPU is not throttled, and the report says so on every row.
A deployed function is not emulated: its memory is set for real between runs (AWS, through
`update_function_configuration`), and restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertless.bench.coldstart import (
    AwsFunction,
    ColdStart,
    bundle_cold_starts,
    lambda_cold_starts,
    remote_cold_starts,
)
from bertless.bench.cost import cost_report
from bertless.bench.latency import (
    BenchError,
    Endpoint,
    HttpEndpoint,
    LambdaEndpoint,
    fetch_info,
    measure,
    request_body,
    task_route,
)
from bertless.bench.report import BenchReport, Emulation, SizeRun, TargetReport
from bertless.local.execution_environment import ExecutionEnvironment, Launch, provision_runtime
from bertless.local.server import local_server
from bertless.platforms import limits

CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
DEFAULT_MEMORY_MB = 1769  # one full Lambda vCPU: the setting to assume when nothing says
Progress = Callable[[str], None]


class CpuLimit:
    """A cgroup whose processes together get at most `cpus` CPUs of time (a CFS quota).

    Processes join it through `wrapper()`: a shell writes its own pid into the group and then
    execs the command, so the process is throttled from its first instruction.
    """

    def __init__(self, path: Path, version: str, cpus: float) -> None:
        self.path, self.version, self.cpus = path, version, cpus
        self.quota_us = max(1000, round(cpus * PERIOD_US))  # the kernel's floor is 1 ms
        if version == "v2":
            (path / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}\n")
        else:
            (path / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (path / "cpu.cfs_quota_us").write_text(f"{self.quota_us}\n")

    @classmethod
    def create(cls, cpus: float, root: Path = CGROUP) -> CpuLimit | None:
        """A new group under `root` (v2 with the cpu controller, else v1's cpu hierarchy), or
        None when neither can be written here (no root, a read-only or delegated hierarchy)."""
        name = f"bertless-bench-{uuid.uuid4().hex[:12]}"
        controllers = root / "cgroup.controllers"
        try:
            if controllers.is_file() and "cpu" in controllers.read_text().split():
                subtree = root / "cgroup.subtree_control"
                if "cpu" not in subtree.read_text().split():
                    subtree.write_text("+cpu\n")
                path, version = root / name, "v2"
            elif (root / "cpu" / "cpu.cfs_quota_us").is_file():
                path, version = root / "cpu" / name, "v1"
            else:
                return None
            path.mkdir()
        except OSError:
            return None
        try:
            return cls(path, version, cpus)
        except OSError:
            path.rmdir()
            return None

    def wrapper(self) -> tuple[str, ...]:
        procs = str(self.path / "cgroup.procs")
        return ("/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs)

    def describe(self) -> str:
        return f"cgroup {self.version} CFS quota {self.quota_us:,} us per {PERIOD_US:,} us"

    def close(self) -> None:
        """Remove the group once its processes are gone (the kernel refuses it before)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


def emulation(cloud: str, memory_mb: int, limit: CpuLimit | None) -> Emulation:
    """The CPU a memory size buys on `cloud`, and how this machine was made to give it."""
    vcpus = limits.vcpus_for_memory(cloud, memory_mb)
    cores = os.cpu_count() or 1
    threads = min(cores, max(1, round(vcpus)))
    platform = limits.get_platform(cloud).name
    how = f"{platform} gives {memory_mb} MB {vcpus:.2f} vCPU; here: {threads} ORT thread(s)"
    if limit is None:
        how += ", CPU not throttled (no writable cgroup): small sizes look faster than they are"
        return Emulation(memory_mb, vcpus, threads, None, how)
    how += f", {limit.describe()} ({limit.cpus:.2f} CPU)"
    if vcpus > cores:
        how += f", capped at this machine's {cores} cores"
    return Emulation(memory_mb, vcpus, threads, limit.cpus, how)


class Target(ABC):
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


class UrlTarget(Target):
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


class BundleTarget(Target):
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
            _cpu_share(limit) as cpu,
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
        with _cpu_share(limit) as cpu:
            env = {**os.environ, "BERTLESS_THREADS": str(setting.threads)}
            wrapper = cpu.wrapper() if cpu else ()
            return bundle_cold_starts(str(self.path), count, route, body, env, wrapper)

    def close(self) -> None:
        """Nothing outlives a size: each one's server stops when its block ends."""


class AwsArtifactTarget(Target):
    """An AWS artifact zip, run locally under awslambdaric and the Runtime API stand-in."""

    kind = "aws artifact"

    def __init__(self, path: Path, progress: Progress) -> None:
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
        progress(f"unzipping {Path(path).name}")
        self._scratch = Path(tempfile.mkdtemp(prefix="bertless-bench-"))
        self.task_root = self._scratch / "task"
        with zipfile.ZipFile(artifact.path) as archive:
            archive.extractall(self.task_root)
        progress(f"runtime client for CPython {artifact.python}")
        self.runtime_root = provision_runtime(artifact.python, artifact.arch, progress)
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
            cpus = [stack.enter_context(_cpu_share(limit)) for _ in range(concurrency)]
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
        with _cpu_share(limit) as cpu:
            return lambda_cold_starts(self.launch(setting, cpu), count, route, body)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


@dataclass(frozen=True)
class Settings:
    requests: int
    concurrency: int
    warmup: int
    cold_starts: int
    batch_size: int
    texts: Sequence[str]
    inputs: str  # where the texts came from
    requests_per_month: int
    arch: str

    def as_dict(self) -> dict[str, Any]:
        fields = ("requests", "concurrency", "warmup", "cold_starts", "batch_size", "inputs")
        return {
            **{name: getattr(self, name) for name in fields},
            "texts": len(self.texts),
            "requests_per_month": self.requests_per_month,
            "arch": self.arch,
        }


def run(
    targets: Sequence[Target],
    sizes: Sequence[int] | None,
    settings: Settings,
    progress: Progress | None = None,
) -> BenchReport:
    """Measure and price every target at every size (its default size when none are given)."""
    say = progress or (lambda _: None)
    report = BenchReport(settings.as_dict())
    try:
        for target in targets:
            info = target.info()
            route = task_route(info)
            body = request_body(route, settings.texts[: settings.batch_size])
            model = info.get("model_id", "?")
            result = TargetReport(target.label, target.kind, model, info["task"])
            report.targets.append(result)
            for memory in sizes or [target.default_memory()]:
                result.runs.append(_size(target, memory, route, body, settings, say))
            target.close()  # restore a function now: the next target may be the same one
    finally:
        for target in targets:
            target.close()
    report.machine["load_average_end"] = list(os.getloadavg())
    return report


def _size(
    target: Target, memory: int, route: str, body: bytes, settings: Settings, say: Progress
) -> SizeRun:
    setting, limit = target.emulate(memory)
    cold: ColdStart | str = "not asked for (--cold-starts 0)"
    if settings.cold_starts > 0:
        say(f"{target.label} at {memory} MB: {settings.cold_starts} cold start(s)")
        cold = target.cold_starts(setting, limit, settings.cold_starts, route, body)
    say(f"{target.label} at {memory} MB: {settings.requests} requests")
    with target.serving(setting, limit, settings.concurrency) as endpoint:
        latency = measure(
            endpoint,
            route,
            settings.texts,
            settings.requests,
            settings.concurrency,
            settings.warmup,
            settings.batch_size,
        )
    billed = latency.billed_duration()
    duration, source = billed if billed else (None, "nothing: no request was answered")
    arch = getattr(getattr(target, "artifact", None), "arch", settings.arch)
    return SizeRun(
        emulation=setting,
        latency=latency,
        cold_start=cold if isinstance(cold, ColdStart) else None,
        cold_start_note="" if isinstance(cold, ColdStart) else cold,
        duration_ms=duration,
        duration_source=source,
        cost=cost_report(duration, memory, arch, settings.requests_per_month) if duration else [],
    )


@contextlib.contextmanager
def _cpu_share(limit: Callable[[], CpuLimit | None]) -> Iterator[CpuLimit | None]:
    """One CPU share (or None where no cgroup is writable) for the block, released after it."""
    cpu = limit()
    try:
        yield cpu
    finally:
        if cpu:
            cpu.close()


def resolve_target(
    text: str,
    progress: Progress,
    api_key: str | None = None,
    sigv4_region: str | None = None,
    aws_function: str | None = None,
) -> Target:
    """A URL, a bundle directory, or an artifact (its zip or its report), from the argument."""
    if text.startswith(("http://", "https://")):
        function = None
        if aws_function:
            name, _, alias = aws_function.partition(":")
            function = AwsFunction(name, alias or "live", sigv4_region)
        return UrlTarget(text, api_key, sigv4_region, function)
    path = Path(text)
    if path.is_dir():
        if not (path / "bundle.json").is_file():
            raise BenchError(f"{path} is a directory without bundle.json: not a bundle.")
        return BundleTarget(path)
    if path.is_file() and path.suffix in (".zip", ".json"):
        return AwsArtifactTarget(path, progress)
    raise BenchError(
        f"{text} is not a URL, a bundle directory or an artifact zip (or it does not exist)."
    )


def check_sizes(targets: Sequence[Target], sizes: Sequence[int] | None) -> None:
    """Refuse a sweep that cannot happen before any time is spent on it."""
    if not sizes:
        return
    for size in sizes:
        limits.check_memory("aws", size)
    for target in targets:
        if isinstance(target, UrlTarget) and target.function is None and len(sizes) > 1:
            raise BenchError(
                f"{target.label}: a URL's memory can only be changed with --aws-function NAME; "
                "pass one --memory size (the one it has) to price it."
            )
