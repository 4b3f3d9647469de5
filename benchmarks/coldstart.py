"""Cold start: bertless's AWS artifact under awslambdaric vs sentence-transformers on PyTorch.

bertless: the default model's AWS artifact (Python 3.12 Lambda layout), unzipped, started by the
real Lambda runtime interface client in a clean `python3.12 -I -S -B` against bertless's local
Runtime API stand-in (not Lambda: no VM, no code download), timed from process start to the
first invocation's answer (init + first invocation, the phases Lambda reports). The same
artifact runs a second time with its shipped `.pyc` deleted, to show what they save: with `-B`, as
on Lambda's read-only /var/task, that copy compiles every module it imports on every cold start.
sentence-transformers: the same model folder in a fresh `python -I` of this environment
(PyTorch CPU): import, SentenceTransformer(...) load, first encode, timed from process start.

Both on the full machine (no CPU throttle, each library picks its own threads), taking turns
run by run so a noisy neighbour slows both alike; the table gives medians and the ratio.

Whose time it is (bertless.bench.coldshare): in the same rounds, the artifact's own interpreter
runs what the handler module does at init, with the same files on its path and no runtime client,
stamping each step: the floor any program serving this model with these libraries pays
(interpreter, imports of numpy, onnxruntime, tokenizers and msgspec, or pydantic in an artifact
from before msgspec, the tokenizer's parse, the onnxruntime session, the model run) and
bertless's own share (its imports, the bundle check, building the service, the first request
outside the model run), with quantiles over the runs and the modules its imports spend on
(`-X importtime`, one more run).

With `--image LAYOUT` (an OCI image layout from `bertless package aws --format image`), a third
arm: the image's layers unpacked in order into a root filesystem, its `/var/task` started the same
way. An artifact with a Lambda layer runs with the layer's files unpacked into the task root.

With `--also ZIP` (repeatable), more AWS artifacts (a static student's, say) start the same way
in the same runs, each with its ratio to the first artifact.

    .venv/bin/python benchmarks/coldstart.py [--runs 5] [--artifact ZIP] [--image LAYOUT]
        [--also ZIP ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bertless.bench.coldshare import FLOOR, OWN, ShareRuns, profile_run, share_run
from bertless.bench.latency import function_url_event
from bertless.local.execution_environment import (
    ExecutionEnvironment,
    Launch,
    artifact_launch,
)
from bertless.models.checkpoint import default_model_path
from bertless.packaging.layer import unpack
from bertless.packaging.package import package, read_artifact

TEXT = "bertless starts a model on a function in a fraction of the time."
ST_PROBE = r"""
import json, sys, time
began = time.time()
from sentence_transformers import SentenceTransformer
imported = time.time()
model = SentenceTransformer(sys.argv[1], device="cpu")
loaded = time.time()
model.encode([sys.argv[2]], normalize_embeddings=True)
print(json.dumps({"began": began, "imported": imported, "loaded": loaded,
                  "answered": time.time()}))
