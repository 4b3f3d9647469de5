"""`bertless distill`: a teacher labels unlabelled texts, a student of the chosen kind learns
them; parsing and printing only (the work is in bertless.models)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertless.cli.env import add
from bertless.cli.training import (
    DATA_HELP,
    above_zero,
    column_flags,
    common_flags,
    finish,
    fit_summary,
    learning_flags,
    new_console,
    step_printer,
)

# Each kind of student's epochs and learning rate when the command line gives none: a layers
# student starts close to its teacher; a BiLSTM learns all but its embeddings from scratch, and
# an epoch of it costs seconds.
STUDENTS = {"layers": (2, 1e-4), "bilstm": (10, 2e-3), "static": (20, 0.001)}


def add_parser(sub: argparse._SubParsersAction) -> None:
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
        "embeddings, for embedding models, served in numpy without onnxruntime (20 epochs at "
        "0.001 unless told)",
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
        "(default 128 for bilstm, 256 for static, or the teacher's width if narrower)",
    )
    add(
        p,
        "--recombine",
        env="BERTLESS_RECOMBINE",
        type=int,
        help="static student: how many times the texts learnt from are recombined (the first "
        "half of one, the second half of another) into more texts for the teacher to label "
        "(default 1; 0 for none)",
    )
    add(
        p,
        "--rare-words",
        env="BERTLESS_RARE_WORDS",
        type=int,
        help="static student: how many times the texts learnt from are copied with one word "
        "replaced by a vocabulary word they (almost) never contain, for the teacher to label, so "
        "that those words' rows are trained too (default 1; 0 for none)",
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
    column_flags(p, pair=False)
    learning_flags(
        p,
        "texts (a random sample)",
        " (single-label classifiers; default: agreement with the teacher on held-out texts)",
        rate=None,
    )
    add(
        p,
        "--temperature",
        env="BERTLESS_TEMPERATURE",
        type=above_zero,
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
    common_flags(p, epochs=None, max_length=128)
    p.set_defaults(run=cmd_distill)


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

    out, console = Path(args.out), new_console()
    step = step_printer(console)
    _check_student_flags(args)
    texts = load_texts(args.unlabelled, args.text_column)
    if args.limit and args.limit < len(texts):
        texts = random.Random(args.seed).sample(texts, args.limit)
    teacher = Teacher.prepare(args.teacher, out / "teacher", args.task, step)
    multi_label = teacher.manifest.problem_type == "multi_label_classification"
    if args.eval and teacher.manifest.task == "feature-extraction":
        raise InputError(
            f"{teacher.manifest.model_id} is an embedding model, and --eval reads a labelled file "
            "for classifiers: leave out --eval; the report ranks the similarities of held-out "
            "pairs against the teacher's."
        )
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
        width = teacher.manifest.dimension or 256  # a narrower teacher's width is the default
        distilled = distill_static(
            teacher,
            texts,
            out,
            dim=min(256, width) if args.dim is None else args.dim,
            recombine=1 if args.recombine is None else args.recombine,
            rare_words=1 if args.rare_words is None else args.rare_words,
            **common,
        )
    elif args.student == "bilstm":
        from bertless.models.bilstm import distill_bilstm

        distilled = distill_bilstm(
            teacher,
            texts,
            out,
            dim=args.dim,
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
        "fit": fit_summary(distilled.fit),
        "distance_before": distilled.distance_before,
        "distance_after": distilled.distance_after,
    }
    finish(console, out, rows, "teacher and student", extra)
    return 0


def _check_student_flags(args: argparse.Namespace) -> None:
    """Refuse a flag meant for another kind of student, before any work is done."""
    from bertless.core.errors import InputError

    meant = {
        "--student-layers": (args.student_layers, "layers"),
        "--student-model": (args.student_model, "layers"),
        "--dim": (args.dim, "bilstm or static"),
        "--hidden": (args.hidden, "bilstm"),
        "--recombine": (args.recombine, "static"),
        "--rare-words": (args.rare_words, "static"),
    }
    for flag, (value, kinds) in meant.items():
        if value is not None and args.student not in kinds.split(" or "):
            raise InputError(f"{flag} is for --student {kinds}, not --student {args.student}.")
