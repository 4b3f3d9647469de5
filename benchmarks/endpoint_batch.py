"""The endpoint engine against fixed concurrency, side by side in one run, in rounds.

Two set-ups, each scoring the same texts with the same client (`score_endpoint`). Every arm of a
set-up runs once per round, in an order rotated from round to round, so that the load of a shared
machine falls on all arms alike; each arm's rows/s is given as the median over the rounds with
its range, and its answered requests' latency as q50/q95/q99 over all rounds.

1. `bertless serve` (two workers) on this machine: fixed concurrency 1 (the seed paper's starting
   point), a sweep of fixed settings, adaptive, and adaptive behind the fault proxy with the
   issue's faults (10% 429, 2% 503, 1% resets, 5% answers 0.2 s late) beside adaptive behind the
   same proxy without faults; rows/s and the server's CPU use. A server with a few cores stops
   gaining at a few requests in flight, so adaptive must match the best fixed setting (goal
   ≥ 0.9x) and keep ≥ 0.7x of its fault-free rate under the faults.
2. A scaling STAND-IN (tests/fault_proxy.py): every request takes `--service` seconds however many
   are in flight, as on a function that gives each request its own instance, with a concurrency
   cap that answers 429 above it, as Lambda's reserved concurrency does. Its answers are zero
   vectors, not a model's: this measures the client. Fixed 1 and 8 (on a sixtieth of the rows:
   a fixed setting has no ramp, so its rate does not depend on the length of the run), half the
   cap and the cap, and adaptive (goals: ≥ 0.9x the best fixed, ≥ 20x fixed 1). The default run
   is about 60 round trips at the cap: adaptive spends its first few finding the cap (from 4,
   doubling each round trip), which a fixed setting at the cap knows beforehand, so a run of 10
   round trips holds at most about 0.7x of it whatever the limiter does after
   (benchmarks/limiter_model.py); batch jobs last far longer.

The proxy runs in its own process, as an endpoint would, so it does not share the client's GIL.

    .venv/bin/python benchmarks/endpoint_batch.py [--bundle DIR] [--rounds 3] [--texts 400] \
        [--per 8] [--scaled 60000] [--service 1.0] [--cap 32]

Without --bundle it exports the default MiniLM bundle to a temporary folder first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts

from bertless.batch.client import Options
from bertless.batch.endpoint import EndpointSummary, score_endpoint
from bertless.core.predictor import available_cpus
from bertless.local.server import local_server
from bertless.platforms.limits import get_platform

SEED_TEXTS = 95_000_000  # Ganiev et al. 2021: 95 million paragraphs in 96 hours
LAMBDA_MB = 1769  # one full vCPU (platforms/aws.py), about one core of this machine
LAMBDA_CONCURRENCY = 1000
ISSUE_FAULTS = ["--throttle", "0.10", "--unavailable", "0.02", "--reset", "0.01", "--slow", "0.05"]
FAULT_PROXY = Path(__file__).parents[1] / "tests" / "fault_proxy.py"


@dataclass
class Arm:
    """One setting, run once a round: its input, its options and where it sends."""

    name: str
    url: str
    data: Path
    options: Options
    rates: list[float] = field(default_factory=list)
    latencies: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summaries: list[EndpointSummary] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


@contextmanager
def proxy(*args: str) -> Iterator[str]:
    """tests/fault_proxy.py in its own process, until the block ends: its URL."""
    command = [sys.executable, str(FAULT_PROXY), *args]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(30)


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


def rounds(arms: list[Arm], n: int, scratch: Path, server_pid: int | None = None) -> None:
    """Each arm once a round, the order rotated by one each round."""
    for r in range(n):
        print(f"  round {r + 1}/{n} ({load()})", flush=True)
        for arm in arms[r % len(arms) :] + arms[: r % len(arms)]:
            output = scratch / "out.parquet"
            output.unlink(missing_ok=True)
            before, started = cpu_seconds(server_pid) if server_pid else 0.0, time.perf_counter()
            summary = score_endpoint(arm.url, arm.data, output, options=arm.options)
            wall = time.perf_counter() - started
            arm.summaries.append(summary)
            arm.rates.append(summary.scored / summary.seconds)
            arm.latencies.append(summary.latency_ms)
            if server_pid:
                used = (cpu_seconds(server_pid) - before) / (wall * available_cpus())
                arm.notes.append(f"{used:.0%}")


def report(arms: list[Arm], what: str = "") -> None:
    for arm in arms:
        last = arm.summaries[-1]
        retries = sum(sum(s.retries.values()) for s in arm.summaries)
        q = {k: statistics.median(lat[k] for lat in arm.latencies) for k in ("q50", "q95", "q99")}
        print(
            f"{arm.name:<26} {arm.rate:8.1f} rows/s [{min(arm.rates):7.1f}-{max(arm.rates):7.1f}]"
            f"  latency q50/q95/q99 {q['q50']:6.0f} {q['q95']:6.0f} {q['q99']:6.0f} ms"
            f"  requests {last.requests:5d}  retries {retries:4d}"
            f"  peak {max(s.peak_concurrency for s in arm.summaries):4d}"
            f"  mean {statistics.median(s.mean_concurrency for s in arm.summaries):6.1f}"
            + (f"  {what} {' '.join(arm.notes)}" if arm.notes else ""),
            flush=True,
        )


def ratios(adaptive: Arm, fixed: list[Arm]) -> str:
    """Adaptive over the best fixed arm: of the medians, and round by round (its range)."""
    best = max(fixed, key=lambda arm: arm.rate)
    each = [a / max(arm.rates[r] for arm in fixed) for r, a in enumerate(adaptive.rates)]
    return (
        f"adaptive / best fixed ({best.name}): {adaptive.rate / best.rate:.2f} of the medians, "
        f"{min(each):.2f}-{max(each):.2f} round by round against that round's best"
    )


def on_the_server(bundle: Path, data: Path, scratch: Path, args) -> float:
    """Set-up 1; the seconds of one request at concurrency 1 (its median), for `on_paper`."""
    per = args.per
    print(f"\n1. bertless serve, 2 workers, {available_cpus()} cores, {per} texts a request")
    with local_server(bundle, workers=2) as url:
        score_endpoint(url, data, scratch / "warm.parquet", options=Options(concurrency=2))
        with proxy(url) as clean, proxy(url, *ISSUE_FAULTS) as faulty:
            fixed = [
                Arm(f"fixed {n}", url, data, Options(concurrency=n, texts_per_request=per))
                for n in [int(n) for n in args.sweep.split(",")]
            ]
            adaptive = Arm("adaptive", url, data, Options(texts_per_request=per))
            through = Arm("adaptive, proxy", clean, data, adaptive.options)
            faults = Arm("adaptive, issue's faults", faulty, data, adaptive.options)
            rounds([*fixed, adaptive, through, faults], args.rounds, scratch, url.pid)
    report([*fixed, adaptive, through, faults], "server CPU")
    one = fixed[0]
    print(ratios(adaptive, fixed))
    print(f"adaptive / fixed 1: {adaptive.rate / one.rate:.2f}")
    print(f"faulty / fault-free through the proxy: {faults.rate / through.rate:.2f}")
    return statistics.median(s.seconds / s.requests for s in one.summaries)


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


def on_a_scaling_stand_in(data: Path, small: Path, scratch: Path, args) -> None:
    cap = args.cap
    print(f"\n2. scaling stand-in: {args.service:g} s a request, 429 above {cap} in flight")
    with proxy("--stand-in", str(args.service), "--cap", str(cap)) as url:
        one = Arm("fixed 1 (a 60th of rows)", url, small, Options(concurrency=1))
        eight = Arm("fixed 8 (a 60th of rows)", url, small, Options(concurrency=8))
        fixed = [Arm(f"fixed {n}", url, data, Options(concurrency=n)) for n in (cap // 2, cap)]
        adaptive = Arm("adaptive", url, data, Options())
        rounds([one, eight, *fixed, adaptive], args.rounds, scratch)
    report([one, eight, *fixed, adaptive])
    print(ratios(adaptive, [eight, *fixed]))
    print(f"adaptive / fixed 1: {adaptive.rate / one.rate:.1f}")
    reached = [s.peak_concurrency for s in adaptive.summaries]
    print(f"adaptive's peak in flight by round: {reached}")


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in psutil.getloadavg())


def write(path: Path, texts: list[str]) -> Path:
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="times each arm runs")
    parser.add_argument("--texts", type=int, default=400, help="rows per run on the server")
    parser.add_argument("--sweep", default="1,2,4,8,16", help="fixed settings on the server")
    parser.add_argument("--per", type=int, default=8, help="texts a request on the server")
    parser.add_argument("--stand-in-only", action="store_true", help="skip set-up 1")
    parser.add_argument("--scaled", type=int, default=60000, help="rows per stand-in run")
    parser.add_argument("--service", type=float, default=1.0, help="stand-in seconds a request")
    parser.add_argument("--cap", type=int, default=32, help="stand-in concurrency cap")
    args = parser.parse_args()
    print(f"{load()}, {available_cpus()} cores, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bundle = args.bundle
        if bundle is None and not args.stand_in_only:
            from bertless.models.export import export

            bundle = scratch / "minilm"
            export(None, bundle)
        texts = mixed_texts(max(args.texts, args.scaled))
        if not args.stand_in_only:
            data = write(scratch / "texts.parquet", texts[: args.texts])
            on_paper(on_the_server(bundle, data, scratch, args), args.per)
        scaled = write(scratch / "scaled.parquet", texts[: args.scaled])
        small = write(scratch / "small.parquet", texts[: max(320, args.scaled // 60)])
        on_a_scaling_stand_in(scaled, small, scratch, args)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
