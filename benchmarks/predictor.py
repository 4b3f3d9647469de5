"""bertless's Predictor against its peers, each alone in a fresh process under a function's CPU.

A function instance answers one request at a time on the CPU share its memory size buys. So each
engine (benchmarks/engines.py: raw onnxruntime + tokenizers, bertless, fastembed on the same int8
file, sentence-transformers' ONNX backend on its own O3 and qint8 exports, sentence-transformers
on PyTorch) runs at its own defaults in its own process, under `bench`'s cgroup CFS quota for the
memory size given (`bertless.bench.cpu`; where no cgroup can be written, pinned to one core with
taskset, and the report says so). In each of several rounds the engines run one after another in
a fresh random order, so that a noisy neighbour (other processes on the machine) lands on each of
them alike across rounds. A process loads its engine (timed: import + load + first answer, the
part of a cold start after the interpreter is up), answers batch-1 calls one at a time, then
encodes every text in one call with batch size 32 (bulk); its peak RSS is read from VmHWM.
Cosine: each engine's bulk vectors against sentence-transformers on PyTorch, on the same texts.

    .venv/bin/python benchmarks/predictor.py [--texts 1000] [--batch1 300] [--rounds 3]
        [--cloud aws --memory 1769] [--engines A,B,...] [--bundle NAME=PATH]... [--work DIR]

`--bundle NAME=PATH` (repeatable) adds any bertless bundle as one more engine, `bertless-NAME`,
run through `Predictor` like the built-in ones (a static or BiLSTM student, another export).
An engine name may carry environment variables for its process: `bertless-int8[BERTLESS_SPIN=1]`.
`--work DIR` keeps the exported bundles and peer files there and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import quantiles
from engines import prepare_fastembed, prepare_st

HERE = Path(__file__).parent
REFERENCE = "sentence-transformers"
# raw-fp32 and bertless-fp32 are there too, through --engines.
DEFAULT_ENGINES = (
    "raw-int8",
    "bertless-int8",
    "bertless-int8[BERTLESS_SPIN=1]",
    "bertless-int8-fast",
    "fastembed",
    "st-onnx-O3",
    "st-onnx-qint8",
    REFERENCE,
)
BUILT_IN = {"fp32": None, "int8": "int8", "int8-fast": "int8-fast"}  # bundle: --quantize
# What counts as the same quality as PyTorch (issue 21): cosine min and mean on the same texts.
PARITY_MIN, PARITY_MEAN = 0.975, 0.99


def prepare(work: Path, extra: dict[str, str]) -> dict[str, str]:
    """Every file the engines read, made once under WORK and reused when already there."""
    from bertless.models.checkpoint import default_model_path
    from bertless.models.export import export

    checkpoint = default_model_path()
    paths = {"checkpoint": str(checkpoint)}
    for name, quantize in BUILT_IN.items():
        bundle = work / name
        if not (bundle / "bundle.json").is_file():
            export(None, bundle, quantize=quantize)
        paths[name] = str(bundle)
    if not (work / "fastembed" / "model.onnx").is_file():
        prepare_fastembed(work / "int8", checkpoint, work / "fastembed")
    paths["fastembed"] = str(work / "fastembed")
    if not (work / "st" / "onnx" / "model_qint8_avx512_vnni.onnx").is_file():
        prepare_st(checkpoint, work / "st")
    paths["st"] = str(work / "st")
    return paths | extra


def parse_engine(spec: str) -> tuple[str, dict[str, str]]:
    """`name[VAR=VALUE,...]` -> the engine and the environment variables of its process."""
    match = re.fullmatch(r"([^\[\]]+)(?:\[(.*)\])?", spec)
    if not match:
        raise SystemExit(f"--engines: {spec!r} is not NAME or NAME[VAR=VALUE,...].")
    env = dict(item.split("=", 1) for item in (match.group(2) or "").split(",") if "=" in item)
    return match.group(1), env


def cpu_limit(cloud: str, memory: int):
    """The cgroup quota for the memory size, or None (then taskset pins to one core)."""
    from bertless.bench.cpu import CpuLimit
    from bertless.platforms import limits

    vcpus = limits.vcpus_for_memory(cloud, memory)
    return vcpus, CpuLimit.create(min(vcpus, os.cpu_count() or 1))


def run_one(spec: str, paths: dict, args, limit, threads: int, out: Path) -> dict:
    """One engine in a fresh process under the CPU share; what engines.measure returned."""
    engine, env = parse_engine(spec)
    # PyTorch at batch 1 takes about half a second a call under a 1-CPU quota: fewer calls.
    batch1 = min(args.batch1, 50) if engine == REFERENCE else args.batch1
    job = {"engine": engine, "paths": paths, "texts": args.texts, "batch1": batch1}
    job["out"] = str(out)
    environ = os.environ | env
    # bertless sizes its threads from the quota it sees (core.cpus); this machine's cgroup is not
    # the one the process reads, so it is told the count it would read, as `bertless bench` does.
    if engine.startswith("bertless-") and "BERTLESS_THREADS" not in env:
        environ["BERTLESS_THREADS"] = str(threads)
    wrapper = limit.wrapper() if limit else ("taskset", "-c", "0")
    command = [*wrapper, sys.executable, str(HERE / "engines.py"), json.dumps(job)]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cosines(vectors: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Each engine's cosine to PyTorch, min and mean; NaN when PyTorch was not among the engines."""
    if REFERENCE not in vectors:
        return {spec: (float("nan"), float("nan")) for spec in vectors}
    reference = vectors[REFERENCE]
    found = {}
    for spec, ours in vectors.items():
        scores = (ours * reference).sum(1) / (
            np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
        )
        found[spec] = (float(scores.min()), float(scores.mean()))
    return found


