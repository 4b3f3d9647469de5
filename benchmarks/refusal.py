"""What refusing an over-long text costs: the text's head tokenized (now) against all of it.

Twenty /embed requests, each one 1 MB text, each refused with 413 (truncation off), through
`Service.handle` in a fresh process per way: the time of each refusal and the process's RSS
before and after. "whole text" is the same predictor with `_head` turned off, as before.

    .venv/bin/python benchmarks/refusal.py [--bundle DIR] [--requests 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles


def measure(bundle: str, way: str, requests: int) -> dict:
    """In this process: RSS and refusal times for REQUESTS 1 MB texts."""
    from bertless import Predictor
    from bertless.core.config import Config
    from bertless.core.service import Request, Service

    predictor = Predictor.load(bundle)
    if way == "whole text":
        predictor._head = lambda item: item
    service = Service(predictor, Config.from_env(predictor.manifest))
    service.handle(
        Request("POST", "/embed", {"Content-Type": "application/json"}, b'{"inputs":"a"}')
    )
    before = psutil.Process().memory_info().rss / 2**20
    text = " ".join(mixed_texts(8000, seed=7))[:1_000_000]
    body = json.dumps({"inputs": text, "truncate": False}).encode()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = service.handle(
            Request("POST", "/embed", {"Content-Type": "application/json"}, body)
        )
        times.append(time.perf_counter() - started)
        assert answer.status == 413, answer.body
    after = psutil.Process().memory_info().rss / 2**20
    return {"before": before, "after": after, **quantiles(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", help="default: export the built-in model to a temp dir")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--way", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()
    if args.way:
        print(json.dumps(measure(args.bundle, args.way, args.requests)))
        return
    bundle = args.bundle
    if not bundle:
        from bertless.models.export import export

        bundle = str(Path(tempfile.mkdtemp()) / "minilm")
        export(None, bundle)
    results = {}
    for way in ("head first", "whole text"):
        command = [sys.executable, __file__, "--bundle", bundle, "--way", way]
        out = subprocess.run(
            [*command, "--requests", str(args.requests)], capture_output=True, text=True, check=True
        )
        results[way] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{args.requests} /embed requests of one 1 MB text, truncate false (each a 413)\n")
    print("| tokenized | q50 ms | q99 ms | RSS before MB | RSS after MB | growth MB |")
    print("|---|---|---|---|---|---|")
    for way, r in results.items():
        print(
            f"| {way} | {r['q50']:.1f} | {r['q99']:.1f} | {r['before']:.0f} | {r['after']:.0f} "
            f"| {r['after'] - r['before']:.0f} |"
        )


if __name__ == "__main__":
    main()
