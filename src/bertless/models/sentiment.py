"""The built-in English sentiment classifier (negative / neutral / positive), made from scratch.

The recipe, sized for a 2-core machine: fine-tune all-MiniLM-L6-v2 (the teacher) on a sample of
the movie-review snippets of Hutto & Gilbert (2014), then distill it into students that keep 3
(and optionally 2) of its 6 layers, on the movie snippets as unlabelled text, and export them
with int8 weights. Every model is judged on held-out movie snippets and, to see how it carries
over, on tweets and product reviews it never saw. The teacher is also exported with int8
weights, so that the report shows what quantization and what dropping layers each bring. See
`vader.py` for the data and its three classes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bertless.core.predictor import Predictor
from bertless.models import vader
from bertless.models.data import Labelled, stratified_split
from bertless.models.distill import Teacher, distill
from bertless.models.export import Step, export
from bertless.models.report import Row, classification_quality, measure, to_json
from bertless.models.train import train

OTHER_DOMAINS = ("tweets", "products")
# With one short epoch, a higher rate than train()'s general default learns more: one epoch on
# 2,000 snippets reached held-out movies macro-F1 0.53 at 2e-4 and 0.50 at 1e-4 (single runs;
# at this size runs that differ only in sampling differ by up to 0.04).
LEARNING_RATE = 2e-4


@dataclass(frozen=True)
class SentimentBuild:
    bundle: Path
    rows: list[Row]
    seconds: dict[str, float]


def build_sentiment(
    out: str | Path,
    *,
    student_layers: Sequence[int] = (3,),
    train_size: int = 2000,
    distill_size: int = 3000,
    eval_size: int = 1000,
    epochs: int = 1,
    max_length: int = 64,
    quantize: str | None = "int8",
    seed: int = 0,
    show_progress: bool = True,
    step: Step = lambda _: None,
) -> SentimentBuild:
    """Train the teacher, distill one student per entry of `student_layers`, report on all.

    Writes `out/teacher/{model,bundle,bundle-int8}`, `out/student-N/{model,bundle}` and
    `out/report.json`; the bundle to serve is the first student's.
    """
    out = Path(out)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    step("reading the movie-review snippets")
    movies = vader.load("movies")
    rest, held = stratified_split(movies.labels, eval_size, seed)
    pool, held_out = movies.subset(rest), movies.subset(held)

    clock = time.perf_counter()
    step(f"fine-tuning the teacher on {train_size} snippets")
    trained = train(
        pool.sample(train_size, seed),
        out / "teacher" / "model",
        epochs=epochs,
        max_length=max_length,
        learning_rate=LEARNING_RATE,
        seed=seed,
        show_progress=show_progress,
    )
    seconds["train teacher"] = time.perf_counter() - clock

    clock = time.perf_counter()
    teacher = Teacher.prepare(trained.folder, out / "teacher" / "bundle", step=step)
    texts = [str(t) for t in pool.sample(distill_size, seed + 1).texts]
    step(f"labelling {len(texts)} snippets with the teacher")
    targets = teacher.label(texts)
    if quantize:
        export(teacher.folder, out / "teacher" / f"bundle-{quantize}", quantize=quantize, step=step)
    seconds["export and label"] = time.perf_counter() - clock

    students = []
    for layers in student_layers:
        clock = time.perf_counter()
        students.append(
            distill(
                teacher,
                texts,
                out / f"student-{layers}",
                student_layers=layers,
                targets=targets,
                epochs=epochs,
                max_length=max_length,
                learning_rate=LEARNING_RATE,
                quantize=quantize,
                seed=seed,
                show_progress=show_progress,
                step=step,
            )
        )
        seconds[f"distill {layers} layers"] = time.perf_counter() - clock

    clock = time.perf_counter()
    step("measuring quality, size and speed")
    sets = {"movies": held_out} | {d: vader.load(d).sample(eval_size, seed) for d in OTHER_DOMAINS}
    precision = quantize or "fp32"
    named = [(f"teacher ({_layers(teacher.folder)} layers, fp32)", teacher.bundle)]
    if quantize:
        named.append(
            (
                f"teacher ({_layers(teacher.folder)} layers, {quantize})",
                out / "teacher" / f"bundle-{quantize}",
            )
        )
    named += [
        (f"student ({n} layers, {precision})", s.bundle)
        for n, s in zip(student_layers, students, strict=True)
    ]
    rows = [_row(name, bundle, sets) for name, bundle in named]
    seconds["report"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started

    report = to_json(rows) | {
        "seconds": seconds,
        "recipe": {
            "train_size": train_size,
            "distill_size": distill_size,
            "eval_size": eval_size,
            "epochs": epochs,
            "max_length": max_length,
            "quantize": quantize,
            "seed": seed,
            "validation_macro_f1": trained.validation_f1,
        },
        "data": {
            "citation": vader.CITATION,
            "source": vader.REQUIREMENT,
            "classes": f"mean rating < -{vader.THRESHOLD} negative, > {vader.THRESHOLD} "
            "positive, else neutral",
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return SentimentBuild(students[0].bundle, rows, seconds)


def _row(name: str, bundle: Path, sets: dict[str, Labelled]) -> Row:
    quality = classification_quality(Predictor.load(bundle), sets)
    return measure(name, bundle, quality, [str(t) for t in sets["movies"].texts])


def _layers(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["num_hidden_layers"]
