"""What a SnapStart-like snapshot of an AWS artifact would hold, measured here; no restore.

A restore path (the process checkpointed after init and restored) cannot run on this machine:
Debian bookworm's CRIU 3.17.1 stops in `criu check` with "vdso: Unexpected rt vDSO area bounds",
because kernels from 6.13 split the vvar mapping in two ([vvar] and [vvar_vclock]) and only
CRIU releases with checkpoint-restore/criu#2539 (December 2024) know it. So this measures what
the snapshot would contain instead, and says so: the artifact's handler module is imported (its
init: model loaded at module scope) in a clean CPython of the artifact's version whose only
import path is the unzipped artifact, then the process's memory is read from
/proc/self/smaps_rollup. A checkpoint writes the pages no file holds (anonymous and dirty
private ones); clean file-backed pages (the shared libraries, the mapped model file when it is
mapped) are mapped again from their files on restore.

    .venv/bin/python benchmarks/snapshot_size.py ARTIFACT.zip [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bertless.packaging.proof import find_interpreter

CHILD = r"""
import json, sys, time
start = time.perf_counter()
import lambda_function  # the artifact's init: imports and the model, at module scope
init_ms = (time.perf_counter() - start) * 1000
fields = {}
for line in open("/proc/self/smaps_rollup"):
    parts = line.split()
    if len(parts) == 3 and parts[2] == "kB":
        fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
print(json.dumps({"init_ms": init_ms, **fields}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = json.loads(args.artifact.with_suffix(".json").read_text())
    python = find_interpreter(report["python"])  # the real binary, as the packaging proof uses
    if python is None:
        sys.exit(f"no python{report['python']} here to run the artifact in")
    folder = Path(tempfile.mkdtemp(prefix="snapshot-"))
    try:
        with zipfile.ZipFile(args.artifact) as archive:
            archive.extractall(folder)
        runs = []
        for _ in range(args.runs):
            done = subprocess.run(
                [
                    python,
                    "-I",
                    "-S",
                    "-c",
                    f"import sys; sys.path[:0] = [{str(folder)!r}]\n{CHILD}",
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=folder,
                env={"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"},
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(folder)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    written = max(median.get("Anonymous", 0), median.get("Private_Dirty", 0))
    load = os.getloadavg()[0]
    print(f"\n{args.artifact.name}: {args.runs} fresh processes, medians (load {load:.1f})\n")
    print("| after init | MB |")
    print("|---|---:|")
    for key in ("Rss", "Pss", "Anonymous", "Private_Dirty", "Private_Clean", "Shared_Clean"):
        print(f"| {key} | {median.get(key, 0):.1f} |")
    print(
        f"\ninit (imports + model) {median['init_ms']:.0f} ms; a snapshot would write about "
        f"{written:.0f} MB (the larger of anonymous and dirty private pages)"
    )


if __name__ == "__main__":
    main()
