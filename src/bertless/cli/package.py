"""`bertless package {aws,gcp,azure} BUNDLE`: the CLI's glue to `bertless.packaging.package`.

Every flag's default is the environment variable of the same name (`--memory` /
`BERTLESS_MEMORY`), as functions-framework does, so a CI job can set them once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertless.cli.env import env, env_flag
from bertless.packaging.layouts import LAYOUTS

DEFAULT_OUT = "build/artifacts"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `package` on the CLI's subcommands."""
    p = sub.add_parser(
        "package",
        help="Build a zip for one cloud, checked against its limits and proven before upload.",
        description="Build a deployment zip of a bundle for one cloud, with the runtime wheels "
        "for the target platform; refuse it if it breaks a platform limit, prove it in a clean "
        "interpreter, and write a report of what takes the space beside it.",
    )
    p.add_argument("cloud", choices=sorted(LAYOUTS), help="the platform to package for")
    p.add_argument(
        "bundle",
        nargs="?" if env("bundle") else None,
        default=env("bundle"),
        help="the bundle directory (made by `bertless export`)",
    )
    p.add_argument("--out", default=env("out", DEFAULT_OUT), help="where the zip and report go")
    p.add_argument(
        "--python",
        default=env("python", "3.12"),
        help="the platform's Python version (default 3.12)",
    )
    p.add_argument(
        "--arch",
        default=env("arch", "x86_64"),
        choices=["x86_64", "arm64"],
        help="the function's CPU (arm64 on AWS only)",
    )
    p.add_argument(
        "--memory",
        type=int,
        default=env("memory"),
        help="memory setting in MB (default: the smallest that holds the measured peak)",
    )
    p.add_argument(
        "--no-proof",
        action="store_true",
        default=env_flag("no_proof"),
        help="skip running the artifact in a clean interpreter before it is written",
    )
    p.add_argument(
        "--wheel-cache",
        default=env("wheel_cache"),
        help="wheel cache (default ~/.cache/bertless/wheels)",
    )
    p.add_argument(
        "--refresh-wheels",
        action="store_true",
        default=env_flag("refresh_wheels"),
        help="resolve the runtime wheels again instead of reusing the cached resolution",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Package, then print the space and limits tables, the warnings and the proof."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bertless.packaging.package import package
    from bertless.packaging.report import Report, render, warning_text

    console = Console()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"packaging {args.bundle} for {args.cloud}", total=None)
        artifact = package(
            args.cloud,
            Path(args.bundle),
            Path(args.out),
            python=args.python,
            arch=args.arch,
            memory_mb=int(args.memory) if args.memory else None,
            prove=not args.no_proof,
            progress=lambda what: progress.update(task, description=what),
            wheel_cache=Path(args.wheel_cache) if args.wheel_cache else None,
            refresh_wheels=args.refresh_wheels,
        )
    report = Report.read(artifact.report_path)
    for table in render(report):
        console.print(table)
    for check in report.warnings:
        console.print(f"[yellow]warning[/]: {warning_text(check)}")
    proof = report.proof
    colour = "green" if proof["status"] == "passed" else "yellow"
    console.print(f"[{colour}]proof {proof['status']}[/]: {proof['reason']}")
    console.print(
        f"[green]artifact[/] {artifact.path} (entry point {artifact.entry_point}, "
        f"{artifact.memory_mb} MB, upload: {report.upload}), sha256 {artifact.sha256}"
    )
    return 0
