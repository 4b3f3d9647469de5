"""Serving under concurrency: `bertless serve` with and without batching across requests.

Two servers on the same bundle run side by side in one run, one with BERTLESS_BATCHING=1 (the
default: waiting requests share a model run) and one with BERTLESS_BATCHING=0 (each request runs
alone, one at a time). At 1, 8 and 32 concurrent clients, each client sends batch-1 /embed
requests (mixed texts, 3 to 200 words, or `--words N` each) on its own kept-alive connection;
the servers take turns in short rounds whose order alternates, so that whatever else the machine
does falls on both alike. Reported per server and level: throughput, q50/q95/q99 latency,
peak RSS during the burst (server process and its workers, sampled every 10 ms) and RSS at
least 30 s after the burst, with ratios to the batching-off server and to the one-client peak;
also the server's CPU time per request and the rows per model run (from its /metrics), which
say where the time went even when other processes share the CPUs and make throughput noise.

First, in process, a lone request through the batcher against the session called directly
(what a Lambda instance does), interleaved, so the cost of the batcher itself is seen apart
from HTTP. Then, in process and without HTTP, 8 and 32 threads calling `Service.handle` with
the same texts: what the HTTP layer costs the batching. Last, in process, the ceiling of
sharing: rows/s of the model alone run one text at a time against runs of 2 to 32 texts of the
same length, which no server can beat by merging requests (HTTP and JSON work per request is
not shared at all), and that rate over the no-batching server's texts/s: the most merging could
give at 8 and 32 clients, since N clients with one request in flight each never fill a run of
more than N rows.

With `--infinity PYTHON`, Infinity (`infinity-emb`, dynamic batching, ONNX engine on CPU, the
same MiniLM from the local checkpoint, in fp32, or in int8 when the bundle is int8: see
benchmarks/infinity_peer.py) takes its turn
in the same rounds, each client sending batch-1 `POST /embeddings` ({"input": [text]}), and gets
rows in the same table (no rows per model run: it exports none). It cannot share this project's
environment (0.0.78 pins numpy<2, transformers<5 and sentence-transformers<4), so PYTHON is the
interpreter of a virtual environment of its own, outside the repository, made with the CPU torch
this project pins (so that nothing pulls a CUDA torch):

    python3 -m venv /tmp/infinity-venv
    /tmp/infinity-venv/bin/pip install torch==2.13.0
    /tmp/infinity-venv/bin/pip install "infinity-emb[server,optimum,torch]==0.0.78"

    .venv/bin/python benchmarks/concurrency.py [--bundle DIR] [--requests 800] [--rest 30]
        [--rounds 4] [--words N] [--infinity /tmp/infinity-venv/bin/python]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, redirect_stderr, suppress
from pathlib import Path

import numpy as np
import psutil
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles
from infinity_peer import NAME, infinity_server

from bertless import Predictor
from bertless.core.batcher import Batcher
from bertless.core.service import Request, Service
from bertless.local.server import ServerURL, local_server

LEVELS = (1, 8, 32)
HEADERS = {"Content-Type": "application/json"}
INFINITY = "Infinity"


def request(server: str, text: str) -> tuple[str, str]:
    """The route and body of one batch-1 request to SERVER (bertless's /embed or Infinity's)."""
    if server == INFINITY:
        return "/embeddings", json.dumps({"input": [text], "model": NAME})
    return "/embed", json.dumps({"inputs": text, "truncate": True})


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children (gunicorn's arbiter and workers)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


class PeakSampler:
    """The highest RSS of a server while a block runs, sampled every 10 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def client(url: str, texts: list[str], server: str = "") -> list[float]:
    """Send each text as one batch-1 request on one kept-alive connection."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    times = []
    for text in texts:
        route, body = request(server, text)
        started = time.perf_counter()
        connection.request("POST", route, body, HEADERS)
        answer = connection.getresponse()
        answer.read()
        times.append(time.perf_counter() - started)
        if answer.status != 200:
            raise SystemExit(f"{server or 'bertless'} {route} answered {answer.status} under load")
    connection.close()
    return times


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its children."""
    total = 0.0
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def model_runs(url: str, server: str) -> tuple[float, float]:
    """The server's model runs so far and the rows they held (its /metrics histogram); none
    for Infinity, which does not export them."""
    if server == INFINITY:
        return 0.0, 0.0
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    count, rows = (
        float(re.search(rf"^bertless_batch_size_{name} (\S+)$", text, re.M)[1])
        for name in ("count", "sum")
    )
    return count, rows


def burst(url: ServerURL, clients: int, texts: list[str], server: str) -> dict:
    """All clients at once, each with its share of TEXTS: their latencies, the wall time, the
    peak RSS, and the server's CPU seconds, model runs and rows meanwhile."""
    shares = [texts[i::clients] for i in range(clients)]
    cpu, (runs, rows) = cpu_seconds(url.pid), model_runs(url, server)
    with PeakSampler(url.pid) as sampler, ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        answers = pool.map(lambda s: client(url, s, server), shares)
        times = [t for share in answers for t in share]
        wall = time.perf_counter() - started
    runs_after, rows_after = model_runs(url, server)
    return {
        "times": times,
        "wall": wall,
        "peak": sampler.peak,
        "cpu": cpu_seconds(url.pid) - cpu,
        "runs": runs_after - runs,
        "rows": rows_after - rows,
    }


