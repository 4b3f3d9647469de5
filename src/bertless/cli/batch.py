"""`bertless batch BUNDLE INPUT OUTPUT`: score a file locally or on Spark, with progress.

Every flag has an environment variable, named in its help (`--batch-size` / `BERTLESS_BATCH_SIZE`),
as in the rest of the CLI. Rich, pyarrow and pyspark are imported only when the command runs,
so `bertless --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import TYPE_CHECKING

from bertless.cli.env import add

if TYPE_CHECKING:
    from bertless.batch.scoring import Summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `batch` and its flags on the CLI's subcommands."""
    p = sub.add_parser(
        "batch",
        help="Score a Parquet, JSON Lines or CSV file with a bundle, locally or on Spark.",
        description="Score every row of INPUT into OUTPUT (format by extension: .parquet, "
        ".jsonl, .csv). Rows that cannot be scored get an `error` and the others go on. The "
        "local engine resumes an interrupted run from OUTPUT.parts/ when rerun.",
    )
    p.add_argument("bundle", help="a bundle directory made by `bertless export`")
    p.add_argument("input", help="the file to score (with --engine spark: any URI Spark reads)")
    p.add_argument(
        "output",
        help="where results go: one file for the local engine, a folder of parts for Spark",
    )
    add(
        p,
        "--engine",
        env="BERTLESS_ENGINE",
        default="local",
        choices=["local", "spark"],
        help="local: this machine, resumable; spark: mapInPandas on --master (default: local)",
    )
    add(p, "--text-column", env="BERTLESS_TEXT_COLUMN", default="text", help="default: text")
    add(
        p,
        "--pair-column",
        env="BERTLESS_PAIR_COLUMN",
        help="second text of a pair, for cross-encoder classifiers",
    )
    add(
        p,
        "--id-column",
        env="BERTLESS_ID_COLUMN",
        default="id",
        help="copied to the output to join results back (default: id; the local engine "
        "numbers rows from 0 when the input has no such column)",
    )
    add(
        p,
        "--batch-size",
        env="BERTLESS_BATCH_SIZE",
        type=int,
        default=32,
        help="texts per model call (default 32)",
    )
    add(
        p,
        "--truncate",
        env="BERTLESS_TRUNCATE",
        action=argparse.BooleanOptionalAction,
        help="cut over-long texts instead of reporting them as errors (default: the bundle's)",
    )
    add(
        p,
        "--workers",
        env="BERTLESS_WORKERS",
        type=int,
        help="local engine: processes, each with cores/workers threads (default: one per core)",
    )
    add(
        p,
        "--chunk-rows",
        env="BERTLESS_CHUNK_ROWS",
        type=int,
        help="local engine: rows per part, the unit a resumed run skips (default: 1024)",
    )
    add(
        p,
        "--master",
        env="BERTLESS_MASTER",
        default="local[*]",
        help="Spark engine: the master URL (default: local[*])",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score the file with a live progress bar, then print a summary table."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    summary = _local(args) if args.engine == "local" else _spark(args, console)
    table = Table(title=f"bertless batch: {args.output}", title_justify="left")
    for column in ("rows", "errors", "texts/s", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{summary.rows:,}",
        f"{summary.errors:,}",
        f"{summary.texts_per_second:,.1f}",
        f"{summary.seconds:,.1f}",
    )
    console.print(table)
    if summary.errors:
        console.print(
            f"[yellow]{summary.errors:,} rows were not scored[/]: their `error` column says why."
        )
    return 0


class _Bar:
    """The progress callback: rows done of the total, and texts/s of this run alone.

    Rows an interrupted run already scored start the bar part-way and are left out of the rate.
    """

    def __init__(self, progress) -> None:
        self.progress = progress
        self.task = None
        self.start = (0, 0.0)

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.task is None:
            self.start = (done, now)
            self.task = self.progress.add_task("", total=total, completed=done, rate="")
            return
        rate = (done - self.start[0]) / max(now - self.start[1], 1e-9)
        self.progress.update(self.task, completed=done, rate=f"{rate:,.0f} texts/s")


def _local(args: argparse.Namespace) -> Summary:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from bertless.batch.local import DEFAULT_CHUNK_ROWS, score_file

    columns = (
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        return score_file(
            args.bundle,
            args.input,
            args.output,
            text_column=args.text_column,
            pair_column=args.pair_column,
            id_column=args.id_column,
            batch_size=args.batch_size,
            truncate=args.truncate,
            workers=args.workers,
            chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS,
            progress=_Bar(progress),
        )


def _spark(args: argparse.Namespace, console) -> Summary:
    from bertless.batch.local import BatchError

    if importlib.util.find_spec("pyspark") is None:
        raise BatchError("the spark engine needs pyspark: pip install 'bertless[spark]'.")
    from bertless.batch.spark import score_files, session

    with console.status(f"scoring on Spark ({args.master})"):
        spark = session(args.master)
        try:
            return score_files(
                spark,
                args.bundle,
                args.input,
                args.output,
                text_column=args.text_column,
                pair_column=args.pair_column,
                id_column=args.id_column,
                batch_size=args.batch_size,
                truncate=args.truncate,
            )
        finally:
            spark.stop()
