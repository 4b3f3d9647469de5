"""`bertless train`, `bertless distill` and `bertless build-sentiment`: parsing and printing only.

Each writes into --out a `model/` folder (Hugging Face), a `bundle/`, and `report.json`, and
prints the report as a table. Every flag's default is read from `BERTLESS_<FLAG>` when set
(`--epochs` / `BERTLESS_EPOCHS`), as the other commands do.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from bertless.cli.env import env, env_flag
from bertless.models.data import DATASET_SCHEME
from bertless.models.sentiment import BUNDLE, WORK

DATA_HELP = (
    f"a CSV, TSV, JSONL or Parquet file, or {DATASET_SCHEME}movies|tweets|products|news|all "
    "for the offline sentiment dataset (Hutto & Gilbert 2014)"
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `train`, `distill` and `build-sentiment` on the `bertless` parser."""
    _add_train(sub)
    _add_distill(sub)
    _add_build_sentiment(sub)


def _common(
    p: argparse.ArgumentParser, epochs: int, max_length: int, out: Path | None = None
) -> None:
    default = env("out", out and str(out))
    p.add_argument(
        "--out",
        required=default is None,
        default=default,
        help="output directory" + (f" (default {out})" if out else ""),
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=env("epochs", epochs),
        help=f"passes over the data (default {epochs}; early stopping may end sooner)",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=env("max_length", max_length),
        help=f"tokens per training text; longer ones are cut (default {max_length})",
    )
    p.add_argument("--seed", type=int, default=env("seed", 0), help="random seed (default 0)")
    p.add_argument(
        "--quiet", action="store_true", default=env_flag("quiet"), help="no progress bars"
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="Fine-tune an encoder with a classification head.")
    p.add_argument(
        "model",
        nargs="?",
        default=env("model"),
        help="a local Hugging Face model folder (default: built-in all-MiniLM-L6-v2)",
    )
    p.add_argument("data", help=DATA_HELP)
    p.add_argument(
        "--task",
        default=env("task", "text-classification"),
        choices=["text-classification"],
        help="what to train (default and only choice)",
    )
    p.add_argument("--text-column", default=env("text_column", "text"))
    p.add_argument(
        "--pair-column",
        default=env("pair_column"),
        help="a second text column, for text-pair tasks",
    )
    p.add_argument("--label-column", default=env("label_column", "label"))
    p.add_argument(
        "--eval",
        default=env("eval"),
        help="a held-out labelled file for the report (default: the validation split)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=env("limit"),
        help="train on at most this many examples (a stratified sample)",
    )
    p.add_argument("--batch-size", type=int, default=env("batch_size", 32))
    p.add_argument("--learning-rate", type=float, default=env("learning_rate", 1e-4))
    _common(p, epochs=2, max_length=128)
    p.set_defaults(run=cmd_train)


def _add_distill(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="Distill a teacher into a smaller student, then export it.")
    p.add_argument(
        "teacher",
        nargs="?",
        default=env("teacher"),
        help="a Hugging Face folder or a bundle (default: built-in all-MiniLM-L6-v2)",
    )
    p.add_argument("unlabelled", help=DATA_HELP + ", or a .txt file with one text per line")
    student = p.add_mutually_exclusive_group()
    student.add_argument(
        "--student-layers",
        type=int,
        default=env("student_layers", 3),
        help="keep this many of the teacher's layers, evenly spaced (default 3)",
    )
    student.add_argument(
        "--student",
        default=env("student"),
        help="a smaller Hugging Face folder to use as the student instead",
    )
    p.add_argument(
        "--task",
        default=env("task"),
        choices=["feature-extraction", "text-classification"],
        help="the teacher folder's task (default: read from it)",
    )
    p.add_argument("--text-column", default=env("text_column", "text"))
    p.add_argument(
        "--limit",
        type=int,
        default=env("limit"),
        help="use at most this many texts (a random sample)",
    )
    p.add_argument("--learning-rate", type=float, default=env("learning_rate", 1e-4))
    p.add_argument(
        "--temperature",
        type=float,
        default=env("temperature", 2.0),
        help="softens the teacher's probabilities for a classifier (default 2)",
    )
    p.add_argument(
        "--eval",
        default=env("eval"),
        help="a held-out labelled file for the report (single-label classifiers; default: "
        "agreement with the teacher on held-out texts)",
    )
    p.add_argument("--label-column", default=env("label_column", "label"))
    p.add_argument(
        "--quantize",
        default=env("quantize"),
        choices=["int8"],
        help="export the student with int8 weights",
    )
    _common(p, epochs=2, max_length=128)
    p.set_defaults(run=cmd_distill)


