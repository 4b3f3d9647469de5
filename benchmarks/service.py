"""Latency of the service, in process (`Service.handle`) and over HTTP (`bertless serve`), vs
the Predictor called directly.

All three answer the same batch-1 requests, interleaved one by one in a random order, so a noisy
neighbour slows them alike. The HTTP client is http.client on a kept-alive connection, to measure
the server, not a heavy client library. Both processes' onnxruntime sessions follow BERTLESS_SPIN
(by default their threads stop spinning when a run returns; left spinning, each would slow the
other on a small machine). The load average is printed too: on a shared machine, compare runs
made under similar load.

    .venv/bin/python benchmarks/service.py [--requests 1000] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import http.client
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
from bertless.core.config import Config
from bertless.core.service import Request, Service
from bertless.local.server import local_server


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
    texts = mixed_texts(args.requests)
    times: dict[str, list[float]] = {"direct": [], "service": [], "http": []}
    rng = random.Random(0)
    load_before = os.getloadavg()[0]
    with local_server(Path(bundle)) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port))
        headers = {"Content-Type": "application/json"}
        for text in texts[:20]:  # warm-up both paths
            predictor.encode([text], truncate=True)
            connection.request(
                "POST", "/embed", json.dumps({"inputs": text, "truncate": True}), headers
            )
            connection.getresponse().read()
        for text in texts:
            body = json.dumps({"inputs": text, "truncate": True})
            for path in rng.sample(list(times), 3):
                t0 = time.perf_counter()
                if path == "direct":
                    predictor.encode([text], truncate=True)
                elif path == "service":
                    response = service.handle(Request("POST", "/embed", headers, body.encode()))
                    assert response.status == 200
                else:
                    connection.request("POST", "/embed", body, headers)
                    answer = connection.getresponse()
                    answer.read()
                    assert answer.status == 200
                times[path].append(time.perf_counter() - t0)
    q = {path: quantiles(values) for path, values in times.items()}
    print(
        f"\n{args.requests} batch-1 /embed requests, the three paths interleaved "
        f"(BERTLESS_SPIN={os.environ.get('BERTLESS_SPIN', 'unset')}, 1-minute load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after)\n"
    )
    print("| path | q50 ms | q95 ms | q99 ms | q50 / direct |")
    print("|---|---|---|---|---|")
    names = {
        "direct": "Predictor.encode",
        "service": "Service.handle (in process)",
        "http": "HTTP /embed (bertless serve, loopback)",
    }
    for path, name in names.items():
        print(
            f"| {name} | {q[path]['q50']:.2f} | {q[path]['q95']:.2f} | {q[path]['q99']:.2f} "
            f"| {q[path]['q50'] / q['direct']['q50']:.2f} |"
        )


if __name__ == "__main__":
    main()
