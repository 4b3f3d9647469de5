"""Latency of the service over HTTP (`bertless serve`) vs the Predictor called directly.

Both answer the same batch-1 requests, interleaved one by one, so a noisy neighbour slows both
alike. The client is http.client on a kept-alive connection, to measure the server, not a
heavy client library.

    .venv/bin/python benchmarks/service.py [--requests 1000] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from common import mixed_texts, quantiles

from bertless import Predictor

from conftest import running_server


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
    texts = mixed_texts(args.requests)
    direct, http_times = [], []
    with running_server(Path(bundle)) as url:
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
            t0 = time.perf_counter()
            predictor.encode([text], truncate=True)
            direct.append(time.perf_counter() - t0)
            body = json.dumps({"inputs": text, "truncate": True})
            t0 = time.perf_counter()
            connection.request("POST", "/embed", body, headers)
            response = connection.getresponse()
            response.read()
            http_times.append(time.perf_counter() - t0)
            assert response.status == 200
    d, h = quantiles(direct), quantiles(http_times)
    print(f"\n{args.requests} batch-1 /embed requests, interleaved with direct Predictor calls\n")
    print("| path | q50 ms | q95 ms | q99 ms |")
    print("|---|---|---|---|")
    print(f"| Predictor.encode | {d['q50']:.2f} | {d['q95']:.2f} | {d['q99']:.2f} |")
    print(f"| HTTP /embed (bertless serve) | {h['q50']:.2f} | {h['q95']:.2f} | {h['q99']:.2f} |")
    print(
        f"| ratio HTTP / direct | {h['q50'] / d['q50']:.2f} | {h['q95'] / d['q95']:.2f} | "
        f"{h['q99'] / d['q99']:.2f} |"
    )


if __name__ == "__main__":
    main()