def combined(bursts: list[dict]) -> dict[str, float]:
    """One server's rounds at one level as one figure each: throughput, latency quantiles, peak
    RSS, CPU ms per request and rows per model run."""
    times = [t for b in bursts for t in b["times"]]
    return {
        "throughput": len(times) / sum(b["wall"] for b in bursts),
        **quantiles(times),
        "peak": max(b["peak"] for b in bursts),
        "cpu_ms": sum(b["cpu"] for b in bursts) / len(times) * 1e3,
        "rows": sum(b["rows"] for b in bursts) / max(1.0, sum(b["runs"] for b in bursts))
        or float("nan"),
    }


def sharing_ceiling(bundle: str, texts: list[str], rounds: int = 5) -> dict[int, float]:
    """Rows/s of the model alone, one text per run and 2 to 32 per run (texts sorted by length,
    so runs are hardly padded), median of interleaved rounds: what merging can gain at most."""
    predictor = Predictor.load(bundle)
    tokenizer = Tokenizer.from_file(str(Path(bundle) / "tokenizer.json"))
    encodings = sorted(tokenizer.encode_batch(texts), key=lambda e: len(e.ids))
    for encoding in encodings[:20]:
        predictor.runner([encoding])
    rates: dict[int, list[float]] = {size: [] for size in (1, 2, 4, 8, 16, 32)}
    for _ in range(rounds):
        for size, values in rates.items():
            started = time.perf_counter()
            for start in range(0, len(encodings), size):
                predictor.runner(encodings[start : start + size])
            values.append(len(encodings) / (time.perf_counter() - started))
    return {size: float(np.median(values)) for size, values in rates.items()}


def without_http(bundle: str, texts: list[str], clients: int) -> tuple[float, float, float]:
    """Requests/s, rows per model run and the share of the time the model was running, with
    CLIENTS threads calling `Service.handle` in process (no HTTP server): against the server's
    figures, what the HTTP layer costs the batching."""
    service = Service.from_bundle(bundle)
    assert service.batcher is not None
    runs: list[float] = []  # the seconds of each model run
    run = service.batcher._runner

    def timed(encodings: list) -> np.ndarray:
        started = time.perf_counter()
        rows = run(encodings)
        runs.append(time.perf_counter() - started)
        return rows

    def call(text: str) -> None:
        body = json.dumps({"inputs": text}).encode()
        headers = {"Content-Type": "application/json"}
        assert service.handle(Request("POST", "/embed", headers, body)).status == 200

    service.batcher._runner = timed
    with redirect_stderr(io.StringIO()):  # the request log lines
        for text in texts[:20]:
            call(text)
        runs.clear()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(call, texts))
        wall = time.perf_counter() - started
    return len(texts) / wall, len(texts) / len(runs), sum(runs) / wall


