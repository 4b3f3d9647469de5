"""`bertless batch BUNDLE INPUT OUTPUT`: score a file locally or on Spark, with progress;
`bertless batch --engine endpoint --url URL INPUT OUTPUT`: through a deployed function, or
`--aws-function NAME` instead of --url: by invoking a Lambda function directly (boto3).

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
        help="Score a Parquet, JSON Lines or CSV file with a bundle, locally or on Spark, or "
        "through a deployed endpoint.",
        description="Score every row of INPUT into OUTPUT (format by extension: .parquet, "
        ".jsonl, .csv). Rows that cannot be scored get an `error` and the others go on. The "
        "local and endpoint engines resume an interrupted run from OUTPUT.parts/ when rerun. "
        "The endpoint engine takes no BUNDLE: the deployed function at --url scores.",
    )
    p.add_argument(
        "bundle",
        nargs="?",
        help="a bundle directory made by `bertless export` (none with --engine endpoint)",
    )
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
        choices=["local", "spark", "endpoint"],
        help="local: this machine, resumable; spark: mapInPandas on --master; endpoint: the "
        "deployed function at --url, resumable (default: local)",
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
        help="local and endpoint engines: rows per part, the unit a resumed run skips "
        "(default: 1024)",
    )
    add(
        p,
        "--master",
        env="BERTLESS_MASTER",
        default="local[*]",
        help="Spark engine: the master URL (default: local[*])",
    )
    _add_endpoint_flags(p)
    p.set_defaults(run=run)


def _add_endpoint_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("endpoint engine")
    add(
        g,
        "--url",
        env="BERTLESS_BATCH_URL",
        help="the deployed endpoint's base URL (it serves /info and /embed or /predict)",
    )
    add(
        g,
        "--aws-function",
        env="BERTLESS_AWS_FUNCTION",
        metavar="NAME[:ALIAS]",
        help="instead of --url: invoke this Lambda function directly through the Lambda API "
        "(boto3; the cost of the run is printed at the end)",
    )
    add(
        g,
        "--endpoint-url",
        env="BERTLESS_ENDPOINT_URL",
        help="with --aws-function: the Lambda API's base, for a local stand-in (default: "
        "AWS_ENDPOINT_URL_LAMBDA, else AWS's)",
    )
    add(g, "--region", env="BERTLESS_REGION", help="default: the SDK's configured region")
    add(g, "--api-key", env="BERTLESS_API_KEY", help="sent as Authorization: Bearer")
    add(
        g,
        "--sigv4",
        env="BERTLESS_SIGV4",
        metavar="REGION",
        help="sign requests with AWS SigV4 (an AWS_IAM Function URL)",
    )
    add(
        g,
        "--concurrency",
        env="BERTLESS_BATCH_CONCURRENCY",
        type=_concurrency,
        default=None,
        metavar="N|auto",
        help="requests in flight: a number, or auto to find the most the endpoint takes "
        "(default: auto)",
    )
    add(
        g,
        "--texts-per-request",
        env="BERTLESS_TEXTS_PER_REQUEST",
        type=int,
        default=32,
        help="texts in one request, at most the endpoint's max batch size and the platforms' "
        "payload limit (default 32)",
    )
    add(
        g,
        "--retries",
        env="BERTLESS_RETRIES",
        type=int,
        default=8,
        help="retries of a failed request before its rows get its last error (default 8)",
    )


def _concurrency(text: str) -> int | None:
    """`auto` (adaptive: None) or a positive number of requests in flight."""
    if text.strip().lower() == "auto":
        return None
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def run(args: argparse.Namespace) -> int:
    """Score the file with a live progress bar, then print a summary table."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    _check_positionals(args)
    if args.engine == "endpoint":
        summary = _endpoint(args)
    else:
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
    if hasattr(summary, "requests"):
        console.print(_driven(summary))
    if getattr(summary, "bill", None) is not None:
        console.print(_cost(summary.bill))
    if summary.errors:
        console.print(
            f"[yellow]{summary.errors:,} rows were not scored[/]: their `error` column says why."
        )
    return 0


def _check_positionals(args: argparse.Namespace) -> None:
    """BUNDLE INPUT OUTPUT for the local and Spark engines; INPUT OUTPUT and --url for endpoint."""
    from bertless.core.errors import InputError

    if args.engine == "endpoint":
        if args.bundle is not None:
            raise InputError(
                "the endpoint engine scores with the deployed model: give INPUT OUTPUT and "
                "--url, without a bundle."
            )
        if bool(args.url) == bool(args.aws_function):
            raise InputError(
                "the endpoint engine needs one endpoint: give --url URL or --aws-function NAME."
            )
    elif args.bundle is None:
        raise InputError(
            f"the {args.engine} engine needs BUNDLE INPUT OUTPUT; to score through a deployed "
            "function, use --engine endpoint --url URL."
        )


def _driven(summary):
    """How the endpoint was driven: requests, retries by cause, concurrency."""
    from rich.table import Table

    table = Table(title="endpoint", title_justify="left")
    columns = ("requests", "retries", "waited for Retry-After", "peak / mean in flight")
    for column in (*columns, "latency q50 / q95 / q99"):
        table.add_column(column, justify="right")
    latency = " / ".join(f"{ms:,.0f}" for ms in summary.latency_ms.values())
    retries = ", ".join(f"{n:,} {cause}" for cause, n in sorted(summary.retries.items()))
    table.add_row(
        f"{summary.requests:,}",
        retries or "none",
        f"{summary.retry_after_seconds:,.1f} s",
        f"{summary.peak_concurrency} / {summary.mean_concurrency:,.1f}",
        f"{latency} ms" if latency else "-",
    )
    return table


def _cost(bill) -> str:
    """What the run cost on Lambda, from the billed durations of its invocations."""
    usd = bill.usd()
    price = f"${usd:,.2f}" if usd >= 0.01 else f"${usd:.6f}"  # fractions of a cent
    return (
        f"AWS cost: {bill.invocations:,} invocations billed {bill.billed_ms / 1e3:,.1f} s, "
        f"{bill.gb_seconds:,.2f} GB-s: {price} at the us-east-1 x86_64 on-demand "
        "prices of bertless.platforms.aws (sources there), before the free tier"
    )


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


def _progress():
    """The live bar every engine that reports progress shows: rows, texts/s, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns)


def _local(args: argparse.Namespace) -> Summary:
    from bertless.batch.local import DEFAULT_CHUNK_ROWS, score_file

    with _progress() as progress:
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


def _endpoint(args: argparse.Namespace) -> Summary:
    from bertless.batch.client import Options
    from bertless.batch.endpoint import DEFAULT_CHUNK_ROWS, score_endpoint

    options = Options(
        concurrency=args.concurrency,
        texts_per_request=args.texts_per_request,
        retries=args.retries,
        api_key=args.api_key,
        sigv4_region=args.sigv4,
        endpoint_url=args.endpoint_url,
        region=args.region,
    )
    with _progress() as progress:
        return score_endpoint(
            args.url or f"lambda:{args.aws_function}",
            args.input,
            args.output,
            text_column=args.text_column,
            pair_column=args.pair_column,
            id_column=args.id_column,
            truncate=args.truncate,
            chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS,
            options=options,
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
