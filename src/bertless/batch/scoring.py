"""Rows in, result columns out: the one place both batch engines turn texts into answers.

Every row is checked on its own before any batching, so a null, a non-string, an empty string or
an over-long text becomes that row's `error` and never fails the rows scored beside it. What counts
as a text is the predictor's own rule (`text_problem`): a blank row is scored as `POST /embed`
scores a blank text.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from bertless.core.bundle import Manifest
from bertless.core.errors import InputTooLongError
from bertless.core.predictor import (
    Forward,
    Item,
    Predictor,
    as_items,
    label_names,
    text_problem,
)

ERROR_COLUMN = "error"


class Shape(Protocol):
    """What decides the result columns: a bundle's manifest, or what an endpoint's /info says."""

    @property
    def task(self) -> str: ...
    @property
    def dimension(self) -> int | None: ...
    @property
    def labels(self) -> list[str]: ...


@dataclass(frozen=True)
class Summary:
    """What a batch run reports: rows written, rows with an error, and the speed of this run."""

    rows: int
    errors: int
    scored: int
    seconds: float

    @property
    def texts_per_second(self) -> float:
        """Rows scored by this run per second (rows done by an interrupted run do not count)."""
        return self.scored / self.seconds if self.seconds > 0 else 0.0


def result_schema(manifest: Shape) -> pa.Schema:
    """The columns scoring adds: `embedding`, or `label` + `score` + `scores`; then `error`.

    Vectors are fixed-size float32 lists when the manifest gives their size, so a reader gets
    a dense (n, dim) matrix without copying.
    """
    if manifest.task == "feature-extraction":
        fields = [pa.field("embedding", pa.list_(pa.float32(), manifest.dimension or -1))]
    else:
        fields = [
            pa.field("label", pa.string()),
            pa.field("score", pa.float32()),
            pa.field("scores", pa.list_(pa.float32(), len(manifest.labels) or -1)),
        ]
    return pa.schema([*fields, pa.field(ERROR_COLUMN, pa.string())])


def row_problem(text: object, pair: object = None, *, paired: bool = False) -> str | None:
    """Why a row cannot be scored, or None: a null cell, or what the predictor refuses as text."""
    values = [("text", text), ("pair", pair)] if paired else [("text", text)]
    for name, value in values:
        problem = "null" if value is None else text_problem(value)
        if problem:
            return f"{name} is {problem}"
    return None


def score_rows(
    predictor: Predictor,
    texts: Sequence[object],
    pairs: Sequence[object] | None = None,
    batch_size: int = 32,
    truncate: bool | None = None,
) -> pa.Table:
    """One row of results per input row, in input order, with `error` set on the rows skipped."""
    manifest = predictor.manifest
    paired = pairs is not None
    problems = [
        row_problem(text, pairs[i] if paired else None, paired=paired)
        for i, text in enumerate(texts)
    ]
    good = [i for i, problem in enumerate(problems) if problem is None]
    rows = [(texts[i], pairs[i]) if paired else texts[i] for i in good]
    items = as_items(rows, pairs=paired) if rows else []
    truncate = manifest.auto_truncate if truncate is None else truncate
    try:
        forward = _forward(predictor, items, batch_size, truncate)
    except InputTooLongError:
        # Rare, so only then count tokens: find every over-long row and score the others.
        limit = manifest.max_length
        counts = [
            len(e.ids)
            for e in _token_counter(str(predictor.bundle.tokenizer_path)).encode_batch(items)
        ]
        for position, count in zip(good, counts, strict=True):
            if count > limit:
                problems[position] = (
                    f"{'text and pair have' if paired else 'text has'} {count} tokens, more "
                    f"than the maximum of {limit}: shorten it or turn truncation on"
                )
        good = [position for position, count in zip(good, counts, strict=True) if count <= limit]
        items = [item for item, count in zip(items, counts, strict=True) if count <= limit]
        forward = _forward(predictor, items, batch_size, truncate)
    return result_columns(manifest, len(texts), good, forward.values, problems)


def _forward(predictor: Predictor, items: list[Item], batch_size: int, truncate: bool) -> Forward:
    if not items:
        return Forward(np.empty((0, _width(predictor.manifest)), dtype=np.float32), [])
    if predictor.manifest.task == "feature-extraction":
        return predictor.embed(items, batch_size, truncate)
    return predictor.classify(items, batch_size, truncate)


@functools.lru_cache(maxsize=4)
def _token_counter(tokenizer_path: str) -> Tokenizer:
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def result_columns(
    manifest: Shape, n: int, good: list[int], values: np.ndarray, problems: list[str | None]
) -> pa.Table:
    """The result table of `n` rows: row `good[k]` gets `values[k]`, every other row its problem.

    For a classifier `values` are the scores in label order; the label is the best of them.
    """
    schema = result_schema(manifest)
    missing = pa.array([p is not None for p in problems], type=pa.bool_())
    width = values.shape[1]
    dense = np.zeros((n, width), dtype=np.float32)
    dense[good] = values
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(dense.ravel()), width, mask=missing)
    errors = pa.array(problems, type=pa.string())
    if manifest.task == "feature-extraction":
        return pa.Table.from_arrays([vectors.cast(schema.field(0).type), errors], schema=schema)
    labels = label_names(manifest.labels, width)
    best = dense.argmax(axis=1)
    label = pa.array([labels[b] for b in best], type=pa.string(), mask=missing.to_numpy(False))
    score = pa.array(dense.max(axis=1), type=pa.float32(), mask=missing.to_numpy(False))
    return pa.Table.from_arrays(
        [label, score, vectors.cast(schema.field(2).type), errors], schema=schema
    )


def _width(manifest: Manifest) -> int:
    """The width of a vector when no row of a chunk could be scored."""
    if manifest.task == "feature-extraction":
        return manifest.dimension or 0
    return len(manifest.labels)
