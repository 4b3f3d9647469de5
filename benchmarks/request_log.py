"""What the request log line and the metrics cost a request: `Service.handle` with them and with
them switched off, against the Predictor called directly, in one process.

The three answer the same batch-1 /embed requests, interleaved one by one in a random order, so
a noisy neighbour slows them alike. The log lines go to a file, as the Lambda runtime and Cloud
Run take stderr through a pipe to a collector rather than a terminal. "Off" replaces the line's
writing and the metrics' recording with nothing; everything else is the same code. Then the
line alone (build and write) is timed over many calls.

    .venv/bin/python benchmarks/request_log.py [--requests 1000] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles

from bertless import Predictor
from bertless.core import observe
from bertless.core.config import Config
from bertless.core.service import Request, Service

HEADERS = {
    "Content-Type": "application/json",
    "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--bundle", help="default: export the built-in model to a temp dir")
    args = parser.parse_args()
    bundle = args.bundle
    if not bundle:
        from bertless.models.export import export

        bundle = str(Path(tempfile.mkdtemp()) / "minilm")
        export(None, bundle)
    predictor = Predictor.load(bundle)
    service = Service(predictor, Config.from_env(predictor.manifest))
    write, record = observe.write, service.metrics.record
    texts = mixed_texts(args.requests)
    times: dict[str, list[float]] = {"direct": [], "logged": [], "silent": []}
    rng = random.Random(0)
    with tempfile.TemporaryFile("w") as log:
        sys.stderr = log
        try:
            for text in texts[:20]:  # warm-up
                predictor.encode([text], truncate=True)
            for text in texts:
                body = json.dumps({"inputs": text, "truncate": True}).encode()
                for path in rng.sample(list(times), 3):
                    silent = path == "silent"
                    observe.write = (lambda _: None) if silent else write
                    service.metrics.record = (lambda *a: None) if silent else record
                    t0 = time.perf_counter()
                    if path == "direct":
                        predictor.encode([text], truncate=True)
                    else:
                        request = Request("POST", "/embed", HEADERS, body, request_id="r")
                        assert service.handle(request).status == 200
                    times[path].append(time.perf_counter() - t0)
            observe.write = write
            seen = observe.Exchange("/embed", 1, 12)
            calls = 20_000
            t0 = time.perf_counter()
            for _ in range(calls):
                observe.write(
                    observe.log_record("POST", seen, 200, 0.01, "r", HEADERS["traceparent"])
                )
            line_us = (time.perf_counter() - t0) / calls * 1e6
        finally:
            sys.stderr = sys.__stderr__
    q = {path: quantiles(values) for path, values in times.items()}
    print(
        f"\n{args.requests} batch-1 /embed requests, interleaved (load {os.getloadavg()[0]:.2f})\n"
    )
    print("| path | q50 ms | q95 ms | q99 ms | q50 / direct | q50 / silent |")
    print("|---|---|---|---|---|---|")
    names = {
        "direct": "Predictor.encode",
        "silent": "Service.handle, no log line, no metrics",
        "logged": "Service.handle, log line + metrics",
    }
    for path, name in names.items():
        print(
            f"| {name} | {q[path]['q50']:.3f} | {q[path]['q95']:.3f} | {q[path]['q99']:.3f} "
            f"| {q[path]['q50'] / q['direct']['q50']:.3f} "
            f"| {q[path]['q50'] / q['silent']['q50']:.3f} |"
        )
    print(f"\nthe log line alone (build + write to a file): {line_us:.1f} µs per request")


if __name__ == "__main__":
    main()
