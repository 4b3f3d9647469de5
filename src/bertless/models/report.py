"""The report after training or distilling: quality, size, speed and platform fit, side by side.

Quality: macro-F1 and accuracy on held-out labelled sets for classifiers; for a distilled
multi-label classifier, how well its per-label decisions agree with its teacher's; for embedding
models the Spearman correlation between the cosine similarities a model gives held-out text pairs
and those its teacher gives, which says how well it keeps the teacher's sense of what is alike.
Size: the bundle on disk and zipped. Speed: measured through the Predictor, the runtime a
function serves with: one text per call (median), and texts per second in batches of 32. Fit:
each platform's package caps, read from platforms/limits.py; only the bundle is counted here, and
an artifact adds the runtime's wheels, so `bertless package` has the final word.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bertless.core.errors import InputError
from bertless.core.predictor import Item, Predictor
from bertless.models.labelled import Labelled
from bertless.platforms.limits import PLATFORMS, Figure, MiB, package_limits

SPEED_TEXTS = 64
SIMILARITY_TEXTS = 300  # 44,850 pairs: plenty for a rank correlation, quick to embed
# The fewest held-out texts whose pairs' similarities a rank correlation can be taken of.
SIMILARITY_MIN_TEXTS = 3


@dataclass(frozen=True)
class Row:
    """One model's line in the report."""

    name: str
    bundle: str
    quality: dict[str, float]
    megabytes: float
    zipped_megabytes: float
    ms_per_text: float
    texts_per_second: float
    fits: dict[str, bool]


def classification_quality(predictor: Predictor, sets: dict[str, Labelled]) -> dict[str, float]:
    """Macro-F1 and accuracy on each named held-out set."""
    from sklearn.metrics import accuracy_score

    labels = predictor.manifest.labels
    quality = {}
    for name, data in sets.items():
        unknown = sorted(set(data.names[i] for i in data.labels) - set(labels))
        if unknown:
            raise InputError(
                f"the {name} set has label {unknown[0]!r}, which is not one of the model's "
                f"labels ({', '.join(labels)})."
            )
        truth = [labels.index(data.names[i]) for i in data.labels]
        predicted = predictor.classify(list(data.texts), truncate=True).values.argmax(axis=1)
        quality[f"{name} macro-F1"] = macro_f1(truth, predicted)
        quality[f"{name} accuracy"] = float(accuracy_score(truth, predicted))
    return quality


def macro_f1(truth: Sequence[int], predicted: Sequence[int]) -> float:
    """F1 averaged over the labels that occur (in truth or prediction), each weighing the same,
    so a rare class counts as much as a common one; a label never predicted scores 0."""
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def label_agreement(
    predictor: Predictor, teacher: Predictor, texts: Sequence[Item], name: str = "agreement"
) -> dict[str, float]:
    """How well a multi-label classifier's decisions (each label's probability over 0.5) agree
    with its teacher's: micro-F1 over every (text, label) the teacher says yes to, and the share
    of texts given exactly the teacher's set of labels. Two models that both say no label at all
    agree perfectly."""
    from sklearn.metrics import f1_score

    if predictor.manifest.labels != teacher.manifest.labels:
        raise InputError(
            f"the model's labels ({', '.join(predictor.manifest.labels)}) differ from the "
            f"teacher's ({', '.join(teacher.manifest.labels)})."
        )
    texts = list(texts)
    mine, theirs = (p.classify(texts, truncate=True).values > 0.5 for p in (predictor, teacher))
    return {
        f"{name} micro-F1": float(f1_score(theirs, mine, average="micro", zero_division=1.0)),
        f"{name} exact match": float((mine == theirs).all(axis=1).mean()),
    }


