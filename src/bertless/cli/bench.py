"""`bertless bench` and `bertless cost`: parse, show progress, call the bench package.

Every flag has an environment variable, named in its help (`--requests` / `BERTLESS_REQUESTS`),
as in the rest of the command line. Only the cost model is imported when
the parsers are built: every `bertless` command builds them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertless.bench.coldrate import DAYS_PER_MONTH, parse_profile
from bertless.bench.cost import DEFAULT_VM, cost_report, render_cost_table, report_to_json
from bertless.bench.warm import DEFAULT_COLD_START_RATE, OptionCost, Traffic, warm_report
from bertless.bench.warmtable import render_warm_table, warm_to_json
from bertless.cli.env import add
from bertless.cli.package import ARCHES
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
    add(
        p,
        "targets",
        env="BERTLESS_TARGET",
        required=True,
        metavar="TARGET",
        nargs="+",
        help="a URL, a bundle directory, or an artifact zip built by `bertless package aws` "
        "(the variable takes several, separated by spaces)",
    )
    add(p, "--requests", env="BERTLESS_REQUESTS", type=int, default=200, help="timed, per size")
    add(
        p,
        "--concurrency",
        env="BERTLESS_CONCURRENCY",
        type=int,
        default=1,
        help="requests in flight (default 1)",
    )
    add(
        p,
        "--warmup",
        env="BERTLESS_WARMUP",
        type=int,
        default=10,
        help="requests before timing starts, spread over the workers (default 10)",
    )
    add(
        p,
        "--cold-starts",
        env="BERTLESS_COLD_STARTS",
        type=int,
        default=3,
        help="fresh processes (or new instances of --aws-function) per size (default 3)",
    )
    add(
        p,
        "--inputs",
        env="BERTLESS_INPUTS",
        help='a file of texts, one per line (.jsonl: a string or {"text": ...} per line); '
        "default: a built-in set of varied lengths",
    )
    add(
        p,
        "--batch-size",
        env="BERTLESS_BENCH_BATCH_SIZE",
        type=int,
        default=1,
        help="texts per request (default 1)",
    )
    add(
        p,
        "--memory",
        env="BERTLESS_BENCH_MEMORY",
        type=_sizes,
        help="memory sizes in MB, comma-separated (default: the artifact's, the function's, "
        "else 1769)",
    )
    add(
        p,
        "--json",
        env="BERTLESS_BENCH_JSON",
        dest="json_out",
        help="write the report here",
    )
    add(p, "--plot", env="BERTLESS_PLOT", help="write a PNG of latency and cost here")
    add(p, "--api-key", env="BERTLESS_API_KEY", help="sent as Authorization: Bearer")
    add(
        p,
        "--sigv4",
        env="BERTLESS_SIGV4",
        metavar="REGION",
        help="sign requests with AWS SigV4 (an AWS_IAM Function URL)",
    )
    add(
        p,
        "--aws-function",
        env="BERTLESS_AWS_FUNCTION",
        metavar="NAME[:ALIAS]",
        help="the Lambda function behind the URL: lets the benchmark set its memory and force "
        "new instances (alias default: live); restored afterwards",
    )
    _add_pricing(p)
    p.set_defaults(run=run_bench)


def _add_pricing(p: argparse.ArgumentParser, requests_default: int | None = 1_000_000) -> None:
    add(
        p,
        "--arch",
        env="BERTLESS_ARCH",
        default="x86_64",
        choices=ARCHES,
        help="the function's CPU, for the AWS price (default x86_64)",
    )
    add(
        p,
        "--requests-per-month",
        env="BERTLESS_REQUESTS_PER_MONTH",
        type=int,
        default=requests_default,
        help="for the monthly bill, with and without the free tier (default 1,000,000"
        + ("" if requests_default else "; with --traffic-profile, its day times 30.4")
        + ")",
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
        "and Azure Functions, from the sourced prices in bertless.platforms.limits; with "
        "--cold-start-ms, also the month with cold starts and each way to keep warm (SnapStart, "
        "provisioned, minimum or always-ready instances) and where each meets the VM.",
    )
    add(
        p,
        "--duration-ms",
        env="BERTLESS_DURATION_MS",
        required=True,
        type=float,
        help="the duration of one request in ms (a measured q50)",
    )
    add(
        p,
        "--memory",
        env="BERTLESS_COST_MEMORY",
        type=int,
        default=1769,
        help="MB priced (default 1769)",
    )
    _add_pricing(p, requests_default=None)
    add(p, "--vm", env="BERTLESS_VM", default=DEFAULT_VM, help="an always-on VM to compare")
    _add_warm(p)
    add(
        p,
        "--json",
        env="BERTLESS_COST_JSON",
        action="store_true",
        help="print JSON instead of a table",
    )
    p.set_defaults(run=run_cost)


def _add_warm(p: argparse.ArgumentParser) -> None:
    """The month with cold starts and warm capacity: shown when a cold start is given."""
    add(
        p,
        "--cold-start-ms",
        env="BERTLESS_COLD_START_MS",
        type=float,
        help="the measured start-up before the first answer, in ms; adds the month with cold "
        "starts, SnapStart and warm instances",
    )
    add(
        p,
        "--cold-start-rate",
        env="BERTLESS_COLD_START_RATE",
        type=float,
        default=DEFAULT_COLD_START_RATE,
        help="the share of on-demand requests that meet a cold start (default 0.01, AWS's "
        "figure for production functions)",
    )
    add(
        p,
        "--traffic-profile",
        env="BERTLESS_TRAFFIC_PROFILE",
        metavar="COUNTS|FILE",
        help="requests in each hour of a typical day: 24 numbers from midnight, or a file of "
        "them, or a JSON-lines request log with a time on each line; derives each cloud's "
        "cold starts and instances from it and the cloud's idle lifetime, in place of "
        "--cold-start-rate",
    )
    add(
        p,
        "--concurrency",
        env="BERTLESS_INSTANCE_CONCURRENCY",
        dest="instance_concurrency",
        type=int,
        default=1,
        help="requests one instance takes at once on Cloud Run and Azure Flex (default 1)",
    )
    add(
        p,
        "--cpu-boost",
        env="BERTLESS_CPU_BOOST",
        action="store_true",
        help="also price Cloud Run with startup CPU boost: start-ups billed at twice the vCPUs",
    )
    add(
        p,
        "--boosted-cold-start-ms",
        env="BERTLESS_BOOSTED_COLD_START_MS",
        type=float,
        help="the start-up with the boost, measured (default: as --cold-start-ms)",
    )
    add(
        p,
        "--warm-instances",
        env="BERTLESS_WARM_INSTANCES",
        type=int,
        default=1,
        help="instances kept warm to price: provisioned concurrency, minimum or always-ready "
        "instances (default 1; 0: none)",
    )
    add(
        p,
        "--plot",
        env="BERTLESS_COST_PLOT",
        dest="cost_plot",
        help="write a PNG of the month against requests per month here (needs --cold-start-ms)",
    )


def run_cost(args: argparse.Namespace) -> int:
    from bertless.bench.latency import BenchError

    try:
        profile = parse_profile(args.traffic_profile) if args.traffic_profile else None
        if args.requests_per_month is None:
            daily = sum(profile) if profile else None
            args.requests_per_month = round(daily * DAYS_PER_MONTH) if daily else 1_000_000
        report = cost_report(
            args.duration_ms, args.memory, args.arch, args.requests_per_month, args.vm
        )
        warm = _warm_report(args, profile)
    except (ValueError, LookupError) as error:
        raise BenchError(str(error)) from None
    if args.json:
        data = report_to_json(report)
        if warm is not None:
            data["warm"] = warm_to_json(warm[1], warm[0])
        print(json.dumps(data, indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(render_cost_table(report))
        if warm is not None:
            console.print(render_warm_table(warm[1], warm[0], args.vm))
    if args.cost_plot and warm is not None:
        from bertless.bench.warmplot import plot_months

        plot_months(
            warm[0],
            Path(args.cost_plot),
            args.warm_instances,
            args.arch,
            args.vm,
            cpu_boost=args.cpu_boost,
        )
        print(f"plot written to {args.cost_plot}", file=sys.stderr)
    return 0


def _warm_report(
    args: argparse.Namespace, profile: tuple[float, ...] | None
) -> tuple[Traffic, list[OptionCost | str]] | None:
    """The traffic and its month per cloud and option, or None without a cold start to price."""
    if args.cold_start_ms is None:
        if args.cost_plot or profile:
            flag = "--plot" if args.cost_plot else "--traffic-profile"
            raise ValueError(f"{flag} prices cold starts: give --cold-start-ms too")
        return None
    if args.warm_instances < 0:
        raise ValueError(f"--warm-instances cannot be negative; got {args.warm_instances}")
    traffic = Traffic(
        requests_per_month=args.requests_per_month,
        duration_ms=args.duration_ms,
        cold_start_ms=args.cold_start_ms,
        cold_start_rate=args.cold_start_rate,
        memory_mb=args.memory,
        concurrency=args.instance_concurrency,
        profile=profile,
        boosted_cold_start_ms=args.boosted_cold_start_ms,
    )
    report = warm_report(traffic, args.warm_instances, args.arch, args.vm, args.cpu_boost)
    return traffic, report
