"""`bertless ...`: assembles the subcommands, one module each; a failure becomes one sentence.

Each module registers its parser (`add_parser`) and runs its command; building the parsers imports
no optional dependency, so `bertless --help` works on the smallest install. Every flag has an
environment variable, named in its `--help` (see `bertless.cli.env`).
"""

from __future__ import annotations

import argparse
import sys

from bertless.cli import (
    batch,
    bench,
    compare,
    deploy,
    export,
    models,
    package,
    quickstart,
    rollout,
    serve,
    template,
)
from bertless.cli.extras import missing_extra
from bertless.cli.tables import widen_for_logs
from bertless.core.config import ConfigError
from bertless.core.errors import BertlessError

COMMANDS = [
    export.add_parser,
    serve.add_parser,
    package.add_parser,
    deploy.add_parser,
    rollout.add_parsers,
    template.add_parser,
    bench.add_parsers,
    batch.add_parser,
    compare.add_parser,
    models.add_parsers,
    quickstart.add_parser,
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
    """Parse, run, and print a known failure as `bertless COMMAND: sentence` with exit code 2."""
    widen_for_logs()  # tables in a pipe or CI log are drawn wide enough to stay whole
    try:
        args = parser().parse_args(argv)
    except ConfigError as error:  # a variable that does not fit its flag
        print(f"bertless: {error}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except BertlessError as error:
        print(f"bertless {args.command}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        sentence = missing_extra(args.command, error.name or "")
        if sentence is None:
            raise  # not an optional dependency: a bug, whose traceback is the useful report
        print(sentence, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
