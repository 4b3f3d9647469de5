"""`bertless serve [BUNDLE]`: the bundle behind the HTTP contract on this machine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bertless.cli.env import add
from bertless.cli.export import DEFAULT_BUNDLE
from bertless.cli.training import above_zero


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `serve` on the CLI's subcommands."""
    p = sub.add_parser("serve", help="Serve a bundle locally through functions-framework.")
    # BERTLESS_BUNDLE is also where a deployed function finds its bundle: one meaning, one name.
    add(
        p,
        "bundle",
        env="BERTLESS_BUNDLE",
        default=str(DEFAULT_BUNDLE),
        help=f"the bundle directory to serve (default {DEFAULT_BUNDLE})",
    )
    add(p, "--host", env="BERTLESS_HOST", default="127.0.0.1", help="default 127.0.0.1")
    add(p, "--port", env="BERTLESS_PORT", type=int, default=8080, help="default 8080")
    add(
        p,
        "--workers",
        env="BERTLESS_WORKERS",
        type=int,
        default=1,
        help="processes, each with its own model (default 1)",
    )
    add(
        p,
        "--metrics",
        env="BERTLESS_METRICS",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve GET /metrics in Prometheus format (default on; off on functions)",
    )
    add(
        p,
        "--read-timeout",
        env="BERTLESS_READ_TIMEOUT",
        type=above_zero,
        default=60.0,
        help="seconds a request's head may take to arrive, and then its body; a later one "
        "gets 408 (default 60)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Say where it serves, then serve until interrupted.

    A path that holds no bundle at all (a typo, a model folder) is refused before the server
    starts: served, it answered every request with 503 and never exited. A bundle whose files
    are damaged is still served, answering 503s that say why, as a deployed function does."""
    from bertless.core.bundle import read_manifest
    from bertless.local.serve import serve

    read_manifest(args.bundle)
    # The workers' services read it (core.config), as a deployed function does.
    os.environ["BERTLESS_METRICS"] = "1" if args.metrics else "0"
    os.environ["BERTLESS_READ_TIMEOUT"] = str(args.read_timeout)

    print(
        f"bertless: serving {args.bundle} on http://{args.host}:{args.port} "
        f"({args.workers} worker(s))",
        file=sys.stderr,
    )
    serve(Path(args.bundle), args.host, args.port, args.workers)
    return 0
