"""Peak resident memory (MB) of a process that loads a bundle and runs its worst request.

Run by `bertless.packaging.proof.measure_peak_memory` as `python -I peak_memory.py BUNDLE
[CONCURRENCY]` with the build's own Python, in a fresh process so the build's memory is not
counted. Unlike its neighbours it imports bertless (the installed `bertless.core`), so it runs
with site-packages; `-I` keeps this folder and the working directory off `sys.path`.
BERTLESS_THREADS sets the model's threads.
"""

from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bertless.core.config import Config
from bertless.core.predictor import Predictor
from bertless.core.service import Request, Service


def peak_memory_mb(bundle: str, concurrency: int = 1) -> float:
    """Load the bundle, run the largest batch the service accepts at full length, read VmHWM.

    With CONCURRENCY above one, that many such requests arrive at once through the service, as
    on an instance given that concurrency: the model runs one batch at a time (core.batcher)
    while the others wait holding their bodies, parsed inputs and tokens.
    """
    predictor = Predictor.load(bundle)
    manifest = predictor.manifest
    config = Config.from_env(manifest)
    batch = config.max_batch_size
    texts = ["word " * (2 * manifest.max_length)] * batch
    embeds = manifest.task == "feature-extraction"
    if concurrency == 1:
        if embeds:
            predictor.embed(texts, batch, truncate=True)
        else:
            predictor.classify(texts, batch, truncate=True)
    else:
        service = Service(predictor, config)
        # For /predict, a list of one-text lists is a batch (two bare texts would be a pair).
        inputs = texts if embeds else [[text] for text in texts]
        body = json.dumps({"inputs": inputs, "truncate": True}).encode()
        request = Request(
            "POST", "/embed" if embeds else "/predict", {"Content-Type": "application/json"}, body
        )
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda _: service.handle(request), range(concurrency)))
        failed = next((a for a in answers if a.status != 200), None)
        if failed is not None:
            raise SystemExit(f"the worst request failed: {failed.body.decode()}")
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark into a child
    # across fork and exec, so ru_maxrss would report the build process's memory
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


if __name__ == "__main__":
    print(peak_memory_mb(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))
