"""The endpoint engine against fixed concurrency, side by side in one run.

Three set-ups, each scoring the same texts with the same client (`score_endpoint`):

1. `bertless serve` (two workers) on this machine: fixed concurrency 1 (the seed paper's starting
   point), a sweep of fixed settings, and adaptive; rows/s and the server's CPU use (its processes'
   CPU seconds over wall time and cores). A server with a few cores stops gaining at a few
   requests in flight, so here adaptive must match the best fixed setting (goal: ≥ 0.9×).
2. The same server behind the fault proxy with the issue's faults (10% 429, 2% 503, 1% resets,
   5% answers 0.2 s late): adaptive there against adaptive without faults (goal: ≥ 0.7×).
3. A scaling STAND-IN (tests/fault_proxy.py): every request takes `--service` seconds however many
   are in flight, as on a function that gives each request its own instance, with a concurrency
   cap that answers 429 above it, as Lambda's reserved concurrency does. Its answers are zero
   vectors, not a model's: this measures the client. Fixed 1, fixed 8, fixed at the cap, adaptive
   (goal: adaptive ≥ 20× fixed 1).

    .venv/bin/python benchmarks/endpoint_batch.py [--bundle DIR] [--texts 1000] [--per 8] \
        [--scaled 20000]

Without --bundle it exports the default MiniLM bundle to a temporary folder first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import mixed_texts
from fault_proxy import Faults, StandIn, fault_proxy

from bertless.batch.client import Options
from bertless.batch.endpoint import EndpointSummary, score_endpoint
from bertless.core.cpus import available_cpus
from bertless.local.server import local_server
from bertless.platforms.limits import get_platform

SEED_TEXTS = 95_000_000  # Ganiev et al. 2021: 95 million paragraphs in 96 hours
LAMBDA_MB = 1769  # one full vCPU (platforms/aws.py), about one core of this machine
LAMBDA_CONCURRENCY = 1000
ISSUE_FAULTS = Faults(throttle=0.10, unavailable=0.02, reset=0.01, slow=0.05, slow_seconds=0.2)


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and all its children (the server's workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def run(url: str, data: Path, scratch: Path, name: str, options: Options) -> EndpointSummary:
    output = scratch / f"{name}.parquet"
    output.unlink(missing_ok=True)
    return score_endpoint(url, data, output, options=options)


def row(name: str, summary: EndpointSummary, extra: str = "") -> dict:
    retries = sum(summary.retries.values())
    print(
        f"{name:<28} {summary.scored / summary.seconds:9.1f} rows/s  "
        f"{summary.seconds:7.1f} s  requests {summary.requests:5d}  retries {retries:4d}  "
        f"peak {summary.peak_concurrency:4d}  mean {summary.mean_concurrency:6.1f}  {extra}",
        flush=True,
    )
    return {"name": name, "rate": summary.scored / summary.seconds, "summary": summary}


@contextmanager
def measured_server(bundle: Path) -> Iterator[tuple[str, callable]]:
    """The server's URL, and a function that runs a job and says the server's CPU use in it."""
    with local_server(bundle, workers=2) as url:

        def timed(job):
            before, started = cpu_seconds(url.pid), time.perf_counter()
            result = job()
            wall = time.perf_counter() - started
            used = (cpu_seconds(url.pid) - before) / (wall * available_cpus())
            return result, f"server CPU {used:5.0%}"

        yield url, timed


def on_the_server(bundle: Path, data: Path, scratch: Path, sweep: list[int], per: int) -> None:
    print(f"\n1-2. bertless serve, 2 workers, {available_cpus()} cores, {per} texts a request")
    with measured_server(bundle) as (url, timed):
        run(url, data, scratch, "warm-up", Options(concurrency=2, texts_per_request=per))
        rates, seconds_a_request = {}, 0.0
        for n in sweep:
            fixed = Options(concurrency=n, texts_per_request=per)
            summary, cpu = timed(lambda n=n, fixed=fixed: run(url, data, scratch, f"f{n}", fixed))
            rates[n] = row(f"fixed {n}", summary, cpu)["rate"]
            if n == 1:
                seconds_a_request = summary.seconds / summary.requests
        adaptive_options = Options(texts_per_request=per)
        summary, cpu = timed(lambda: run(url, data, scratch, "auto", adaptive_options))
        adaptive = row("adaptive", summary, cpu)["rate"]
        with fault_proxy(url, ISSUE_FAULTS) as (faulty, _):
            summary, cpu = timed(lambda: run(faulty, data, scratch, "faulty", adaptive_options))
            faulted = row("adaptive, issue's faults", summary, cpu)["rate"]
    best = max(rates, key=rates.get)
    print(
        f"adaptive / best fixed ({best}): {adaptive / rates[best]:.2f}   "
        f"adaptive / fixed 1: {adaptive / rates[1]:.2f}   "
        f"faulty / fault-free adaptive: {faulted / adaptive:.2f}"
    )
    on_paper(seconds_a_request, per)


def on_paper(seconds: float, texts_per_request: int) -> None:
    """The seed's 95 million texts on Lambda at 1,000 instances, from one request's duration
    here at concurrency 1 (one request on one server worker, about one core: Lambda at 1,769 MB
    has one vCPU). Memory-seconds at the platform data's price, plus the request charge."""
    pricing = get_platform("aws").pricing
    requests = SEED_TEXTS / texts_per_request
    hours = requests * seconds / LAMBDA_CONCURRENCY / 3600
    gb_seconds = requests * seconds * LAMBDA_MB / 1024
    usd = gb_seconds * pricing.per_gb_second.value
    usd += requests / 1e6 * pricing.per_million_requests.value
    print(
        f"on paper: {SEED_TEXTS:,} texts, {texts_per_request} a request, {seconds * 1e3:.0f} ms a "
        f"request: {hours:.1f} h at {LAMBDA_CONCURRENCY} Lambda instances of {LAMBDA_MB} MB, "
        f"about ${usd:,.0f} (seed: 96 h)"
    )


