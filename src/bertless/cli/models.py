"""`bertless train`, `bertless distill` and `bertless build-sentiment`: parsing and printing only.

Each writes into --out a `model/` folder (Hugging Face), a `bundle/`, and `report.json`, and
prints the report as a table. Every flag has an environment variable, named in its help
(`--epochs` / `BERTLESS_EPOCHS`), as in the other commands.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from bertless.cli.env import add
from bertless.models.data import DATASET_SCHEME
from bertless.models.sentiment import BUNDLE, WORK

# Each kind of student's epochs and learning rate when the command line gives none: a layers
# student starts close to its teacher; a BiLSTM learns all but its embeddings from scratch, and
# an epoch of it costs seconds.
STUDENTS = {"layers": (2, 1e-4), "bilstm": (10, 2e-3), "static": (10, 0.01)}

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
    p: argparse.ArgumentParser, epochs: int | None, max_length: int, out: Path | None = None
) -> None:
    """The flags every training command shares; `epochs` None leaves the default to the
    student (see STUDENTS)."""
    add(
        p,
        "--out",
        env="BERTLESS_WORK_DIR",
        required=out is None,
        default=out and str(out),
        help="where model/, bundle/ and report.json go" + (f" (default {out})" if out else ""),
    )
    add(
        p,
        "--epochs",
        env="BERTLESS_EPOCHS",
        type=int,
        default=epochs,
        help=f"passes over the data (default {epochs or 'per --student'}; early stopping may "
        "end sooner)",
    )
    add(
        p,
        "--max-length",
        env="BERTLESS_TRAIN_MAX_LENGTH",
        type=int,
        default=max_length,
        help=f"tokens per training text; longer ones are cut (default {max_length})",
    )
    add(p, "--seed", env="BERTLESS_SEED", type=int, default=0, help="random seed (default 0)")
    add(p, "--quiet", env="BERTLESS_QUIET", action="store_true", help="no progress bars")


def _model(p: argparse.ArgumentParser, help: str) -> None:
    add(p, "model", env="BERTLESS_MODEL", help=help + " (default: built-in all-MiniLM-L6-v2)")


def _columns(p: argparse.ArgumentParser, pair: bool) -> None:
    add(p, "--text-column", env="BERTLESS_TEXT_COLUMN", default="text", help="default: text")
    if pair:
        add(p, "--pair-column", env="BERTLESS_PAIR_COLUMN", help="a second text, for text pairs")
    add(p, "--label-column", env="BERTLESS_LABEL_COLUMN", default="label", help="default: label")


def _learning(
    p: argparse.ArgumentParser, limit: str, evaluation: str, rate: float | None = 1e-4
) -> None:
    add(p, "--limit", env="BERTLESS_LIMIT", type=int, help=f"use at most this many {limit}")
    said = f"default {rate or 'per --student'}"
    add(p, "--learning-rate", env="BERTLESS_LEARNING_RATE", type=float, default=rate, help=said)
    add(p, "--eval", env="BERTLESS_EVAL", help="a held-out labelled file to report on" + evaluation)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="Fine-tune an encoder with a classification head.")
    _model(p, "a local Hugging Face model folder")
    p.add_argument("data", help=DATA_HELP)
    add(
        p,
        "--task",
        env="BERTLESS_TASK",
        default="text-classification",
        choices=["text-classification"],
        help="what to train (default and only choice)",
    )
    _columns(p, pair=True)
    _learning(p, "examples (a stratified sample)", " (default: the validation split)")
    add(
        p,
        "--batch-size",
        env="BERTLESS_TRAIN_BATCH_SIZE",
        type=int,
        default=32,
        help="examples per training step (default 32)",
    )
    _common(p, epochs=2, max_length=128)
    p.set_defaults(run=cmd_train)


def _add_distill(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="Distill a teacher into a smaller student, then export it.")
    add(
        p,
        "teacher",
        env="BERTLESS_TEACHER",
        help="a Hugging Face folder or a bundle (default: built-in all-MiniLM-L6-v2)",
    )
    p.add_argument("unlabelled", help=DATA_HELP + ", or a .txt file with one text per line")
    add(
        p,
        "--student",
        env="BERTLESS_STUDENT",
        choices=list(STUDENTS),
        default="layers",
        help="layers: the teacher with layers dropped (default; 2 epochs at 1e-4 unless told); "
        "bilstm: the teacher's embedding table under a small BiLSTM, for classifiers (10 epochs "
        "at 2e-3 unless told); static: one vector per token, averaged, trained on the teacher's "
        "embeddings, for embedding models, served in numpy without onnxruntime (10 epochs at "
        "0.01 unless told)",
    )
    layers = p.add_mutually_exclusive_group()
    add(
        layers,
        "--student-layers",
        env="BERTLESS_STUDENT_LAYERS",
        type=int,
        help="layers student: keep this many of the teacher's layers, evenly spaced (default 3)",
    )
    add(
        layers,
        "--student-model",
        env="BERTLESS_STUDENT_MODEL",
        help="layers student: a smaller Hugging Face folder to use instead",
    )
    add(
        p,
        "--dim",
        env="BERTLESS_STUDENT_DIM",
        type=int,
        help="bilstm and static students: the embedding table's width, reduced by PCA "
        "(default 128 for bilstm, 256 for static)",
    )
    add(
        p,
        "--hidden",
        env="BERTLESS_STUDENT_HIDDEN",
        type=int,
        help="bilstm student: the LSTM's units in each direction (default 128)",
    )
    add(
        p,
        "--task",
        env="BERTLESS_TASK",
        choices=["feature-extraction", "text-classification"],
        help="the teacher folder's task (default: read from it)",
    )
    _columns(p, pair=False)
    _learning(
        p,
        "texts (a random sample)",
        " (single-label classifiers; default: agreement with the teacher on held-out texts)",
        rate=None,
    )
    add(
        p,
        "--temperature",
        env="BERTLESS_TEMPERATURE",
        type=float,
        default=2.0,
        help="softens the teacher's probabilities for a classifier (default 2)",
    )
    add(
        p,
        "--quantize",
        env="BERTLESS_QUANTIZE",
        choices=["int8", "none"],
        help="the student's weights: int8, or none for fp32 (default none)",
    )
    _common(p, epochs=None, max_length=128)
    p.set_defaults(run=cmd_distill)


def _add_build_sentiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-sentiment",
        help="Build the built-in English sentiment classifier: fine-tune MiniLM on movie-review "
        "snippets, distill it on texts of every domain, report, and install the student.",
    )
    _model(p, "the encoder to fine-tune, a local Hugging Face folder")
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
    _check_student_flags(args)
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
    epochs, rate = STUDENTS[args.student]
    common = {
        "epochs": epochs if args.epochs is None else args.epochs,
        "max_length": args.max_length,
        "learning_rate": rate if args.learning_rate is None else args.learning_rate,
        "temperature": args.temperature,
        "quantize": None if args.quantize == "none" else args.quantize,
        "seed": args.seed,
        "show_progress": not args.quiet,
        "step": step,
    }
    if args.student == "static":
        from bertless.models.static import distill_static

        del common["temperature"]  # a table matches vectors, not probabilities
        dim = 256 if args.dim is None else args.dim
        distilled = distill_static(teacher, texts, out, dim=dim, **common)
    elif args.student == "bilstm":
        from bertless.models.bilstm import distill_bilstm

        distilled = distill_bilstm(
            teacher,
            texts,
            out,
            dim=128 if args.dim is None else args.dim,
            hidden=128 if args.hidden is None else args.hidden,
            **common,
        )
    else:
        distilled = distill(
            teacher,
            texts,
            out,
            student=args.student_model,
            student_layers=3 if args.student_layers is None else args.student_layers,
            **common,
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
    if args.student == "static":  # model2vec's untrained table, measured the same way
        from bertless.models.static_baseline import baseline_rows

        rows += baseline_rows(teacher, distilled, theirs, step)
    extra = {
        "fit": _fit(distilled.fit),
        "distance_before": distilled.distance_before,
        "distance_after": distilled.distance_after,
    }
    _finish(console, out, rows, "teacher and student", extra)
    return 0


def _check_student_flags(args: argparse.Namespace) -> None:
    """Refuse a flag meant for another kind of student, before any work is done."""
    from bertless.core.errors import InputError

    meant = {
        "--student-layers": (args.student_layers, "layers"),
        "--student-model": (args.student_model, "layers"),
        "--dim": (args.dim, "bilstm or static"),
        "--hidden": (args.hidden, "bilstm"),
    }
    for flag, (value, kinds) in meant.items():
        if value is not None and args.student not in kinds.split(" or "):
            raise InputError(f"{flag} is for --student {kinds}, not --student {args.student}.")


def cmd_build_sentiment(args: argparse.Namespace) -> int:
    from bertless.models.report import render
    from bertless.models.sentiment import BiLSTMRecipe, build_sentiment, install
    from bertless.models.vader import CITATION

    out, console = Path(args.out), _console()
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
