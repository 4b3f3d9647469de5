"""A shadow comparison: the same texts through the old model and the new one, before users see it.

Swapping a model (the fp32 teacher for its int8 export, the teacher for a distilled student) is
safe when the new one answers like the old one where it matters. This runs every text through
both, in the same batches, and reports agreement in the model's own terms: for embeddings the
cosine of each text's two vectors (min, mean, and the share under a floor); for classifiers the
share of texts given the same top label, and the macro-F1 of the new model's labels against the
old one's (the old model is the reference). Each side's latency per batch is measured in the
same run, alternating batches, so the ratio is fair on a busy machine.

`Thresholds.failures` turns a report into the sentences that make `bertless compare` exit
non-zero, so a CI job can gate a promotion on it.

A side is a bundle directory (run here through the Predictor) or a URL that speaks the HTTP
contract (`/info`, then `/embed` or `/predict`), such as a deployed function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bertless.bench.latency import (
    BenchError,
    HttpEndpoint,
    Quantiles,
    fetch_info,
    request_body,
    task_route,
)

EMBED = "feature-extraction"
CLASSIFY = "text-classification"


class Side(Protocol):
    """One model to compare: what it does, and its answers to a batch of texts.

    `run` returns embeddings (n, dim) for an embedding model, or each text's top label.
    """

    name: str
    task: str

    def run(self, texts: Sequence[str]) -> np.ndarray | list[str]: ...


class BundleSide:
    """A bundle directory, run in this process."""

    def __init__(self, path: Path):
        from bertless.core.predictor import Predictor

        self.name = str(path)
        self.predictor = Predictor.load(path)
        self.task = self.predictor.manifest.task

    def run(self, texts: Sequence[str]) -> np.ndarray | list[str]:
        if self.task == EMBED:
            return self.predictor.encode(list(texts), batch_size=len(texts))
        ranked = self.predictor.predict(list(texts), batch_size=len(texts))  # single texts
        return [scores[0]["label"] for scores in ranked]


class UrlSide:
    """A server that speaks the HTTP contract; `api_key` is sent as a bearer token."""

    def __init__(self, url: str, api_key: str | None = None, sigv4_region: str | None = None):
        self.endpoint = HttpEndpoint(url, api_key, sigv4_region)
        self.name = url
        info = fetch_info(self.endpoint)
        self.task = info.get("task", EMBED)
        self.route = task_route(info)

    def run(self, texts: Sequence[str]) -> np.ndarray | list[str]:
        reply = self.endpoint.call(0, "POST", self.route, request_body(self.route, texts))
        if not reply.ok:
            detail = reply.body[:300].decode(errors="replace") or "no answer"
            raise BenchError(
                f"{self.name} answered POST {self.route} with {reply.status}: {detail}"
            )
        answer = json.loads(reply.body)
        if self.route == "/embed":
            return np.asarray(answer, dtype=np.float32)
        return [scores[0]["label"] for scores in answer]


def open_side(where: str, api_key: str | None = None, sigv4_region: str | None = None) -> Side:
    """A URL (http or https) or a bundle directory; anything else is one sentence."""
    if where.startswith(("http://", "https://")):
        return UrlSide(where, api_key, sigv4_region)
    path = Path(where)
    if not (path / "bundle.json").is_file():
        raise BenchError(f"{where} is neither a URL nor a bundle directory (no bundle.json)")
    return BundleSide(path)


@dataclass(frozen=True)
class Thresholds:
    """The least agreement a new model must show; a None figure is not checked."""

    min_cosine: float | None = 0.95
    cosine_floor: float = 0.99
    max_under_floor: float | None = 0.05
    min_agreement: float | None = 0.95
    min_macro_f1: float | None = 0.90


@dataclass
class Comparison:
    """What the comparison found; embedding or classifier figures, the other half None."""

    old: str
    new: str
    task: str
    texts: int
    batch_size: int
    cosine_min: float | None = None
    cosine_mean: float | None = None
    cosine_floor: float | None = None
    under_floor: float | None = None
    agreement: float | None = None
    macro_f1: float | None = None
    old_ms: Quantiles | None = None
    new_ms: Quantiles | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def latency_ratio(self) -> float | None:
        """The new model's median batch time over the old one's."""
        if self.old_ms is None or self.new_ms is None or self.old_ms.q50 == 0:
            return None
        return self.new_ms.q50 / self.old_ms.q50

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "latency_ratio": self.latency_ratio}


def cosines(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Each row's cosine between the two models' vectors (normalized or not)."""
    old = old / np.maximum(np.linalg.norm(old, axis=1, keepdims=True), 1e-12)
    new = new / np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
    return np.sum(old * new, axis=1)