"""


def bertless_run(launch: Launch) -> dict[str, float]:
    body = json.dumps({"inputs": [TEXT]}).encode()
    with ExecutionEnvironment(launch) as environment:
        environment.start()
        init = environment.wait_ready()
        invocation = environment.invoke(function_url_event("POST", "/embed", body))
        assert invocation.json()["statusCode"] == 200, invocation.body[:300]
    first = (invocation.answered - invocation.sent) * 1e3
    return {"init": init, "first answer": first, "total": init + first}


def st_run(model: str) -> dict[str, float]:
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, "-I", "-c", ST_PROBE, model, TEXT],
        capture_output=True,
        text=True,
        check=True,
    )
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "interpreter start": (marks["began"] - spawned) * 1e3,
        "import": (marks["imported"] - marks["began"]) * 1e3,
        "load": (marks["loaded"] - marks["imported"]) * 1e3,
        "first answer": (marks["answered"] - marks["loaded"]) * 1e3,
        "total": (marks["answered"] - spawned) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--artifact", help="an AWS artifact zip (default: package build/minilm)")
    parser.add_argument("--image", help="an OCI image layout of the same bundle, to compare")
    parser.add_argument(
        "--also", action="append", default=[], metavar="ZIP", help="another AWS artifact to start"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bertless-coldstart-") as scratch:
        compare(args, Path(scratch))


def compare(args: argparse.Namespace, scratch: Path) -> None:
    if args.artifact:
        artifact = read_artifact(Path(args.artifact))
    else:
        bundle = Path("build/minilm")
        if not bundle.is_dir():
            from bertless.models.export import export

            export(None, scratch / "minilm")
            bundle = scratch / "minilm"
        artifact = package("aws", bundle, scratch / "artifact", prove=False)
    root = unpack(artifact.path, artifact.layer, scratch / "task")
    source_only = scratch / "task-without-pyc"
    shutil.copytree(root, source_only, ignore=shutil.ignore_patterns("__pycache__"))
    launch = artifact_launch(artifact, root)
    model = str(default_model_path())
    others = [read_artifact(Path(zip_)) for zip_ in args.also]
    other_launches = [
        dataclasses.replace(
            launch, task_root=unpack(a.path, a.layer, scratch / f"also-{i}"), handler=a.entry_point
        )
        for i, a in enumerate(others)
    ]
    other_runs: list[list[dict[str, float]]] = [[] for _ in others]
    share = ShareRuns()
    load_before = os.getloadavg()
    bertless_runs, source_runs, st_runs, image_runs = [], [], [], []
    image_launch = None
    if args.image:
        image_root = unpack_image(Path(args.image), scratch)
        image_launch = dataclasses.replace(launch, task_root=image_root)
    for run in range(args.runs):
        bertless_runs.append(bertless_run(launch))
        if image_launch is not None:
            image_runs.append(bertless_run(image_launch))
        source_runs.append(bertless_run(dataclasses.replace(launch, task_root=source_only)))
        st_runs.append(st_run(model))
        share.runs.append(share_run(launch.interpreter, root, root / "bundle", TEXT))
        for runs, other_launch in zip(other_runs, other_launches, strict=True):
            runs.append(bertless_run(other_launch))
        print(
            f"run {run + 1}: bertless {bertless_runs[-1]['total']:.0f} ms, without its .pyc "
            f"{source_runs[-1]['total']:.0f} ms, "
            f"sentence-transformers {st_runs[-1]['total']:.0f} ms",
            file=sys.stderr,
        )
    load_after = os.getloadavg()
    share.modules.extend(profile_run(launch.interpreter, root, root / "bundle", TEXT))
    print_share(share, bertless_runs, st_runs)

    def median(runs: list[dict[str, float]], phase: str) -> float:
        return statistics.median(r[phase] for r in runs)

    s_total = median(st_runs, "total")
    print(
        f"\nCold start to the first answer, median of {args.runs} interleaved runs; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; artifact {artifact.path.name} "
        f"({artifact.zipped_bytes / 2**20:.0f} MB zipped)\n"
    )
    print("| | phases (median ms) | total ms | vs sentence-transformers |")
    print("|---|---|---:|---:|")
    arms = [("", bertless_runs), (" without its .pyc", source_runs)]
    if image_runs:
        arms.insert(1, (" as an OCI image (layers unpacked)", image_runs))
    for name, runs in arms:
        phases = ", ".join(f"{p} {median(runs, p):,.0f}" for p in ("init", "first answer"))
        total = median(runs, "total")
        print(
            f"| bertless AWS artifact{name}, awslambdaric (python{artifact.python} -I -S -B) | "
            f"{phases} | {total:,.0f} | {total / s_total:.3f}x |"
        )
    phases = ", ".join(
        f"{p} {median(st_runs, p):,.0f}"
        for p in ("interpreter start", "import", "load", "first answer")
    )
    print(
        f"| sentence-transformers + PyTorch (python{sys.version_info[0]}.{sys.version_info[1]} "
        f"-I) | {phases} | {s_total:,.0f} | 1.00x |"
    )
    first = median(bertless_runs, "total")
    for other, runs in zip(others, other_runs, strict=True):
        phases = ", ".join(f"{p} {median(runs, p):,.0f}" for p in ("init", "first answer"))
        total = median(runs, "total")
        print(
            f"| {other.path.name} ({other.zipped_bytes / 2**20:.1f} MB zipped) | {phases} | "
            f"{total:,.0f} | {total / s_total:.3f}x; {total / first:.2f}x the first artifact |"
        )


def print_share(
    share: ShareRuns, lambda_runs: list[dict[str, float]], st_runs: list[dict[str, float]]
) -> None:
    """The floor and bertless's own share of the probe's cold starts, phase by phase, each also
    as a fraction of sentence-transformers' median cold start: what a phase costs of the goal."""
    total = share.quantile("total", 0.5)
    st_total = statistics.median(r["total"] for r in st_runs)
    print(
        f"\nWhose time a cold start is: {len(share.runs)} fresh runs of the artifact's interpreter "
        "doing what its handler module does at init, then one /embed (no runtime client)\n"
    )
    print(
        "| phase | whose | q50 ms | q90 ms | max ms | of the total (q50) | "
        f"of sentence-transformers' {st_total:,.0f} ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = [(p, "floor") for p in FLOOR] + [(p, "bertless") for p in OWN]
    rows += [("floor", "sum"), ("own", "sum: bertless's share"), ("total", "spawn to answer")]
    for phase, whose in rows:
        q50, q90, worst = (share.quantile(phase, q) for q in (0.5, 0.9, 1.0))
        print(
            f"| {phase} | {whose} | {q50:,.1f} | {q90:,.1f} | {worst:,.1f} | {q50 / total:.1%} "
            f"| {q50 / st_total:.4f}x |"
        )
    own = share.quantile("own", 0.5)
    lambda_total = statistics.median(r["total"] for r in lambda_runs)
    print(
        f"\nbertless's own share: {own:,.0f} ms (q50), {own / total:.1%} of this probe's cold "
        f"start ({total:,.0f} ms) and {own / lambda_total:.1%} of the artifact's under "
        f"awslambdaric ({lambda_total:,.0f} ms); its floor alone is "
        f"{share.quantile('floor', 0.5) / st_total:.3f}x sentence-transformers' {st_total:,.0f} "
        f"ms, the awslambdaric cold start {lambda_total / st_total:.3f}x."
    )
    modules = ", ".join(f"{name} {ms:.1f}" for name, ms in share.modules)
    print(f"bertless's imports by module, self ms (-X importtime, one run): {modules}")


def unpack_image(layout: Path, scratch: Path) -> Path:
    """The image's layers extracted in order into a root filesystem; its task root."""
    import gzip
    import io
    import tarfile

    from bertless.packaging.oci import read_layout

    rootfs = scratch / "rootfs"
    for layer in read_layout(layout).layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
            tar.extractall(rootfs, filter="tar")
    return rootfs / "var" / "task"


if __name__ == "__main__":
    main()