def _add_build_sentiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-sentiment",
        help="Build the built-in English sentiment classifier: fine-tune MiniLM on movie-review "
        "snippets, distill it on texts of every domain, report, and install the student.",
    )
    p.add_argument(
        "model",
        nargs="?",
        default=env("model"),
        help="the encoder to fine-tune, a local Hugging Face folder (default: built-in "
        "all-MiniLM-L6-v2)",
    )
    layers = str(env("student_layers", "3")).replace(",", " ").split()
    p.add_argument(
        "--student-layers",
        type=int,
        nargs="+",
        default=[int(n) for n in layers],
        help="one student per count; the first is the bundle to serve (default 3)",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=env("train_size"),
        help="movie snippets the teacher learns from (default: all not held out, 9,605; a "
        "tenth of them decide early stopping)",
    )
    p.add_argument(
        "--distill-size",
        type=int,
        default=env("distill_size", 6000),
        help="unlabelled texts the students learn from, an equal share from each domain, none "
        "of them held out for judging (default 6000)",
    )
    p.add_argument(
        "--eval-size",
        type=int,
        default=env("eval_size", 1000),
        help="held-out texts per domain (default 1000)",
    )
    p.add_argument(
        "--quantize",
        default=env("quantize", "int8"),
        choices=["int8", "none"],
        help="the students' weights (default int8; none keeps fp32)",
    )
    p.add_argument(
        "--install",
        default=env("install", str(BUNDLE)),
        help=f"where the first student's bundle is copied for serving (default {BUNDLE})",
    )
    _common(p, epochs=1, max_length=64, out=WORK)
    p.set_defaults(run=cmd_build_sentiment)