def on_a_scaling_stand_in(data: Path, small: Path, scratch: Path, service: float, cap: int) -> None:
    print(f"\n3. scaling stand-in: {service:g} s a request, 429 above {cap} in flight")
    info = {"task": "feature-extraction", "dimension": 384, "labels": [], "bundle_sha256": "x"}
    with fault_proxy(StandIn(info, service), Faults(cap=cap)) as (url, _):
        one = row("fixed 1 (small input)", run(url, small, scratch, "s1", Options(concurrency=1)))
        eight = row("fixed 8", run(url, data, scratch, "s8", Options(concurrency=8)))
        at_cap = row(f"fixed {cap}", run(url, data, scratch, "scap", Options(concurrency=cap)))
        adaptive = row("adaptive", run(url, data, scratch, "sauto", Options()))
    print(
        f"adaptive / fixed 1: {adaptive['rate'] / one['rate']:.1f}   "
        f"adaptive / fixed 8: {adaptive['rate'] / eight['rate']:.2f}   "
        f"adaptive / fixed {cap}: {adaptive['rate'] / at_cap['rate']:.2f}"
    )


def write(path: Path, texts: list[str]) -> Path:
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--texts", type=int, default=1000, help="rows per run on the server")
    parser.add_argument("--sweep", default="1,2,4,8,16", help="fixed settings on the server")
    parser.add_argument("--per", type=int, default=8, help="texts a request on the server")
    parser.add_argument("--stand-in-only", action="store_true", help="skip set-ups 1 and 2")
    parser.add_argument("--scaled", type=int, default=20000, help="rows per stand-in run")
    parser.add_argument("--service", type=float, default=0.5, help="stand-in seconds a request")
    parser.add_argument("--cap", type=int, default=64, help="stand-in concurrency cap")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bundle = args.bundle
        if bundle is None:
            from bertless.models.export import export

            bundle = scratch / "minilm"
            export(None, bundle)
        texts = mixed_texts(max(args.texts, args.scaled))
        data = write(scratch / "texts.parquet", texts[: args.texts])
        sweep = [int(n) for n in args.sweep.split(",")]
        if not args.stand_in_only:
            on_the_server(bundle, data, scratch, sweep, args.per)
        scaled = write(scratch / "scaled.parquet", texts[: args.scaled])
        small = write(scratch / "small.parquet", texts[: max(320, args.scaled // 20)])
        on_a_scaling_stand_in(scaled, small, scratch, args.service, args.cap)


if __name__ == "__main__":
    main()
