"""What a request costs bertless beyond the model, one source tree against another, side by side.

Each tree (`--tree NAME=PATH`, a checkout such as `git worktree add /tmp/old <commit>`) runs in a
process of its own with its `src/` first on the path. Two measures:

- per request: the tree's `Service.handle` on the same bodies (reading and validating the body,
  routing, limits, the answer's JSON), with the model replaced by a stand-in that answers token
  states at once, so the model's time and its noise are out of the figure; each round runs every
  (tree, workload) in a fresh random order and times every request on its own;
- reading a body alone: the tree's own way from body bytes to a validated request (before
  msgspec: `json.loads`, then pydantic; after: msgspec's one pass), timed the same way;
- cold (`--cold N`): N fresh interpreters per tree, taking turns, each importing
  `bertless.core.service`, building the Service from the bundle and answering a first /embed with
  the real model; the import and the first request's own time are the parts a request path's
  libraries change;
- imports (`--importtime N`): N runs per tree of `python -X importtime -c "import
  bertless.core.service"`, taking turns: the whole import, and the time of the modules of
  pydantic (and its helpers) and of msgspec, each counted once (their self times summed).

    .venv/bin/python benchmarks/request_path.py BUNDLE --tree old=/tmp/h1-old --tree new=.
        [--rounds 20] [--calls 200] [--cold 10] [--importtime 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

TEXT = "a short sentence to embed, as a search query would be"
WORKLOADS = {
    "POST /embed, 1 text": ("POST", "/embed", {"inputs": TEXT}),
    "POST /embed, 32 texts": ("POST", "/embed", {"inputs": [f"{i} {TEXT}" for i in range(32)]}),
    "POST /v1/embeddings, 1 text": ("POST", "/v1/embeddings", {"input": TEXT, "model": "m"}),
    "POST / (Inference API), 1 text": ("POST", "/", {"inputs": TEXT}),
    "POST /embed refused (422)": ("POST", "/embed", {"inputs": [TEXT, ""]}),
    "GET /health": ("GET", "/health", None),
}
# Bodies read alone, each as its route's request shape.
READS = {
    "EmbedRequest, 1 text": ("EmbedRequest", {"inputs": TEXT}),
    "EmbedRequest, 32 texts": ("EmbedRequest", {"inputs": [f"{i} {TEXT}" for i in range(32)]}),
    "EmbedRequest, 1 text and every option": (
        "EmbedRequest",
        {"inputs": TEXT, "normalize": True, "truncate": False, "dimensions": 384.0},
    ),
    "PredictRequest, 8 pairs": ("PredictRequest", {"inputs": [[TEXT, TEXT]] * 8}),
    "OpenAIEmbeddingRequest, 1 text": ("OpenAIEmbeddingRequest", {"input": TEXT, "model": "m"}),
}

WORKER = r"""
import json, sys, time
import numpy as np
from bertless.core import http, schemas
from bertless.core.service import Request, Service

service = Service.from_bundle(sys.argv[1])
workloads, reads = json.loads(sys.argv[2]), json.loads(sys.argv[3])
if hasattr(http, "decode"):  # msgspec: parsed and validated in one pass
    def read(body, kind):
        return http.decode(body, kind)
else:  # before: json.loads, then pydantic
    def read(body, kind):
        return http.validate(json.loads(body), kind)
dimension = service.predictor.manifest.dimension
states = {}


class StandIn:
    # Token states of the right shape at once: no model behind them.
    def run(self, feeds):
        shape = feeds["input_ids"].shape
        if shape not in states:
            states[shape] = np.random.default_rng(0).random((*shape, dimension), np.float32)
        return states[shape]


service.predictor._engine = StandIn()
requests = {
    name: Request(method, path, {"Content-Type": "application/json"},
                  json.dumps(body).encode() if body is not None else b"")
    for name, (method, path, body) in workloads.items()
}
for request in requests.values():  # every route's first request (decoders, caches) untimed
    service.handle(request)
bodies = {name: (json.dumps(body).encode(), getattr(schemas, kind))
          for name, (kind, body) in reads.items()}
for body, kind in bodies.values():
    read(body, kind)
print("ready", flush=True)
for line in sys.stdin:
    name, calls = line.rsplit(" ", 1)
    times = []
    if name in requests:
        request = requests[name]
        for _ in range(int(calls)):
            start = time.perf_counter_ns()
            service.handle(request)
            times.append(time.perf_counter_ns() - start)
    else:
        body, kind = bodies[name]
        for _ in range(int(calls)):
            start = time.perf_counter_ns()
            read(body, kind)
            times.append(time.perf_counter_ns() - start)
    print(json.dumps(times), flush=True)
"""

COLD = r"""
import json, sys, time
start = time.perf_counter()
from bertless.core.service import Request, Service
imported = time.perf_counter()
service = Service.from_bundle(sys.argv[1])
built = time.perf_counter()
body = json.dumps({"inputs": "a first request"}).encode()
answer = service.handle(Request("POST", "/embed", {"Content-Type": "application/json"}, body))
assert answer.status == 200, answer.body
done = time.perf_counter()
pydantic = any(name.split(".")[0] == "pydantic" for name in sys.modules)
print(json.dumps({"import": imported - start, "service": built - imported,
                  "first request": done - built, "pydantic": pydantic}))
