"""Whose time a cold start is: the floor its libraries set, and bertless's own share on top.

One fresh interpreter per run, started the way the platform starts the function (for an AWS
artifact: its own CPython with `-I -S -B`, the unpacked artifact alone on the path, so the
shipped `.pyc` load as on Lambda), does what the handler module does at init and then answers one
request, stamping the time between steps:

- the floor, what any program serving this model with these libraries pays: interpreter start,
  importing numpy, onnxruntime, tokenizers and the schema library (msgspec; pydantic with a first
  model of its own, which imports the rest of it, where an artifact from before msgspec ships
  it), parsing the tokenizer, opening the onnxruntime session, and the model run of the first
  request. A library the artifact does not ship (onnxruntime beside a static student's table)
  is not imported, and its phase is zero;
- bertless's own share: importing `bertless.core` (its modules, the standard library modules
  they pull in, its models' definitions), checking the bundle, building the service, and the
  first request's handling outside the model run (parsing, validation, tokenizing, JSON).

The steps inside `Service.from_bundle` are timed by wrapping the functions it calls
(`Predictor.load`, `load_bundle`, `open_engine` and the engine's `run`), so the real code path
runs, unchanged. One more run with `-X importtime` names the modules that bertless's import
phase spends its time in.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bertless.bench.latency import BenchError

FLOOR = (
    "interpreter start",
    "import numpy",
    "import onnxruntime",
    "import tokenizers",
    "import msgspec or pydantic",
    "tokenizer load",
    "session open",
    "first request: model run",
)
OWN = (
    "bertless imports",
    "bundle check",
    "service build",
    "first request: the rest",
)
MARKER = "-- bertless imports --"
END_MARKER = "-- bertless imported --"
# Runs in the function's interpreter with only the task root on its path: stdlib and what the
# artifact ships. Prints one JSON line of wall-clock stamps and the time spent in each wrapper.
PROBE = r"""
import json, sys, time
began = time.time()
marks = {}
def mark(name): marks[name] = time.time()
sys.path.insert(0, sys.argv[1])
from importlib.util import find_spec
for name in ("numpy", "onnxruntime", "tokenizers"):
    if find_spec(name):
        __import__(name)
    mark(f"import {name}")
if find_spec("msgspec"):
    import msgspec
if find_spec("pydantic"):
    import pydantic
    class First(pydantic.BaseModel):
        x: int
    First.model_validate({"x": 1})
mark("import msgspec or pydantic")
print("-- bertless imports --", file=sys.stderr, flush=True)
import bertless.core.config
import bertless.core.service as service_module
mark("bertless imports")
print("-- bertless imported --", file=sys.stderr, flush=True)
from bertless.core import predictor as predictor_module
spent = {"predictor": 0.0, "bundle check": 0.0, "session open": 0.0, "model run": 0.0}
def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.time() - start
    return wrapper
open_engine = predictor_module.open_engine
def opened(*args, **kwargs):
    engine = timed("session open", open_engine)(*args, **kwargs)
    engine.run = timed("model run", engine.run)
    return engine
predictor_module.open_engine = opened
predictor_module.load_bundle = timed("bundle check", predictor_module.load_bundle)
predictor_module.Predictor.load = staticmethod(timed("predictor", predictor_module.Predictor.load))
service = service_module.Service.from_bundle(sys.argv[2])
mark("loaded")
body = json.dumps({"inputs": [sys.argv[3]]}).encode()
request = service_module.Request("POST", "/embed", {"Content-Type": "application/json"}, body)
status = service.handle(request).status
mark("answered")
print(json.dumps({"began": began, "marks": marks, "spent": spent, "status": status}))
"""


@dataclass(frozen=True)
class ShareRuns:
    """Each run's phases in ms (FLOOR, OWN and their `total`), and the import profile."""

    runs: list[dict[str, float]] = field(default_factory=list)
    modules: list[tuple[str, float]] = field(default_factory=list)  # (module, self ms), top first

    def quantile(self, phase: str, q: float) -> float:
        """The q-quantile (0.5: the median) of PHASE over the runs, interpolated."""
        values = sorted(run[phase] for run in self.runs)
        position = q * (len(values) - 1)
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (position - low)

    def median(self, phase: str) -> float:
        return statistics.median(run[phase] for run in self.runs)


