"""Per-request overhead of each adapter over `Service.handle`, side by side, on the same inputs.

Every adapter module is imported (so each loads the bundle, as on a cold start), then all of them
are pointed at one shared Service, so the only difference between the rows is the adapter's own
translation: event or platform request in, platform answer out. The requests are interleaved,
each round in a fresh random order, and each adapter's input (an AWS event filled in from the
documented samples of tests/events/aws, a Flask request, an Azure HttpRequest) is built outside
the timed call. Two workloads: batch-1 /embed, where the model dominates, and GET /health, where
nearly all the time is the adapter and the service's routing.

    .venv/bin/python benchmarks/adapters.py [--bundle DIR] [--requests 2000]

Without --bundle it exports the default MiniLM bundle to a temporary folder first.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the documented AWS events and how they are filled in

import azure.functions as func  # noqa: E402
import flask  # noqa: E402
from conformance import AWS_SHAPES, aws_event, azure_function, direct_event  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from bertless.core.service import Request, Service  # noqa: E402

TEXTS = [f"request {i}: a short sentence to embed, as a search query would be" for i in range(64)]
Call = Callable[[], object]


def load_adapters(bundle: Path) -> SimpleNamespace:
    os.environ["BERTLESS_BUNDLE"] = str(bundle)
    modules = {
        n: importlib.import_module(f"bertless.adapters.{n}") for n in ("aws", "gcp", "azure")
    }
    shared = Service.from_bundle(bundle)
    for module in modules.values():
        module.SERVICE = shared
    return SimpleNamespace(service=shared, **modules)


def prepared(adapters: SimpleNamespace, request: Request) -> dict[str, Call]:
    """For each adapter, a call that answers `request`; its input is built here, untimed."""
    environ = EnvironBuilder(
        request.path, method=request.method, headers=dict(request.headers), data=request.body
    )
    azure_request = func.HttpRequest(
        request.method,
        "https://bertless.azurewebsites.net/api" + request.path,
        headers=dict(request.headers),
        route_params={"path": request.path.lstrip("/")},
        body=request.body,
    )
    gcp_request = environ.get_request(flask.Request)
    azure = azure_function(adapters.azure.app).get_user_function()
    direct = direct_event(request)
    calls: dict[str, Call] = {
        "Service.handle": lambda: adapters.service.handle(request),
        "gcp": lambda: adapters.gcp.handle(gcp_request),
        "azure": lambda: azure(azure_request),
        "aws direct": lambda: adapters.aws.handler(direct, None),
    }
    for shape in AWS_SHAPES:
        event = aws_event(shape, request)
        calls[f"aws {shape}"] = lambda e=event: adapters.aws.handler(e, None)
    return calls


def measure(adapters: SimpleNamespace, make: Callable[[int], Request], count: int, seed: int):
    """Microseconds per call of every adapter, `count` interleaved rounds after a warm-up."""
    order = random.Random(seed)
    times: dict[str, list[float]] = {}
    for round_ in range(-50, count):
        calls = list(prepared(adapters, make(round_)).items())
        order.shuffle(calls)
        for name, call in calls:
            started = time.perf_counter_ns()
            call()
            elapsed = (time.perf_counter_ns() - started) / 1e3
            if round_ >= 0:
                times.setdefault(name, []).append(elapsed)
    return times


def table(title: str, times: dict[str, list[float]]) -> str:
    def q(values: list[float], p: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[p - 1]

    base = q(times["Service.handle"], 50)
    lines = [
        f"### {title} ({len(times['Service.handle'])} requests per row)",
        "",
        "| adapter | q50 µs | q95 µs | q99 µs | q50 / Service.handle | q50 overhead µs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in sorted(times.items(), key=lambda item: q(item[1], 50)):
        q50 = q(values, 50)
        lines.append(
            f"| {name} | {q50:.1f} | {q(values, 95):.1f} | {q(values, 99):.1f} "
            f"| {q50 / base:.3f} | {q50 - base:+.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle folder (default: export MiniLM)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per adapter")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle
        if bundle is None:
            from bertless.models.export import export

            bundle = Path(scratch) / "minilm"
            export(None, bundle)
        adapters = load_adapters(bundle)
        json_type = {"Content-Type": "application/json"}

        def embed(i: int) -> Request:
            body = json.dumps({"inputs": TEXTS[i % len(TEXTS)]}).encode()
            return Request("POST", "/embed", json_type, body)

        def health(i: int) -> Request:
            return Request("GET", "/health", {}, b"")

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, bundle {bundle}\n")
        for title, make in (("POST /embed, batch 1", embed), ("GET /health", health)):
            print(table(title, measure(adapters, make, args.requests, args.seed)), "\n")


if __name__ == "__main__":
    main()