"""


def environment(tree: Path) -> dict[str, str]:
    """The environment that puts TREE's sources before the installed bertless."""
    return {**os.environ, "PYTHONPATH": str(tree.resolve() / "src"), "PYTHONDONTWRITEBYTECODE": ""}


def per_request(trees: dict[str, Path], bundle: Path, rounds: int, calls: int, seed: int):
    """Per-request times in µs by (tree, workload)."""
    workers = {}
    for name, tree in trees.items():
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(bundle), json.dumps(WORKLOADS), json.dumps(READS)],
            env=environment(tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a log line per request, the same in every tree
            text=True,
        )
        assert worker.stdout.readline().strip() == "ready", f"{name}'s worker did not start"
        workers[name] = worker
    times = {(t, w): [] for t in trees for w in [*WORKLOADS, *READS]}
    order = list(times)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for tree, workload in order:
            worker = workers[tree]
            reads = calls * 10 if workload in READS else calls  # a read is ~20x quicker
            worker.stdin.write(f"{workload} {reads}\n")
            worker.stdin.flush()
            times[tree, workload] += [ns / 1e3 for ns in json.loads(worker.stdout.readline())]
    for worker in workers.values():
        worker.stdin.close()
        worker.wait(timeout=60)
    return times


def cold(trees: dict[str, Path], bundle: Path, runs: int) -> dict[str, list[dict]]:
    """Fresh-process cold starts, the trees taking turns."""
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(runs):
        for name, tree in trees.items():
            done = subprocess.run(
                [sys.executable, "-c", COLD, str(bundle)],
                env=environment(tree),
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


# Top-level packages whose modules' own import times are summed, by the library they belong to.
LIBRARIES = {
    "pydantic": ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"),
    "msgspec": ("msgspec",),
}


def importtimes(trees: dict[str, Path], runs: int) -> dict[str, list[dict[str, float]]]:
    """`-X importtime` of bertless.core.service in fresh processes, the trees taking turns: per
    run, the whole import and each library's modules (self times) in ms."""
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(runs):
        for name, tree in trees.items():
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import bertless.core.service"],
                env=environment(tree),
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            rows = [(int(m[1]), int(m[2]), m[3]) for m in line.finditer(done.stderr)]
            run = {
                "bertless.core.service": next(c for _, c, n in rows if n == "bertless.core.service")
            }
            for library, packages in LIBRARIES.items():
                run[library] = sum(s for s, _, n in rows if n.split(".")[0] in packages)
            results[name].append({key: us / 1e3 for key, us in run.items()})
    return results


def q(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200, help="requests per workload per round")
    parser.add_argument("--cold", type=int, default=0, help="fresh processes per tree")
    parser.add_argument("--importtime", type=int, default=0, help="-X importtime runs per tree")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    trees = {name: Path(path) for name, path in (t.split("=", 1) for t in args.tree)}
    first = next(iter(trees))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"trees: {', '.join(f'{n}={p.resolve()}' for n, p in trees.items())}\n")

    times = per_request(trees, args.bundle, args.rounds, args.calls, args.seed)
    for title, names, calls, digits in (
        ("Service.handle per request, stand-in model", WORKLOADS, args.calls, 1),
        ("reading a body alone", READS, args.calls * 10, 2),
    ):
        print(f"### {title}, µs ({args.rounds} rounds x {calls} per row)\n")
        print(f"| workload | tree | q50 | q95 | q99 | q50 {first} / q50 |")
        print("|---|---|---:|---:|---:|---:|")
        for workload in names:
            base = q(times[first, workload], 50)
            for tree in trees:
                values = times[tree, workload]
                cells = " | ".join(f"{q(values, p):.{digits}f}" for p in (50, 95, 99))
                print(f"| {workload} | {tree} | {cells} | {base / q(values, 50):.2f}x |")
        print()

    if args.cold:
        results = cold(trees, args.bundle, args.cold)
        print(f"\n### cold, ms (q50 of {args.cold} fresh processes per tree, taking turns)\n")
        print("| tree | import bertless.core.service | Service.from_bundle | first /embed "
              "| total | pydantic imported |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---|")
        for tree, runs in results.items():
            parts = [[r[k] * 1e3 for r in runs] for k in ("import", "service", "first request")]
            totals = [sum(p) for p in zip(*parts, strict=True)]
            cells = " | ".join(f"{q(p, 50):.1f}" for p in [*parts, totals])
            print(f"| {tree} | {cells} | {'yes' if runs[0]['pydantic'] else 'no'} |")
    if args.importtime:
        results = importtimes(trees, args.importtime)
        print(f"\n### -X importtime, ms (q50 of {args.importtime} runs per tree, taking turns)\n")
        keys = ["bertless.core.service", *LIBRARIES]
        print(
            f"| tree | {' | '.join(f'{k} (whole)' if '.' in k else f'{k} modules' for k in keys)} |"
        )
        print(f"|---|{'---:|' * len(keys)}")
        for tree, runs in results.items():
            print(f"| {tree} | {' | '.join(f'{q([r[k] for r in runs], 50):.1f}' for k in keys)} |")
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
