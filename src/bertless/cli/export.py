"""`bertless export [MODEL] --out BUNDLE`: a Hugging Face checkpoint to a bundle, with progress."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertless.cli.env import add
from bertless.cli.training import work_dir

DEFAULT_BUNDLE = Path("build/bundles/minilm")
TASKS = ["feature-extraction", "text-classification"]
# models.export.QUANTIZE's names, written out so that building the parser imports no model code.
QUANTIZE_NAMES = ["int8", "int8-fast"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `export` on the CLI's subcommands."""
    p = sub.add_parser("export", help="Export a Hugging Face checkpoint folder to a bundle.")
    add(
        p,
        "model",
        env="BERTLESS_MODEL",
        help="a local Hugging Face model folder (default: built-in all-MiniLM-L6-v2)",
    )
    add(
        p,
        "--out",
        env="BERTLESS_EXPORT_DIR",
        default=str(DEFAULT_BUNDLE),
        type=work_dir,
        help=f"the bundle directory to write (default {DEFAULT_BUNDLE})",
    )
    add(p, "--task", env="BERTLESS_TASK", choices=TASKS, help="default: read from the checkpoint")
    add(
        p,
        "--quantize",
        env="BERTLESS_QUANTIZE",
        choices=[*QUANTIZE_NAMES, "none"],
        help="int8: int8 weights but the attention's QKV in fp32 (closest to PyTorch); "
        "int8-fast: every projection in int8 (faster in bulk, further from PyTorch on short "
        "texts); parity measured and recorded (default none)",
    )
    add(
        p,
        "--max-length",
        env="BERTLESS_MAX_LENGTH",
        type=int,
        help="max tokens per input the bundle accepts (default: the checkpoint's)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export with a spinner naming each stage, then one line on the bundle and its parity."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bertless.models.export import export

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("starting", total=None)
        manifest = export(
            args.model,
            args.out,
            task=args.task,
            quantize=None if args.quantize == "none" else args.quantize,
            max_length=args.max_length,
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
