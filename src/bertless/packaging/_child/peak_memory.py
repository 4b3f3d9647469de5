"""Peak resident memory (MB) of a process that loads a bundle and runs its worst request.

Run by `bertless.packaging.proof.measure_peak_memory` as `python -I peak_memory.py BUNDLE` with the
build's own Python, in a fresh process so the build's memory is not counted. Unlike its neighbours
it imports bertless (the installed `bertless.core`), so it runs with site-packages; `-I` keeps this
folder and the working directory off `sys.path`. BERTLESS_THREADS sets the model's threads.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bertless.core.config import Config
from bertless.core.predictor import Predictor


def peak_memory_mb(bundle: str) -> float:
    """Load the bundle, run the largest batch the service accepts at full length, read VmHWM."""
    predictor = Predictor.load(bundle)
    manifest = predictor.manifest
    batch = Config.from_env(manifest).max_batch_size
    texts = ["word " * (2 * manifest.max_length)] * batch
    if manifest.task == "feature-extraction":
        predictor.embed(texts, batch, truncate=True)
    else:
        predictor.classify(texts, batch, truncate=True)
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark into a child
    # across fork and exec, so ru_maxrss would report the build process's memory
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


if __name__ == "__main__":
    print(peak_memory_mb(sys.argv[1]))
