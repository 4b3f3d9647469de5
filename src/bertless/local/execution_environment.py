"""One Lambda execution environment on this machine: an artifact run by the real runtime client.

Lambda unzips a function into its task root (/var/task) and starts the runtime interface client
(`awslambdaric`, the client inside AWS's own Python images, from /var/runtime) with the environment
variables Lambda documents
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime);
the client then asks the Runtime API (`runtime_api.py`, the service's side) for events. This does
the same in a clean interpreter, so an artifact's cold start and invocations can be measured as
Lambda reports them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertless.local.runtime_api import REGION, Invocation, RuntimeApi, RuntimeApiError

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact

# The command Lambda's container images run (`python -m awslambdaric HANDLER`), made explicit so
# that it works in an isolated interpreter (`-I -S`), where neither the working directory nor
# site-packages is on the path: the task root and the runtime folder are the only places to
# import from, as /var/task and /var/runtime are on Lambda.
LAUNCH = (
    "import os, runpy, sys; "
    "sys.path[:0] = [os.environ['LAMBDA_TASK_ROOT'], os.environ['LAMBDA_RUNTIME_DIR']]; "
    "runpy.run_module('awslambdaric', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class Launch:
    """How Lambda would start a function: where its code and runtime are, and its settings."""

    task_root: Path  # the unzipped artifact (/var/task)
    runtime_root: Path  # awslambdaric and its dependencies (/var/runtime)
    interpreter: str  # a CPython of the function's runtime version
    handler: str  # "lambda_function.handler"
    python: str  # "3.12": names AWS_EXECUTION_ENV
    memory_mb: int
    environment: Mapping[str, str] = field(default_factory=dict)  # the function's own variables
    wrapper: tuple[str, ...] = ()  # a command that runs the runtime (a CPU limit), or nothing


class ExecutionEnvironment:
    """One Lambda execution environment: a fresh runtime process bound to its own Runtime API.

    `start` records the time before the process is spawned, so `wait_ready` gives the whole init
    phase Lambda reports (interpreter start, imports, the handler module's top level: the model
    load).
    """

    def __init__(self, launch: Launch, api: RuntimeApi | None = None) -> None:
        self.launch = launch
        self.api = api or RuntimeApi()
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        handle, log = tempfile.mkstemp(prefix="bertless-lambda-", suffix=".log")
        os.close(handle)
        self._log = Path(log)

    def environment(self) -> dict[str, str]:
        """The variables Lambda defines for a function, and the function's own; no credentials."""
        launch, name = self.launch, self.api.function_name
        task, runtime = launch.task_root, launch.runtime_root
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LD_LIBRARY_PATH": f"{runtime}:{runtime}/lib:{task}:{task}/lib",  # as on Lambda
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": launch.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{launch.python}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(launch.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]" + uuid.uuid4().hex,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "LAMBDA_TASK_ROOT": str(task),
            "LAMBDA_RUNTIME_DIR": str(runtime),
            **launch.environment,
        }

    def start(self) -> subprocess.Popen:
        launch = self.launch
        # -B: /var/task is read-only on Lambda, so no run may leave bytecode for the next one
        flags = ["-I", "-S", "-B"]
        command = [*launch.wrapper, launch.interpreter, *flags, "-c", LAUNCH, launch.handler]
        with self._log.open("wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                command, cwd=launch.task_root, env=self.environment(), stdout=log, stderr=log
            )
        return self.process

    def wait_ready(self, timeout: float = 300) -> float:
        """Block until init is over; return Init Duration in ms."""
        try:
            ready = self.api.wait_ready(timeout, self.process)
        except RuntimeApiError as error:
            raise RuntimeApiError(f"{error}\n{self.log_tail()}") from None
        return (ready - self.started) * 1e3

    def invoke(self, event: Any, timeout: float = 900) -> Invocation:
        """Send one event and wait for its answer."""
        invocation = self.api.submit(event)
        try:
            return self.api.wait(invocation, timeout, self.process)
        except RuntimeApiError as error:
            raise RuntimeApiError(f"{error}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the runtime's output, for error messages."""
        text = self._log.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.api.close()
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> ExecutionEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def artifact_launch(artifact: Artifact, task_root: Path) -> Launch:
    """How Lambda would start an AWS artifact unpacked at `task_root`, at its own settings.

    The interpreter is this machine's CPython of the artifact's version (as the packaging proof
    uses) and /var/runtime the runtime client `provision_runtime` installs for it.
    """
    from bertless.packaging.proof import find_interpreter

    interpreter = find_interpreter(artifact.python)
    if interpreter is None:
        raise RuntimeApiError(f"no CPython {artifact.python} on this machine (PATH or pyenv).")
    return Launch(
        task_root=task_root,
        runtime_root=provision_runtime(artifact.python, artifact.arch),
        interpreter=interpreter,
        handler=artifact.entry_point,
        python=artifact.python,
        memory_mb=artifact.memory_mb,
    )


def provision_runtime(
    python: str, arch: str, progress: Callable[[str], None] | None = None
) -> Path:
    """awslambdaric for the function's Python and CPU, installed once into the wheel cache.

    It plays /var/runtime: the runtime client Lambda's own Python images run, at the version
    this environment has installed, built for the function's interpreter (not this one's).
    """
    from importlib import metadata

    from bertless.packaging.wheels import (
        FALLBACK_GLIBC,
        WheelTarget,
        default_cache,
        install,
        resolve,
    )
    from bertless.platforms import limits

    try:
        version = metadata.version("awslambdaric")
    except metadata.PackageNotFoundError:
        raise RuntimeApiError(
            "awslambdaric is not installed: pip install 'bertless[bench]'"
        ) from None
    runtime = limits.require_runtime("aws", python)
    target = WheelTarget(python, arch, runtime.glibc or FALLBACK_GLIBC)
    cache = default_cache()
    folder = cache / "lambda-runtime" / f"awslambdaric-{version}-py{python}-{target.machine}"
    if folder.is_dir():
        return folder
    requirement = f"awslambdaric=={version}"
    resolve([requirement], target, cache, progress=progress)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".install-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(requirement + "\n")
        install(requirements, Path(scratch) / "runtime", target, cache)
        os.replace(Path(scratch) / "runtime", folder)
    return folder
