"""`bertless ...`: parses arguments, shows progress, and calls the parts. Nothing else.

Every flag has an environment variable of the same name (`--port` / `BERTLESS_PORT`), as
functions-framework does, so the same command works in a shell and in a container.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bertless.cli.env import env, env_flag
from bertless.core.errors import BertlessError

DEFAULT_BUNDLE = Path("build/bundles/minilm")


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())


def cmd_export(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bertless.models.export import export

    with _progress() as progress:
        task = progress.add_task("starting", total=None)
        manifest = export(
            args.model,
            args.out,
            task=args.task,
            quantize=args.quantize,
            max_length=int(args.max_length) if args.max_length else None,
            step=lambda what: progress.update(task, description=what),
        )
        progress.update(task, description="done")
    parity = manifest.parity
    Console().print(
        f"[green]bundle written[/] to {args.out}: {manifest.model_id}, {manifest.task}, "
        f"{manifest.precision}, max length {manifest.max_length}; parity vs PyTorch "
        f"({parity.metric}) min {parity.min:.5f} mean {parity.mean:.5f}"
    )
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="Export a Hugging Face checkpoint folder to a bundle.")
    p.add_argument(
        "model",
        nargs="?",
        default=env("model"),
        help="a local Hugging Face model folder (default: built-in all-MiniLM-L6-v2)",
    )
    p.add_argument("--out", default=env("out", str(DEFAULT_BUNDLE)), help="bundle directory")
    p.add_argument(
        "--task",
        default=env("task"),
        choices=["feature-extraction", "text-classification"],
        help="default: read from the checkpoint",
    )
    p.add_argument(
        "--quantize",
        default=env("quantize"),
        choices=["int8"],
        help="dynamic per-channel int8 weights (parity is measured and recorded)",
    )
    p.add_argument(
        "--max-length",
        default=env("max_length"),
        type=int,
        help="max tokens per input (default: the checkpoint's)",
    )
    p.set_defaults(run=cmd_export)


def cmd_serve(args: argparse.Namespace) -> int:
    from bertless.local.serve import serve

    print(
        f"bertless: serving {args.bundle} on http://{args.host}:{args.port} "
        f"({args.workers} worker(s))",
        file=sys.stderr,
    )
    serve(Path(args.bundle), args.host, int(args.port), int(args.workers))
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="Serve a bundle locally through functions-framework.")
    p.add_argument("bundle", nargs="?", default=env("bundle", str(DEFAULT_BUNDLE)))
    p.add_argument("--host", default=env("host", "127.0.0.1"))
    p.add_argument("--port", type=int, default=env("port", 8080))
    p.add_argument(
        "--workers",
        type=int,
        default=env("workers", 1),
        help="processes, each with its own model (default 1)",
    )
    p.set_defaults(run=cmd_serve)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from bertless.cli.quickstart import quickstart

    return quickstart(
        Path(args.out),
        int(args.port),
        int(args.requests),
        int(args.memory),
        sentiment=not args.no_sentiment,
    )


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="Export the built-in model, serve it, answer samples, and price it per cloud.",
    )
    p.add_argument("--out", default=env("out", str(DEFAULT_BUNDLE)))
    p.add_argument("--port", type=int, default=env("port", 8080))
    p.add_argument("--requests", type=int, default=env("requests", 200))
    p.add_argument(
        "--memory",
        type=int,
        default=env("memory", 1024),
        help="MB the cost table prices (default 1024)",
    )
    p.add_argument(
        "--no-sentiment",
        action="store_true",
        default=env_flag("no_sentiment"),
        help="skip the sentiment classifier (built on first run: a few minutes)",
    )
    p.set_defaults(run=cmd_quickstart)


def _add_package(sub: argparse._SubParsersAction) -> None:
    from bertless.cli.package import add_parser

    add_parser(sub)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from bertless.cli.bench import add_parsers

    add_parsers(sub)


def _add_batch(sub: argparse._SubParsersAction) -> None:
    from bertless.cli.batch import add_parser

    add_parser(sub)


def _add_models(sub: argparse._SubParsersAction) -> None:
    from bertless.cli.models import add_parsers

    add_parsers(sub)


def _add_deploy(sub: argparse._SubParsersAction) -> None:
    from bertless.cli.deploy import add_parser

    add_parser(sub)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_export,
    _add_serve,
    _add_package,
    _add_deploy,
    _add_bench,
    _add_batch,
    _add_models,
    _add_quickstart,
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bertless",
        description="Serve BERT-style text models on AWS Lambda, Google Cloud Functions and "
        "Azure Functions from one ONNX bundle.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BertlessError as error:
        print(f"bertless {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
