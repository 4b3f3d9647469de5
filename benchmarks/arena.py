"""onnxruntime's CPU memory arena: kept (onnxruntime's default), shrunk after every run (the
Predictor's choice), or off.

Each way runs in a fresh process: warm-up, 200 batch-1 requests (mixed texts), then the worst
request (the max batch at full length), then 200 batch-1 requests again. Reported: q50 of the
batch-1 requests before and after the worst one, peak RSS (VmHWM), and RSS after it all: what a
long-running server keeps once a big request has passed.

Shrinking returned about 260 MB after the worst request of MiniLM at no cost to batch-1 latency.
Alone it made a server with 8 concurrent clients grow 14% (tests/core/test_server.py's
flat-memory test failed): glibc's per-thread heaps keep what onnxruntime gives back from
whichever thread ran the model. Serving processes therefore also cap malloc's heaps
(core.allocator), with which that test passes.

    .venv/bin/python benchmarks/arena.py [--bundle DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles

WAYS = ("kept", "shrunk after each run", "off")


class Kept:
    """A session whose runs leave the arena as large as they grew it (run options dropped)."""

    def __init__(self, session) -> None:
        self._session = session

    def run(self, outputs, feeds, options=None):
        return self._session.run(outputs, feeds)


def measure(bundle: str, way: str) -> dict:
    import onnxruntime as ort

    from bertless import Predictor

    predictor = Predictor.load(bundle)
    if way == "off":
        options = ort.SessionOptions()
        session = predictor._engine.session
        options.intra_op_num_threads = session.get_session_options().intra_op_num_threads
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.enable_cpu_mem_arena = False
        # Kept too: with no arena, there is nothing for the shrink option to shrink.
        predictor._engine.session = Kept(
            ort.InferenceSession(
                str(predictor.bundle.model_path), options, providers=["CPUExecutionProvider"]
            )
        )
    elif way == "kept":
        predictor._engine.session = Kept(predictor._engine.session)

    def batch_one(texts: list[str]) -> dict:
        times = []
        for text in texts:
            started = time.perf_counter()
            predictor.encode([text], truncate=True)
            times.append(time.perf_counter() - started)
        return quantiles(times)

    texts = mixed_texts(200, seed=4)
    batch_one(texts[:20])
    before = batch_one(texts)
    length = predictor.manifest.max_length
    predictor.encode(["word " * (2 * length)] * 32, batch_size=32, truncate=True)
    after = batch_one(texts)
    status = Path("/proc/self/status").read_text()

    def field(name: str) -> float:
        return int(re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024

    return {
        "q50": before["q50"],
        "q50 after": after["q50"],
        "peak": field("VmHWM"),
        "rss": field("VmRSS"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", help="default: export the built-in model to a temp dir")
    parser.add_argument("--way", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()
    if args.way:
        print(json.dumps(measure(args.bundle, args.way)))
        return
    bundle = args.bundle
    if not bundle:
        from bertless.models.export import export

        bundle = str(Path(tempfile.mkdtemp()) / "minilm")
        export(None, bundle)
    print("| arena | batch-1 q50 ms | q50 after the worst request | peak RSS MB | RSS after MB |")
    print("|---|---|---|---|---|")
    for way in WAYS:
        command = [sys.executable, __file__, "--bundle", bundle, "--way", way]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {way} | {r['q50']:.2f} | {r['q50 after']:.2f} | {r['peak']:.0f} | {r['rss']:.0f} |"
        )


if __name__ == "__main__":
    main()
