"""Batch scoring throughput: the local engine and Spark against `Predictor.encode`, side by side.

All engines score the same texts (mixed lengths, truncation on so every row is scored) in one
run, taking turns round by round so a noisy neighbour hits them alike; each engine's best round
is reported, as texts/s and as ratios against `Predictor.encode` in one process:

- predictor, 1 thread: the per-core reference; Spark's per-core throughput is compared with it
  (target: at least 0.8).
- predictor, all cores: one process, one onnxruntime session with one intra-op thread per core.
- local engine, 1 process (all cores as threads) and one process per core: end to end (worker
  start, model load, reading Parquet, writing parts, joining them), which is what a user waits for.
- spark local[1] and local[2]: `score()` over the Parquet file into Spark's no-op sink, after a
  warm-up job has loaded the model in every Python worker; session start is not timed.

    .venv/bin/python benchmarks/batch.py [--bundle DIR] [--texts 5000] [--rounds 2]

Without --bundle it exports the default MiniLM bundle to a temporary folder first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts

from bertless import Predictor
from bertless.batch.local import score_file
from bertless.core.cpus import available_cpus

Engine = Callable[[], None]


def predictor(bundle: Path, texts: list[str], threads: int) -> Engine:
    loaded = Predictor.load(bundle, threads=threads)
    loaded.encode(texts[:64], truncate=True)
    return lambda: loaded.encode(texts, batch_size=32, truncate=True)


def local(bundle: Path, data: Path, scratch: Path, workers: int) -> Engine:
    output = scratch / f"local-{workers}.parquet"

    def run() -> None:
        output.unlink(missing_ok=True)
        score_file(bundle, data, output, truncate=True, workers=workers)

    return run


def spark(bundle: Path, data: Path, cores: int) -> tuple[Engine, Callable[[], None]]:
    """A timed Spark job, and how to stop its session; the model is loaded before timing."""
    from bertless.batch.spark import score, session

    active = session(f"local[{cores}]")
    active.sparkContext.setLogLevel("ERROR")
    frame = active.read.parquet(str(data)).repartition(cores * 2)

    def run() -> None:
        score(frame, bundle, truncate=True).write.format("noop").mode("overwrite").save()

    score(frame.limit(cores * 2).repartition(cores), bundle, truncate=True).collect()
    return run, active.stop


@dataclass(frozen=True)
class Contender:
    name: str
    cores: int
    prepare: Callable[[], tuple[Engine, Callable[[], None]]]


def contenders(bundle: Path, texts: list[str], data: Path, scratch: Path) -> list[Contender]:
    """The first is the per-core reference, the second the one-process reference."""
    cores = available_cpus()
    idle = lambda: None  # noqa: E731
    return [
        Contender("predictor, 1 thread", 1, lambda: (predictor(bundle, texts, 1), idle)),
        Contender(
            f"predictor, {cores} threads", cores, lambda: (predictor(bundle, texts, cores), idle)
        ),
        Contender(
            f"local engine, 1 process x {cores} threads",
            cores,
            lambda: (local(bundle, data, scratch, 1), idle),
        ),
        Contender(
            f"local engine, {cores} processes x 1 thread",
            cores,
            lambda: (local(bundle, data, scratch, cores), idle),
        ),
        Contender("spark local[1]", 1, lambda: spark(bundle, data, 1)),
        Contender(f"spark local[{cores}]", cores, lambda: spark(bundle, data, cores)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        bundle = args.bundle
        if bundle is None:
            from bertless.models.export import export

            bundle = scratch / "minilm"
            export(None, bundle)
        texts = mixed_texts(args.texts)
        data = scratch / "texts.parquet"
        pq.write_table(pa.table({"id": range(len(texts)), "text": texts}), data)

        everyone = contenders(bundle, texts, data, scratch)
        best: dict[str, float] = {}
        for round_ in range(args.rounds):
            for contender in everyone:
                run, stop = contender.prepare()
                started = time.perf_counter()
                run()
                seconds = time.perf_counter() - started
                stop()
                best[contender.name] = min(seconds, best.get(contender.name, seconds))
                rate = len(texts) / seconds
                print(f"round {round_ + 1}: {contender.name}: {rate:,.1f} texts/s", flush=True)
        report(everyone, best, len(texts))


def report(everyone: list[Contender], best: dict[str, float], n: int) -> None:
    from rich.console import Console
    from rich.table import Table

    per_core_reference = n / best[everyone[0].name]
    one_process_reference = n / best[everyone[1].name]
    table = Table(title=f"batch scoring, {n:,} texts, best of rounds")
    table.add_column("engine", no_wrap=True)
    for column in (
        "cores",
        "texts/s",
        "per core",
        "per core ÷ predictor 1 thread",
        "÷ predictor all cores",
    ):
        table.add_column(column, justify="right")
    for contender in everyone:
        rate = n / best[contender.name]
        table.add_row(
            contender.name,
            str(contender.cores),
            f"{rate:,.1f}",
            f"{rate / contender.cores:,.1f}",
            f"{rate / contender.cores / per_core_reference:.2f}",
            f"{rate / one_process_reference:.2f}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
