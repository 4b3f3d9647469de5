"""`bertless package {aws,gcp,azure} BUNDLE`: the CLI's glue to `bertless.packaging.package`.

Every flag has an environment variable, named in `--help` (`--out` / `BERTLESS_ARTIFACT_DIR`), so a
CI job can set them once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bertless.cli.env import add
from bertless.packaging.layouts import LAYOUTS
from bertless.packaging.registry_login import LOGINS

DEFAULT_OUT = "build/artifacts"
REGISTRY_USER, REGISTRY_PASSWORD = "BERTLESS_REGISTRY_USER", "BERTLESS_REGISTRY_PASSWORD"
ARCHES = ["x86_64", "arm64"]


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
    add(
        p,
        "bundle",
        env="BERTLESS_BUNDLE",
        required=True,
        help="the bundle directory (made by `bertless export`)",
    )
    add_artifact_flags(p)
    add(
        p,
        "--memory",
        env="BERTLESS_MEMORY",
        type=int,
        help="the function's memory in MB (default: the smallest that holds the measured peak)",
    )
    add(
        p,
        "--concurrency",
        env="BERTLESS_CONCURRENCY",
        type=int,
        default=1,
        help="requests an instance takes at once (gcp, azure): memory is sized for all of them",
    )
    add(
        p,
        "--no-proof",
        env="BERTLESS_NO_PROOF",
        action="store_true",
        help="skip running the artifact in a clean interpreter before it is written",
    )
    add(
        p,
        "--wheel-cache",
        env="BERTLESS_WHEEL_CACHE",
        help="wheel cache (default ~/.cache/bertless/wheels)",
    )
    add(
        p,
        "--refresh-wheels",
        env="BERTLESS_REFRESH_WHEELS",
        action="store_true",
        help="resolve the runtime wheels again instead of reusing the cached resolution",
    )
    add(
        p,
        "--format",
        env="BERTLESS_FORMAT",
        choices=["zip", "image"],
        default="zip",
        help="zip (default), or an OCI image built with no daemon",
    )
    add(
        p,
        "--base",
        env="BERTLESS_IMAGE_BASE",
        help="image: the base, a registry reference or an OCI layout folder (default: the "
        "platform's, e.g. public.ecr.aws/lambda/python:PYTHON)",
    )
    add(
        p,
        "--push",
        env="BERTLESS_IMAGE_PUSH",
        help="image: push to this reference, HOST[:PORT]/NAME[:TAG] (registry credentials from "
        "BERTLESS_REGISTRY_USER and BERTLESS_REGISTRY_PASSWORD)",
    )
    add(
        p,
        "--registry-login",
        env="BERTLESS_REGISTRY_LOGIN",
        choices=list(LOGINS),
        help="image: how to log in to the --push registry: password (the two variables above), "
        "ecr (GetAuthorizationToken), gcp (a Google access token), acr (an Entra token "
        "exchanged); default: from its host",
    )
    add(
        p,
        "--mount-from",
        env="BERTLESS_IMAGE_MOUNT_FROM",
        help="image: a repository of the --push registry holding earlier layers; blobs it has are "
        "mounted from it, not sent",
    )
    p.set_defaults(run=run)


def add_artifact_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags of the artifact to build, shared with `deploy` (which packages a bundle)."""
    add(
        p,
        "--out",
        env="BERTLESS_ARTIFACT_DIR",
        default=DEFAULT_OUT,
        help=f"where the zip and its report go (default {DEFAULT_OUT})",
    )
    add(
        p,
        "--python",
        env="BERTLESS_PYTHON",
        default="3.12",
        help="the platform's Python version (default 3.12)",
    )
    add(
        p,
        "--arch",
        env="BERTLESS_ARCH",
        default="x86_64",
        choices=ARCHES,
        help="the function's CPU (default x86_64; arm64 on AWS only)",
    )
    add(
        p,
        "--layers",
        env="BERTLESS_LAYERS",
        action="store_true",
        help="AWS: put the runtime in a Lambda layer zip even when one zip would upload directly",
    )


def run(args: argparse.Namespace) -> int:
    """Package, then print the space and limits tables, the warnings and the proof."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bertless.packaging.package import package
    from bertless.packaging.report import Report, render, warning_text

    console = Console()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    if args.format == "image":
        return _image(args, console, Progress(*columns, console=console, transient=True))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"packaging {args.bundle} for {args.cloud}", total=None)
        artifact = package(
            args.cloud,
            Path(args.bundle),
            Path(args.out),
            python=args.python,
            arch=args.arch,
            memory_mb=args.memory,
            prove=not args.no_proof,
            progress=lambda what: progress.update(task, description=what),
            wheel_cache=Path(args.wheel_cache) if args.wheel_cache else None,
            refresh_wheels=args.refresh_wheels,
            layers=args.layers,
            concurrency=args.concurrency,
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


def _image(args: argparse.Namespace, console: Any, progress: Any) -> int:
    """Build (and push) the image; print its digest, sizes and where it went."""
    import os

    from bertless.packaging.image import build_image

    user, password = os.environ.get(REGISTRY_USER), os.environ.get(REGISTRY_PASSWORD)
    with progress:
        task = progress.add_task(f"building an image of {args.bundle}", total=None)
        build = build_image(
            args.cloud,
            Path(args.bundle),
            Path(args.out),
            base=args.base,
            push=args.push,
            python=args.python,
            arch=args.arch,
            say=lambda what: progress.update(task, description=what),
            credentials=(user, password) if user and password else None,
            registry_login=args.registry_login,
            mount_from=(args.mount_from,) if args.mount_from else (),
        )
    for name, layer in zip(("runtime", "function"), build.layers, strict=True):
        console.print(
            f"layer {name}: {layer['digest']}, {int(layer['compressed']) / 2**20:.1f} MB "
            f"compressed, {int(layer['uncompressed']) / 2**20:.1f} MB uncompressed"
        )
    console.print(f"image {build.digest}: {build.uncompressed_bytes / 2**20:.1f} MB unpacked")
    console.print(f"[green]OCI layout[/] {build.layout} (base {build.base})")
    if build.pushed_to:
        sent = f"{build.pushed_bytes / 2**20:.1f} MB sent"
        mounted = f", {len(build.mounted)} blobs mounted" if build.mounted else ""
        console.print(f"pushed {build.pushed_to}: {sent}{mounted}")
    return 0