def similarity_quality(
    predictor: Predictor, teacher: Predictor, texts: Sequence[str], name: str = "held-out"
) -> dict[str, float]:
    """Spearman correlation of the pairwise cosine similarities with the teacher's."""
    from scipy.stats import spearmanr

    texts = list(texts)[:SIMILARITY_TEXTS]
    if len(texts) < SIMILARITY_MIN_TEXTS:
        raise InputError("a similarity check needs at least three held-out texts.")
    upper = np.triu_indices(len(texts), k=1)
    mine, theirs = (
        _cosines(p.embed(texts, truncate=True).values)[upper] for p in (predictor, teacher)
    )
    return {f"{name} Spearman vs teacher": float(spearmanr(mine, theirs).statistic)}


def measure(name: str, bundle: str | Path, quality: dict[str, float], texts: Sequence[Item]) -> Row:
    """Size, speed on `texts` and platform fit of a bundle, with the quality measured elsewhere."""
    bundle = Path(bundle)
    size = sum(f.stat().st_size for f in bundle.iterdir() if f.is_file())
    zipped = _zipped_size(bundle)
    per_text, per_second = _speed(Predictor.load(bundle), list(texts)[:SPEED_TEXTS])
    return Row(
        name=name,
        bundle=str(bundle),
        quality=quality,
        megabytes=size / MiB,
        zipped_megabytes=zipped / MiB,
        ms_per_text=per_text,
        texts_per_second=per_second,
        fits={label: within for label, _, within in _fits(size, zipped)},
    )


def to_json(rows: Sequence[Row]) -> dict:
    """The rows, plus each limit checked with the page it was read from."""
    limits = [
        {"limit": label, "bytes": figure.value, "source": figure.source, "read_on": figure.read_on}
        for label, figure, _ in _fits(0, 0)
    ]
    return {"rows": [asdict(row) for row in rows], "limits": limits}


def render(rows: Sequence[Row], title: str):
    """A rich table, one row per model."""
    from rich.table import Table

    qualities = list(dict.fromkeys(key for row in rows for key in row.quality))
    fits = list(dict.fromkeys(key for row in rows for key in row.fits))
    table = Table(title=title, caption="MB = 2**20 bytes; fits: the bundle alone, without runtime")
    table.add_column("model")
    for key in qualities:
        table.add_column(key, justify="right")
    for key in ("bundle MB", "zipped MB", "ms/text", "texts/s"):
        table.add_column(key, justify="right")
    for key in fits:
        table.add_column(key, justify="center")
    for row in rows:
        table.add_row(
            row.name,
            *(f"{row.quality[k]:.3f}" if k in row.quality else "" for k in qualities),
            f"{row.megabytes:.1f}",
            f"{row.zipped_megabytes:.1f}",
            f"{row.ms_per_text:.1f}",
            f"{row.texts_per_second:.0f}",
            *(("yes" if row.fits[k] else "NO") if k in row.fits else "" for k in fits),
        )
    return table


def _cosines(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def _zipped_size(bundle: Path) -> int:
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(bundle.iterdir()):
                if file.is_file():
                    archive.write(file, file.name)
        return handle.tell()


def _speed(predictor: Predictor, texts: list[Item]) -> tuple[float, float]:
    """(median ms for one text per call, texts per second in batches of 32), after a warm-up."""
    run = predictor.embed if predictor.manifest.task == "feature-extraction" else predictor.classify
    run(texts[:8], truncate=True)
    singles = []
    for text in texts:
        started = time.perf_counter()
        run([text], truncate=True)
        singles.append(time.perf_counter() - started)
    started = time.perf_counter()
    run(texts, batch_size=32, truncate=True)
    return 1000 * statistics.median(singles), len(texts) / (time.perf_counter() - started)


def _fits(size: int, zipped: int) -> list[tuple[str, Figure, bool]]:
    """(label, limit, whether it holds) for every package cap a platform documents."""
    checks = []
    for key, platform in PLATFORMS.items():
        caps = package_limits(key)
        for what, figure, measured in (
            ("zip upload", caps.zip_direct_upload, zipped),
            ("unzipped", caps.unzipped, size),
        ):
            if figure is not None and figure.value is not None:
                label = f"{platform.name} {what} ≤ {figure.value / MiB:.0f} MB"
                checks.append((label, figure, measured <= figure.value))
    return checks