def bundle_arg(value: str) -> tuple[str, str]:
    """NAME=PATH from the command line, the bundle checked to exist before anything runs."""
    name, _, path = value.partition("=")
    if not name or not path or name in BUILT_IN:
        raise SystemExit(f"--bundle {value}: give NAME=PATH, NAME none of {', '.join(BUILT_IN)}.")
    if not (Path(path) / "bundle.json").is_file():
        raise SystemExit(f"--bundle {value}: {path} has no bundle.json; give a bundle directory.")
    return name, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=1000, help="texts in bulk (default 1000)")
    parser.add_argument("--batch1", type=int, default=300, help="batch-1 calls per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cloud", default="aws")
    parser.add_argument("--memory", type=int, default=1769, help="MB; sets the CPU share")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES))
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--work", type=Path, help="keep and reuse exports here")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args()
    extra = dict(bundle_arg(value) for value in args.bundle)
    # Commas part engines, except inside an engine's [VAR=VALUE,...].
    specs = re.findall(r"[^,\[]+(?:\[[^\]]*\])?", args.engines) + [f"bertless-{n}" for n in extra]

    work = args.work or Path(tempfile.mkdtemp(prefix="bertless-bench-"))
    paths = prepare(work, extra)
    vcpus, limit = cpu_limit(args.cloud, args.memory)
    threads = max(1, round(vcpus)) if limit else 1
    load = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {s: [] for s in specs}
    vectors_dir = Path(tempfile.mkdtemp(prefix="bertless-vectors-"))
    try:
        for round_ in range(args.rounds):
            for spec in random.Random(round_).sample(specs, len(specs)):
                out = vectors_dir / f"{specs.index(spec)}.npy"
                runs[spec].append(run_one(spec, paths, args, limit, threads, out))
                print(f"round {round_ + 1}: {spec} done", file=sys.stderr)
            load.append(os.getloadavg()[0])
    finally:
        if limit:
            limit.close()
    vectors = {s: np.load(vectors_dir / f"{specs.index(s)}.npy") for s in specs}
    shutil.rmtree(vectors_dir)
    how = (
        f"{limit.describe()} ({limit.cpus:.2f} CPU)"
        if limit
        else "no writable cgroup: pinned to one core with taskset"
    )
    summary = summarize(runs, cosines(vectors), args)
    report(summary, args, vcpus, threads, how, load)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs, "load": load}))


def summarize(runs: dict[str, list[dict]], cos: dict, args) -> dict[str, dict]:
    """Per engine: batch-1 and bulk texts/s per round and their median, latency quantiles over
    every call of every round, cosine, load time and peak RSS (medians)."""
    summary = {}
    for spec, rounds in runs.items():
        b1 = [len(r["calls"]) / sum(r["calls"]) for r in rounds]
        bulk = [args.texts / r["bulk_s"] for r in rounds]
        summary[spec] = {
            "batch1": b1,
            "bulk": bulk,
            "latency": quantiles([c for r in rounds for c in r["calls"]]),
            "cosine": cos[spec],
            "load_s": statistics.median(r["load_s"] for r in rounds),
            "peak_mb": statistics.median(r["peak_mb"] for r in rounds),
        }
    return summary


def ratio(summary: dict, spec: str, base: str | None, key: str) -> str:
    """Median over rounds of the per-round ratio (the rounds share a machine's load)."""
    if not base or base not in summary:
        return "–"
    pairs = zip(summary[spec][key], summary[base][key], strict=True)
    return f"{statistics.median(a / b for a, b in pairs):.2f}"


def best_peer(summary: dict) -> str | None:
    """The fastest engine in bulk that is not bertless's and keeps parity with PyTorch."""
    peers = [
        s
        for s, v in summary.items()
        if not s.startswith("bertless")
        and v["cosine"][0] >= PARITY_MIN
        and v["cosine"][1] >= PARITY_MEAN
    ]
    return max(peers, key=lambda s: statistics.median(summary[s]["bulk"]), default=None)


def report(summary: dict, args, vcpus: float, threads: int, how: str, load: list) -> None:
    peer = best_peer(summary)
    print(
        f"\n{args.cloud} {args.memory} MB = {vcpus:.2f} vCPU: {how}; bertless told "
        f"BERTLESS_THREADS={threads}, peers at their defaults. {args.rounds} rounds, engines in a "
        f"fresh random order each, each in its own process: {args.batch1} batch-1 calls one at a "
        f"time, then {args.texts} mixed-length texts (3-200 words) in one call at batch 32. "
        f"Load average {' → '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} cores. "
        f"Best peer in bulk at parity (cosine min ≥ {PARITY_MIN}, mean ≥ {PARITY_MEAN}): {peer}.\n"
    )
    print(
        "| engine | batch-1 texts/s (rounds) | b=1 vs raw-int8 | b=1 vs fastembed "
        "| b=1 q50/q95/q99 ms | bulk texts/s (rounds) | bulk vs best peer "
        "| cosine to PyTorch min / mean | load s | peak RSS MB |"
    )
    print("|---" * 10 + "|")
    for spec, s in summary.items():
        b1 = " / ".join(f"{x:.0f}" for x in s["batch1"])
        bulk = " / ".join(f"{x:.0f}" for x in s["bulk"])
        lat = "/".join(f"{s['latency'][q]:.1f}" for q in ("q50", "q95", "q99"))
        print(
            f"| {spec} | {b1} | {ratio(summary, spec, 'raw-int8', 'batch1')} "
            f"| {ratio(summary, spec, 'fastembed', 'batch1')} | {lat} | {bulk} "
            f"| {ratio(summary, spec, peer, 'bulk')} "
            f"| {s['cosine'][0]:.3f} / {s['cosine'][1]:.3f} | {s['load_s']:.2f} "
            f"| {s['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