def phases(spawned: float, stamps: dict) -> dict[str, float]:
    """A run's phases in ms from the probe's stamps (seconds since the epoch) and the time
    its wrappers counted; `own` and `floor` sum them, `total` is spawn to answer."""
    marks, spent = stamps["marks"], stamps["spent"]
    ms = {"interpreter start": (stamps["began"] - spawned) * 1e3}
    previous = stamps["began"]
    for name in (*FLOOR[1:5], "bertless imports"):
        ms[name] = (marks[name] - previous) * 1e3
        previous = marks[name]
    ms["bundle check"] = spent["bundle check"] * 1e3
    ms["session open"] = spent["session open"] * 1e3
    # Predictor's own work besides those two is parsing the tokenizer.
    ms["tokenizer load"] = (
        spent["predictor"] - spent["bundle check"] - spent["session open"]
    ) * 1e3
    ms["service build"] = (marks["loaded"] - marks["bertless imports"] - spent["predictor"]) * 1e3
    ms["first request: model run"] = spent["model run"] * 1e3
    ms["first request: the rest"] = (marks["answered"] - marks["loaded"] - spent["model run"]) * 1e3
    ms["floor"] = sum(ms[name] for name in FLOOR)
    ms["own"] = sum(ms[name] for name in OWN)
    ms["total"] = (marks["answered"] - spawned) * 1e3
    return ms


def share_cold_starts(
    interpreter: str,
    task_root: Path,
    bundle: Path,
    count: int,
    text: str,
    wrapper: Sequence[str] = (),
) -> ShareRuns:
    """COUNT fresh runs of the probe in INTERPRETER, with TASK_ROOT alone on its path, loading
    BUNDLE and answering one /embed of TEXT; then one `-X importtime` run for the profile."""
    result = ShareRuns()
    for _ in range(count):
        result.runs.append(share_run(interpreter, task_root, bundle, text, wrapper))
    result.modules.extend(profile_run(interpreter, task_root, bundle, text, wrapper))
    return result


def share_run(
    interpreter: str, task_root: Path, bundle: Path, text: str, wrapper: Sequence[str] = ()
) -> dict[str, float]:
    """One fresh run of the probe: its phases in ms."""
    spawned, stamps, _ = _probe(interpreter, task_root, bundle, text, wrapper)
    return phases(spawned, stamps)


def profile_run(
    interpreter: str, task_root: Path, bundle: Path, text: str, wrapper: Sequence[str] = ()
) -> list[tuple[str, float]]:
    """One run of the probe under `-X importtime`: the modules bertless's imports spend on."""
    _, _, report = _probe(interpreter, task_root, bundle, text, wrapper, importtime=True)
    return import_profile(report)


def import_profile(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """The TOP modules by self time (ms) imported between the probe's two markers, from the
    interpreter's `-X importtime` report."""
    inside = stderr.split(MARKER, 1)[-1].split(END_MARKER, 1)[0]
    modules = []
    for line in inside.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        modules.append((name.strip(), int(own) / 1e3))
    return sorted(modules, key=lambda module: -module[1])[:top]


def _probe(
    interpreter: str,
    task_root: Path,
    bundle: Path,
    text: str,
    wrapper: Sequence[str],
    importtime: bool = False,
) -> tuple[float, dict, str]:
    flags = ["-I", "-S", "-B", *(["-X", "importtime"] if importtime else [])]
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "HOME": str(task_root)}
    spawned = time.time()
    done = subprocess.run(
        [*wrapper, interpreter, *flags, "-c", PROBE, str(task_root), str(bundle), text],
        capture_output=True,
        text=True,
        cwd=task_root,
        env=env,
        timeout=600,
    )
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"the cold-start probe failed: {tail}")
    stamps = json.loads(done.stdout.strip().splitlines()[-1])
    if stamps["status"] != 200:
        raise BenchError(f"the probe's first request answered {stamps['status']}")
    return spawned, stamps, done.stderr
