"""`bertless train` and `bertless build-sentiment` (`bertless distill` is in distill.py, registered
here too): parsing and printing only.

Each writes into --out a `model/` folder (Hugging Face), a `bundle/`, and `report.json`, and
prints the report as a table. Every flag has an environment variable, named in its help
(`--epochs` / `BERTLESS_EPOCHS`), as in the other commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertless.cli import distill
from bertless.cli.env import add
from bertless.cli.training import (
    DATA_HELP,
    column_flags,
    common_flags,
    finish,
    fit_summary,
    learning_flags,
    model_argument,
    new_console,
    step_printer,
)
from bertless.models.sentiment import BUNDLE, WORK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `train`, `distill` and `build-sentiment` on the `bertless` parser."""
    _add_train(sub)
    distill.add_parser(sub)
    _add_build_sentiment(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="Fine-tune an encoder with a classification head.")
    model_argument(p, "a local Hugging Face model folder")
    p.add_argument("data", help=DATA_HELP)
    add(
        p,
        "--task",
        env="BERTLESS_TASK",
        default="text-classification",
        choices=["text-classification"],
        help="what to train (default and only choice)",
    )
    column_flags(p, pair=True)
    learning_flags(p, "examples (a stratified sample)", " (default: the validation split)")
    add(
        p,
        "--batch-size",
        env="BERTLESS_TRAIN_BATCH_SIZE",
        type=int,
        default=32,
        help="examples per training step (default 32)",
    )
    common_flags(p, epochs=2, max_length=128)
    p.set_defaults(run=cmd_train)


def _add_build_sentiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-sentiment",
        help="Build the built-in English sentiment classifier: fine-tune MiniLM on movie-review "
        "snippets, distill it on texts of every domain, report, and install the student.",
    )
    model_argument(p, "the encoder to fine-tune, a local Hugging Face folder")
    add(
        p,
        "--student-layers",
        env="BERTLESS_SENTIMENT_STUDENT_LAYERS",
        type=int,
        nargs="+",
        default=[3],
        help="one student per count; the first is the bundle to serve (default 3)",
    )
    add(
        p,
        "--bilstm",
        env="BERTLESS_SENTIMENT_BILSTM",
        action="store_true",
        help="also distill a BiLSTM student (the teacher's embeddings, PCA to 128 dimensions, "
        "under 128 LSTM units each way) and report it beside the others",
    )
    add(
        p,
        "--train-size",
        env="BERTLESS_TRAIN_SIZE",
        type=int,
        help="movie snippets the teacher learns from (default: all not held out, 9,605; a "
        "tenth of them decide early stopping)",
    )
    add(
        p,
        "--distill-size",
        env="BERTLESS_DISTILL_SIZE",
        type=int,
        default=6000,
        help="unlabelled texts the students learn from, an equal share from each domain, none "
        "of them held out for judging (default 6000)",
    )
    add(
        p,
        "--eval-size",
        env="BERTLESS_EVAL_SIZE",
        type=int,
        default=1000,
        help="held-out texts per domain (default 1000)",
    )
    add(
        p,
        "--quantize",
        env="BERTLESS_QUANTIZE",
        default="int8",
        choices=["int8", "none"],
        help="the students' weights (default int8; none keeps fp32)",
    )
    add(
        p,
        "--install",
        env="BERTLESS_INSTALL",
        default=str(BUNDLE),
        help=f"where the first student's bundle is copied for serving (default {BUNDLE})",
    )
    common_flags(p, epochs=1, max_length=64, out=WORK)
    p.set_defaults(run=cmd_build_sentiment)


def cmd_train(args: argparse.Namespace) -> int:
    from bertless.core.predictor import Predictor
    from bertless.models.data import load_labelled
    from bertless.models.export import export
    from bertless.models.report import classification_quality, measure
    from bertless.models.train import train

    out, console = Path(args.out), new_console()
    data = load_labelled(args.data, args.text_column, args.label_column, args.pair_column)
    data = data.sample(args.limit, args.seed)
    held = None
    if args.eval:
        held = load_labelled(
            args.eval, args.text_column, args.label_column, args.pair_column, labels=data.names
        )
    trained = train(
        data,
        out / "model",
        args.model,
        epochs=args.epochs,
        max_length=args.max_length,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        show_progress=not args.quiet,
    )
    best = trained.fit.best
    console.print(
        f"[green]model written[/] to {trained.folder}: validation macro-F1 {best.score:.3f} "
        f"at epoch {best.epoch:.1f}" + (" (stopped early)" if trained.fit.stopped_early else "")
    )
    export(trained.folder, out / "bundle", step=step_printer(console))
    sets = {"eval": held} if held else {"validation": trained.validation}
    quality = classification_quality(Predictor.load(out / "bundle"), sets)
    texts = next(iter(sets.values())).texts
    row = measure(Path(args.model or "all-MiniLM-L6-v2").name, out / "bundle", quality, texts)
    finish(console, out, [row], "trained model", {"fit": fit_summary(trained.fit)})
    return 0


def cmd_build_sentiment(args: argparse.Namespace) -> int:
    from bertless.models.report import render
    from bertless.models.sentiment import BiLSTMRecipe, build_sentiment, install
    from bertless.models.vader import CITATION

    out, console = Path(args.out), new_console()
    built = build_sentiment(
        out,
        args.model,
        student_layers=args.student_layers,
        bilstm=BiLSTMRecipe() if args.bilstm else None,
        train_size=args.train_size,
        distill_size=args.distill_size,
        eval_size=args.eval_size,
        epochs=args.epochs,
        max_length=args.max_length,
        quantize=None if args.quantize == "none" else args.quantize,
        seed=args.seed,
        show_progress=not args.quiet,
        step=step_printer(console),
    )
    console.print(render(built.rows, "English sentiment: teacher and distilled students"))
    console.print(", ".join(f"{k} {v:.0f} s" for k, v in built.seconds.items()))
    served = install(built.bundle, Path(args.install))
    console.print(f"[green]sentiment bundle[/]: {served}; report: {out / 'report.json'}")
    console.print(f"[dim]data: {CITATION}")
    return 0