def macro_f1(reference: Sequence[str], predicted: Sequence[str]) -> float:
    """Macro-averaged F1 of `predicted` against `reference`, over every label either uses."""
    scores = []
    for label in sorted(set(reference) | set(predicted)):
        hits = sum(r == p == label for r, p in zip(reference, predicted, strict=True))
        said = sum(p == label for p in predicted)
        true = sum(r == label for r in reference)
        scores.append(0.0 if said + true == 0 else 2 * hits / (said + true))
    return float(np.mean(scores)) if scores else 1.0


def compare(
    old: Side,
    new: Side,
    texts: Sequence[str],
    thresholds: Thresholds = Thresholds(),
    batch_size: int = 32,
) -> Comparison:
    """Run every text through both sides, batch by batch in turn, and measure agreement."""
    if not texts:
        raise BenchError("no texts to compare: the file is empty")
    if old.task != new.task:
        raise BenchError(f"cannot compare a {old.task} model with a {new.task} model")
    report = Comparison(old.name, new.name, old.task, len(texts), batch_size)
    answers: dict[str, list] = {"old": [], "new": []}
    times: dict[str, list[float]] = {"old": [], "new": []}
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        for key, side in (("old", old), ("new", new)):
            began = time.perf_counter()
            answers[key].append(side.run(batch))
            times[key].append((time.perf_counter() - began) * 1e3)
    report.old_ms, report.new_ms = Quantiles.of(times["old"]), Quantiles.of(times["new"])
    if old.task == EMBED:
        old_vectors, new_vectors = np.concatenate(answers["old"]), np.concatenate(answers["new"])
        _embeddings(report, old_vectors, new_vectors, thresholds.cosine_floor)
    else:
        old_labels = [label for batch in answers["old"] for label in batch]
        new_labels = [label for batch in answers["new"] for label in batch]
        _labels(report, old_labels, new_labels)
    report.failures = failures(report, thresholds)
    return report


def _embeddings(report: Comparison, old: np.ndarray, new: np.ndarray, floor: float) -> None:
    if old.shape != new.shape:
        raise BenchError(
            f"the models answer in different shapes ({old.shape[1]} and {new.shape[1]} "
            "dimensions): their embeddings cannot be compared"
        )
    found = cosines(old, new)
    report.cosine_min, report.cosine_mean = float(found.min()), float(found.mean())
    report.cosine_floor, report.under_floor = floor, float(np.mean(found < floor))


def _labels(report: Comparison, old: list[str], new: list[str]) -> None:
    report.agreement = float(np.mean([a == b for a, b in zip(old, new, strict=True)]))
    report.macro_f1 = macro_f1(old, new)


def failures(report: Comparison, limits: Thresholds) -> list[str]:
    """One sentence per figure below its threshold."""
    checks = (
        ("the lowest cosine", report.cosine_min, limits.min_cosine, "at least"),
        (
            f"the share of texts under cosine {limits.cosine_floor}",
            report.under_floor,
            limits.max_under_floor,
            "at most",
        ),
        ("the top-label agreement", report.agreement, limits.min_agreement, "at least"),
        ("the macro-F1 against the old model", report.macro_f1, limits.min_macro_f1, "at least"),
    )
    found = []
    for what, value, limit, way in checks:
        if value is None or limit is None:
            continue
        if (value < limit) if way == "at least" else (value > limit):
            found.append(f"{what} is {value:.4f}; it must be {way} {limit}")
    return found
