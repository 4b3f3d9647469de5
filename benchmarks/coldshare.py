"""bertless's own share of a cold start, AWS artifact against AWS artifact, phase by phase.

Each artifact is unpacked once (with its Lambda layer's files beside the function's) and started
in turn, run by run, in a fresh `pythonX.Y -I -S -B` of its own Python with its files alone on
the path (bertless.bench.coldshare): the floor (interpreter, numpy, onnxruntime, tokenizers,
msgspec or, in an artifact from before it, pydantic, the tokenizer's parse, the session, the
model run) and bertless's own share (its imports, the bundle check, building the service, the
first request outside the model run). Taking turns
means a noisy neighbour slows all alike; the table gives q50 per phase and each artifact's ratio
to the first. Use it to see what a change to bertless itself did to a cold start: the same bundle
packaged before and after it.

    .venv/bin/python benchmarks/coldshare.py ZIP ZIP... [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

from bertless.bench.coldshare import FLOOR, OWN, ShareRuns, share_run
from bertless.packaging.layer import unpack
from bertless.packaging.package import read_artifact
from bertless.packaging.proof import find_interpreter

TEXT = "bertless starts a model on a function in a fraction of the time."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("artifacts", nargs="+", metavar="ZIP", help="AWS artifact zips")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    artifacts = [read_artifact(Path(path)) for path in args.artifacts]
    with tempfile.TemporaryDirectory(prefix="bertless-coldshare-") as scratch:
        roots, interpreters = [], []
        for index, artifact in enumerate(artifacts):
            roots.append(unpack(artifact.path, artifact.layer, Path(scratch) / str(index)))
            interpreters.append(
                find_interpreter(artifact.python) or sys.exit(f"no CPython {artifact.python}")
            )
        shares = [ShareRuns() for _ in artifacts]
        load_before = os.getloadavg()
        order = list(range(len(artifacts)))
        for run in range(args.runs):
            random.shuffle(order)
            for i in order:
                shares[i].runs.append(
                    share_run(interpreters[i], roots[i], roots[i] / "bundle", TEXT)
                )
            print(f"run {run + 1} of {args.runs}", file=sys.stderr)
        load_after = os.getloadavg()
    print(
        f"\nq50 ms of {args.runs} runs, artifacts in random order each run; {os.cpu_count()} "
        f"CPUs, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n"
    )
    names = [
        f"{i + 1}: {Path(path).parent.name}/{Path(path).name}"
        for i, path in enumerate(args.artifacts)
    ]
    print("\n".join(names) + "\n")
    print(
        "| phase | whose | "
        + " | ".join(str(i + 1) for i in range(len(artifacts)))
        + " | ratios to 1 |"
    )
    print("|---|---|" + "---:|" * len(artifacts) + "---|")
    rows = [(p, "floor") for p in FLOOR] + [(p, "bertless") for p in OWN]
    rows += [("floor", "sum"), ("own", "sum: bertless's share"), ("total", "spawn to answer")]
    for phase, whose in rows:
        q50 = [share.quantile(phase, 0.5) for share in shares]
        ratios = ", ".join(f"{value / q50[0]:.2f}x" if q50[0] else "-" for value in q50[1:])
        print(f"| {phase} | {whose} | " + " | ".join(f"{v:,.1f}" for v in q50) + f" | {ratios} |")


if __name__ == "__main__":
    main()