def batcher_overhead(bundle: str, texts: list[str]) -> dict[str, dict[str, float]]:
    """A lone request's model run, direct and through a Batcher, interleaved in process."""
    predictor = Predictor.load(bundle)
    direct = predictor.runner
    through = Batcher(direct, 32, 512, merge=True).run
    times: dict[str, list[float]] = {"direct": [], "batcher": []}
    rng = random.Random(0)
    for text in texts[:20]:
        predictor.encode([text], truncate=True)
    for text in texts:
        for name in rng.sample(list(times), 2):
            predictor.runner = direct if name == "direct" else through
            started = time.perf_counter()
            predictor.encode([text], truncate=True)
            times[name].append(time.perf_counter() - started)
    return {name: quantiles(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", help="default: export the built-in model to a temp dir")
    parser.add_argument("--requests", type=int, default=800, help="per level and server")
    parser.add_argument("--rest", type=float, default=30, help="seconds idle before RSS after")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per level")
    parser.add_argument("--words", type=int, help="texts of exactly this many words, not mixed")
    parser.add_argument(
        "--infinity", type=Path, metavar="PYTHON", help="Infinity's environment's interpreter"
    )
    args = parser.parse_args()
    bundle = args.bundle
    if not bundle:
        from bertless.models.export import export

        bundle = str(Path(tempfile.mkdtemp()) / "minilm")
        export(None, bundle)
    # An int8 bundle meets Infinity serving an int8 export too (see infinity_peer).
    int8 = json.loads((Path(bundle) / "bundle.json").read_text()).get("precision") == "int8"
    texts = mixed_texts(args.requests)
    if args.words:
        texts = [" ".join((t.split() * args.words)[: args.words]) for t in texts]
    load_before = os.getloadavg()[0]

    overhead = batcher_overhead(bundle, mixed_texts(500, seed=1))
    print("\nIn process, one request at a time: Predictor.encode of one text (500, interleaved)\n")
    print("| model run | q50 ms | q95 ms | q99 ms | q50 / direct |")
    print("|---|---|---|---|---|")
    for name, q in overhead.items():
        ratio = q["q50"] / overhead["direct"]["q50"]
        print(f"| {name} | {q['q50']:.2f} | {q['q95']:.2f} | {q['q99']:.2f} | {ratio:.3f} |")

    servers = {"batching": "1", "no batching": "0"}
    results: dict[tuple[str, int], dict[str, float]] = {}
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(local_server(Path(bundle), env={"BERTLESS_BATCHING": flag}))
            for name, flag in servers.items()
        }
        if args.infinity:
            from bertless.models.checkpoint import default_model_path

            urls[INFINITY] = stack.enter_context(
                infinity_server(args.infinity, Path(default_model_path()), quantized=int8)
            )
        for name, url in urls.items():  # warm-up, one client
            client(url, mixed_texts(20, seed=2), name)
        started_rss = {name: rss_mb(url.pid) for name, url in urls.items()}
        for clients in LEVELS:
            # Short rounds, the servers' order alternating, so that what else the machine does
            # falls on both alike.
            bursts: dict[str, list[dict]] = {name: [] for name in urls}
            for round_ in range(args.rounds):
                names = list(urls) if round_ % 2 == 0 else list(urls)[::-1]
                for name in names:
                    share = texts[round_ :: args.rounds]
                    bursts[name].append(burst(urls[name], clients, share, name))
            for name, each in bursts.items():
                results[name, clients] = combined(each)
            time.sleep(args.rest)
            for name, url in urls.items():
                results[name, clients]["after"] = rss_mb(url.pid)

    print(
        f"\n{args.requests} batch-1 /embed requests per level and server in {args.rounds} "
        "rounds, the servers' order alternating, "
        f"{f'{args.words} words each' if args.words else 'mixed texts of 3 to 200 words'}, "
        f"bertless serve{' and Infinity' if args.infinity else ''} ({psutil.cpu_count()} CPUs, "
        f"{'int8' if int8 else 'fp32'}); "
        "1-minute load "
        f"average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; RSS after warm-up: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in started_rss.items())
        + f"; 'after' is {args.rest:.0f} s after each level's bursts\n"
    )
    print(
        "| server | clients | texts/s | × no batching | q50 ms | q95 ms | q99 ms | peak RSS MB "
        "| peak / 1-client peak | RSS after MB | after / 1-client peak | server CPU ms / request "
        "| rows / model run |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for clients in LEVELS:
        for name in urls:
            r = results[name, clients]
            one = results[name, 1]["peak"]
            speedup = r["throughput"] / results["no batching", clients]["throughput"]
            print(
                f"| {name} | {clients} | {r['throughput']:.1f} | {speedup:.2f} | {r['q50']:.1f} "
                f"| {r['q95']:.1f} | {r['q99']:.1f} | {r['peak']:.0f} | {r['peak'] / one:.2f} "
                f"| {r['after']:.0f} | {r['after'] / one:.2f} | {r['cpu_ms']:.2f} "
                f"| {r['rows']:.1f} |".replace("| nan |", "| – |")
            )
    if INFINITY in urls:
        pairs = ", ".join(
            f"{n} clients "
            f"{results['batching', n]['throughput'] / results[INFINITY, n]['throughput']:.2f}"
            for n in LEVELS
        )
        print(f"\nbatching / Infinity, texts/s: {pairs}")

    print(
        "\nWithout HTTP, in process: threads calling Service.handle with the same texts "
        "(batching on)\n"
    )
    print("| threads | requests/s | × the batching server | rows / model run | model busy |")
    print("|---|---|---|---|---|")
    for clients in LEVELS[1:]:
        rate, rows, busy = without_http(bundle, texts, clients)
        ratio = rate / results["batching", clients]["throughput"]
        print(f"| {clients} | {rate:.1f} | {ratio:.2f} | {rows:.1f} | {busy:.2f} |")

    ceiling = sharing_ceiling(bundle, texts[:256])
    print(
        "\nThe ceiling of sharing, in process: rows/s of the model alone by rows per run "
        f"(256 of the same texts, median of 5 interleaved rounds; load {os.getloadavg()[0]:.2f})\n"
    )
    unbatched = {n: results["no batching", n]["throughput"] for n in LEVELS}
    print("| rows per run | rows/s | x one per run | x the no-batching server at 8 / 32 clients |")
    print("|---|---|---|---|")
    for size, rate in ceiling.items():
        print(
            f"| {size} | {rate:.1f} | {rate / ceiling[1]:.2f} "
            f"| {rate / unbatched[8]:.2f} / {rate / unbatched[32]:.2f} |"
        )
    # N clients with one request each in flight never put more than N rows in a run.
    print(
        f"\nSo at 8 clients no merging can serve more than {ceiling[8] / unbatched[8]:.2f}x the "
        "no-batching server's texts/s (the model alone in runs of 8, before any HTTP, JSON or "
        "tokenizing); at 32 clients no more than "
        f"{ceiling[32] / unbatched[32]:.2f}x."
    )


if __name__ == "__main__":
    main()
