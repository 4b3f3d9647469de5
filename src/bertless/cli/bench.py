"""`bertless bench` and `bertless cost`: parse, show progress, call the bench package.

Every flag's default comes from the environment variable of the same name (`--requests` /
`BERTLESS_REQUESTS`), as the rest of the command line does. Only the cost model is imported when
the parsers are built: every `bertless` command builds them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bertless.bench.cost import DEFAULT_VM, cost_report, render_cost_table, report_to_json
from bertless.cli.env import env
from bertless.platforms import limits


def _sizes(text: str) -> list[int]:
    """`512,1024,1769` as a list of memory sizes in MB."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--memory takes sizes in MB separated by commas, like 512,1024; not {text!r}"
        ) from None
    if not sizes:
        raise argparse.ArgumentTypeError("--memory needs at least one size")
    return sizes


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `bench` and `cost` on the top-level parser's subcommands."""
    _add_bench(sub)
    _add_cost(sub)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="Measure latency, cold start and cost of a URL, a bundle or an artifact.",
        description="Warm latency (client and Server-Timing), cold starts phase by phase, and "
        "the cost on each cloud at the measured q50, at one or more memory sizes. A bundle or "
        "an AWS artifact runs on this machine with each memory size's CPU share emulated.",
    )
    target = env("target")
    p.add_argument(
        "targets",
        metavar="TARGET",
        nargs="*" if target else "+",
        default=target.split() if isinstance(target, str) else None,
        help="a URL, a bundle directory, or an artifact zip built by `bertless package aws`",
    )
    p.add_argument("--requests", type=int, default=env("requests", "200"))
    p.add_argument("--concurrency", type=int, default=env("concurrency", "1"))
    p.add_argument(
        "--warmup",
        type=int,
        default=env("warmup", "10"),
        help="requests before timing starts, spread over the workers (default 10)",
    )
    p.add_argument(
        "--cold-starts",
        type=int,
        default=env("cold_starts", "3"),
        help="fresh processes (or new instances of --aws-function) per size (default 3)",
    )
    p.add_argument(
        "--inputs",
        default=env("inputs"),
        help='a file of texts, one per line (.jsonl: a string or {"text": ...} per line); '
        "default: a built-in set of varied lengths",
    )
    p.add_argument("--batch-size", type=int, default=env("batch_size", "1"))
    p.add_argument(
        "--memory",
        type=_sizes,
        default=env("memory"),
        help="memory sizes in MB, comma-separated (default: the artifact's, the function's, "
        "else 1769)",
    )
    p.add_argument("--json", dest="json_out", default=env("json"), help="write the report here")
    p.add_argument("--plot", default=env("plot"), help="write a PNG of latency and cost here")
    p.add_argument("--api-key", default=env("api_key"), help="sent as Authorization: Bearer")
    p.add_argument(
        "--sigv4",
        metavar="REGION",
        default=env("sigv4"),
        help="sign requests with AWS SigV4 (an AWS_IAM Function URL)",
    )
    p.add_argument(
        "--aws-function",
        metavar="NAME[:ALIAS]",
        default=env("aws_function"),
        help="the Lambda function behind the URL: lets the benchmark set its memory and force "
        "new instances (alias default: live); restored afterwards",
    )
    _add_pricing(p)
    p.set_defaults(run=run_bench)


def _add_pricing(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arch", default=env("arch", "x86_64"), choices=["x86_64", "arm64"], help="AWS price"
    )
    p.add_argument(
        "--requests-per-month",
        type=int,
        default=env("requests_per_month", "1000000"),
        help="for the monthly bill, with and without the free tier (default 1,000,000)",
    )


def run_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bertless.bench import sweep
    from bertless.bench.latency import BenchError
    from bertless.bench.report import render
    from bertless.bench.texts import builtin_texts, load_texts

    console = Console(stderr=True, log_path=False)

    def say(text: str) -> None:
        console.log(text)

    for name in ("requests", "concurrency", "batch_size"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    texts = load_texts(Path(args.inputs)) if args.inputs else builtin_texts()
    settings = sweep.Settings(
        requests=args.requests,
        concurrency=args.concurrency,
        warmup=max(0, args.warmup),
        cold_starts=max(0, args.cold_starts),
        batch_size=args.batch_size,
        texts=texts,
        inputs=args.inputs or "built-in",
        requests_per_month=args.requests_per_month,
        arch=args.arch,
    )
    targets = []
    try:
        for text in args.targets:
            targets.append(
                sweep.resolve_target(text, say, args.api_key, args.sigv4, args.aws_function)
            )
        try:
            sweep.check_sizes(targets, args.memory)
        except limits.OutOfRangeError as error:
            raise BenchError(str(error)) from None
    except BaseException:
        for target in targets:
            target.close()
        raise
    report = sweep.run(targets, args.memory, settings, say)
    output = Console()
    for table in render(report):
        output.print(table)
    if args.json_out:
        report.write_json(Path(args.json_out))
        console.log(f"report written to {args.json_out}")
    if args.plot:
        from bertless.bench.plot import plot

        plot(report, Path(args.plot))
        console.log(f"plot written to {args.plot}")
    failed = sum(run.latency.ok == 0 for target in report.targets for run in target.runs)
    return 1 if failed else 0


def _add_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost",
        help="Price a request duration and memory size on every cloud, without measuring.",
        description="The cost model alone: billed units, price per million requests and a "
        "month's bill with and without the free tier, for AWS Lambda, Cloud Run functions "
        "and Azure Functions, from the sourced prices in bertless.platforms.limits.",
    )
    duration = env("duration_ms")
    p.add_argument(
        "--duration-ms",
        type=float,
        required=duration is None,
        default=duration,
        help="the duration of one request in ms (a measured q50)",
    )
    p.add_argument("--memory", type=int, default=env("memory", "1769"), help="MB")
    _add_pricing(p)
    p.add_argument("--vm", default=env("vm", DEFAULT_VM), help="an always-on VM to compare")
    p.add_argument(
        "--json",
        action="store_true",
        default=env("json") in ("1", "true", "yes"),
        help="print JSON instead of a table",
    )
    p.set_defaults(run=run_cost)


def run_cost(args: argparse.Namespace) -> int:
    from bertless.bench.latency import BenchError

    try:
        report = cost_report(
            args.duration_ms, args.memory, args.arch, args.requests_per_month, args.vm
        )
    except (ValueError, LookupError) as error:
        raise BenchError(str(error)) from None
    if args.json:
        print(json.dumps(report_to_json(report), indent=2))
    else:
        from rich.console import Console

        Console().print(render_cost_table(report))
    return 0
