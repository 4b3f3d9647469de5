"""What `train`, `distill` and `build-sentiment` share: their common flags and their printing."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from bertless.cli.env import add
from bertless.models.data import DATASET_SCHEME

DATA_HELP = (
    f"a CSV, TSV, JSONL or Parquet file, or {DATASET_SCHEME}movies|tweets|products|news|all "
    "for the offline sentiment dataset (Hutto & Gilbert 2014)"
)


def common_flags(
    p: argparse.ArgumentParser, epochs: int | None, max_length: int, out: Path | None = None
) -> None:
    """The flags every training command shares; `epochs` None leaves the default to the
    student (see cli/distill.py STUDENTS)."""
    add(
        p,
        "--out",
        env="BERTLESS_WORK_DIR",
        required=out is None,
        default=out and str(out),
        type=work_dir,
        help="where model/, bundle/ and report.json go" + (f" (default {out})" if out else ""),
    )
    add(
        p,
        "--epochs",
        env="BERTLESS_EPOCHS",
        type=at_least_one,
        default=epochs,
        help=f"passes over the data (default {epochs or 'per --student'}; early stopping may "
        "end sooner)",
    )
    add(
        p,
        "--max-length",
        env="BERTLESS_TRAIN_MAX_LENGTH",
        type=at_least_one,
        default=max_length,
        help=f"tokens per training text; longer ones are cut (default {max_length})",
    )
    add(p, "--seed", env="BERTLESS_SEED", type=int, default=0, help="random seed (default 0)")
    add(p, "--quiet", env="BERTLESS_QUIET", action="store_true", help="no progress bars")


def at_least_one(text: str) -> int:
    """A count (texts, epochs, tokens): 0 or less was a traceback from deep in the training, or
    an empty run, instead of a sentence as the command line is read."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def above_zero(text: str) -> float:
    """A rate or a temperature: 0 trains nothing or divides by zero, a negative one trains
    backwards."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def work_dir(value: str) -> str:
    """--out, refused as the command line is read when it or a folder above it is a file:
    otherwise the first write into it fails, after the teacher's export or the training."""
    path = Path(value)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise argparse.ArgumentTypeError(f"{place} is a file, not a folder to write into")
            break
    return value


def model_argument(p: argparse.ArgumentParser, help: str) -> None:
    add(p, "model", env="BERTLESS_MODEL", help=help + " (default: built-in all-MiniLM-L6-v2)")


def column_flags(p: argparse.ArgumentParser, pair: bool) -> None:
    add(p, "--text-column", env="BERTLESS_TEXT_COLUMN", default="text", help="default: text")
    if pair:
        add(p, "--pair-column", env="BERTLESS_PAIR_COLUMN", help="a second text, for text pairs")
    add(p, "--label-column", env="BERTLESS_LABEL_COLUMN", default="label", help="default: label")


def learning_flags(
    p: argparse.ArgumentParser, limit: str, evaluation: str, rate: float | None = 1e-4
) -> None:
    """--limit, --learning-rate (None: the default is the student's) and --eval."""
    add(
        p, "--limit", env="BERTLESS_LIMIT", type=at_least_one, help=f"use at most this many {limit}"
    )
    said = f"default {rate or 'per --student'}"
    add(
        p, "--learning-rate", env="BERTLESS_LEARNING_RATE", type=above_zero, default=rate, help=said
    )
    add(p, "--eval", env="BERTLESS_EVAL", help="a held-out labelled file to report on" + evaluation)


def new_console():
    """A rich console, imported only when a command runs (not for `--help`)."""
    from rich.console import Console

    return Console()


def step_printer(console):
    """The `step` callback the models' functions report their stages to, printed as written
    (escaped: a stage may name `model2vec[distill]` or a path with brackets)."""
    from rich.markup import escape

    return lambda what: console.print(f"[dim]{escape(what)}…")


def fit_summary(fitted) -> dict:
    """A training run's checks, best step and time, for report.json."""
    return {
        "checks": [asdict(c) for c in fitted.checks],
        "best_step": fitted.best.step,
        "stopped_early": fitted.stopped_early,
        "seconds": fitted.seconds,
    }


def finish(console, out: Path, rows: list, title: str, extra: dict) -> None:
    """Write report.json (rows, limits and `extra`) and print the rows as a table."""
    from bertless.models.report import render, to_json

    (out / "report.json").write_text(json.dumps(to_json(rows) | extra, indent=2))
    console.print(render(rows, title))
    console.print(f"report: {out / 'report.json'}")