def cmd_train(args: argparse.Namespace) -> int:
    from bertless.core.predictor import Predictor
    from bertless.models.data import load_labelled
    from bertless.models.export import export
    from bertless.models.report import classification_quality, measure
    from bertless.models.train import train

    out, console = Path(args.out), _console()
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
    export(trained.folder, out / "bundle", step=_step(console))
    sets = {"eval": held} if held else {"validation": trained.validation}
    quality = classification_quality(Predictor.load(out / "bundle"), sets)
    texts = next(iter(sets.values())).texts
    row = measure(Path(args.model or "all-MiniLM-L6-v2").name, out / "bundle", quality, texts)
    _finish(console, out, [row], "trained model", {"fit": _fit(trained.fit)})
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    import random

    from bertless.core.errors import InputError
    from bertless.core.predictor import Predictor
    from bertless.models.data import Labelled, load_labelled, load_texts
    from bertless.models.distill import Teacher, distill
    from bertless.models.report import (
        classification_quality,
        label_agreement,
        measure,
        similarity_quality,
    )

    out, console = Path(args.out), _console()
    step = _step(console)
    texts = load_texts(args.unlabelled, args.text_column)
    if args.limit and args.limit < len(texts):
        texts = random.Random(args.seed).sample(texts, args.limit)
    teacher = Teacher.prepare(args.teacher, out / "teacher", args.task, step)
    multi_label = teacher.manifest.problem_type == "multi_label_classification"
    if args.eval and multi_label:
        raise InputError(
            f"{teacher.manifest.model_id} is a multi-label classifier, and --eval reads a "
            "labelled file for single-label classifiers only: leave out --eval to report how "
            "well the student agrees with its teacher on held-out texts."
        )
    distilled = distill(
        teacher,
        texts,
        out,
        student=args.student,
        student_layers=args.student_layers,
        epochs=args.epochs,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
        temperature=args.temperature,
        quantize=args.quantize,
        seed=args.seed,
        show_progress=not args.quiet,
        step=step,
    )
    console.print(
        f"[green]student written[/] to {distilled.folder} and {distilled.bundle}: held-out "
        f"distance to the teacher {distilled.distance_before:.4g} → {distilled.distance_after:.4g}"
    )
    step("measuring quality, size and speed")
    mine, theirs = Predictor.load(distilled.bundle), Predictor.load(teacher.bundle)
    if teacher.manifest.task == "feature-extraction":
        qualities = [similarity_quality(p, theirs, distilled.held_out) for p in (theirs, mine)]
    elif multi_label:  # each label a yes or no of its own: compare the decisions per label
        qualities = [label_agreement(p, theirs, distilled.held_out) for p in (theirs, mine)]
    else:
        if args.eval:
            sets = {
                "eval": load_labelled(
                    args.eval, args.text_column, args.label_column, labels=teacher.manifest.labels
                )
            }
        else:  # without labels, the teacher's own answers are the truth to agree with
            said = theirs.classify(distilled.held_out, truncate=True).values.argmax(axis=1)
            labels = teacher.manifest.labels
            sets = {"agreement": Labelled(distilled.held_out, said.tolist(), labels)}
        qualities = [classification_quality(p, sets) for p in (theirs, mine)]
    rows = [
        measure(name, bundle, quality, distilled.held_out)
        for name, bundle, quality in zip(
            ("teacher", "student"), (teacher.bundle, distilled.bundle), qualities, strict=True
        )
    ]
    extra = {
        "fit": _fit(distilled.fit),
        "distance_before": distilled.distance_before,
        "distance_after": distilled.distance_after,
    }
    _finish(console, out, rows, "teacher and student", extra)
    return 0


def cmd_build_sentiment(args: argparse.Namespace) -> int:
    from bertless.models.report import render
    from bertless.models.sentiment import build_sentiment, install
    from bertless.models.vader import CITATION

    out, console = Path(args.out), _console()
    built = build_sentiment(
        out,
        args.model,
        student_layers=args.student_layers,
        train_size=args.train_size,
        distill_size=args.distill_size,
        eval_size=args.eval_size,
        epochs=args.epochs,
        max_length=args.max_length,
        quantize=None if args.quantize == "none" else args.quantize,
        seed=args.seed,
        show_progress=not args.quiet,
        step=_step(console),
    )
    console.print(render(built.rows, "English sentiment: teacher and distilled students"))
    console.print(", ".join(f"{k} {v:.0f} s" for k, v in built.seconds.items()))
    served = install(built.bundle, Path(args.install))
    console.print(f"[green]sentiment bundle[/]: {served}; report: {out / 'report.json'}")
    console.print(f"[dim]data: {CITATION}")
    return 0


def _console():
    from rich.console import Console

    return Console()


def _step(console):
    return lambda what: console.print(f"[dim]{what}…")


def _fit(fitted) -> dict:
    return {
        "checks": [asdict(c) for c in fitted.checks],
        "best_step": fitted.best.step,
        "stopped_early": fitted.stopped_early,
        "seconds": fitted.seconds,
    }


def _finish(console, out: Path, rows: list, title: str, extra: dict) -> None:
    from bertless.models.report import render, to_json

    (out / "report.json").write_text(json.dumps(to_json(rows) | extra, indent=2))
    console.print(render(rows, title))
    console.print(f"report: {out / 'report.json'}")
