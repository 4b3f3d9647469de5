"""Reading training data: labelled tables (CSV, JSONL, Parquet) and unlabelled texts.

Every problem is found before any training starts and named in one sentence (which file, which
column, which row), because a bad row found an hour into a run costs the hour. A source named
`vader:<domain>` reads the offline sentiment dataset instead of a file (see `vader.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bertless.core.errors import InputError
from bertless.core.predictor import Item
from bertless.models import vader
from bertless.models.labelled import Labelled

DATASET_SCHEME = "vader:"
READERS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_table(path: str | Path):
    """A pandas DataFrame from CSV, TSV, JSON Lines (or a JSON array) or Parquet."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file.")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise InputError(f"{path} is not {', '.join(READERS)}: cannot tell how to read it.")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty.")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".json":
            array = path.read_text(encoding="utf-8").lstrip().startswith("[")
            frame = pd.read_json(path, lines=not array, dtype=False)
        else:
            frame = pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False
            )
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(f"{path} cannot be read as {suffix[1:]}: {error}") from error
    if frame.empty:
        raise InputError(f"{path} has no rows.")
    return frame


def load_labelled(
    source: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    pair_column: str | None = None,
    labels: Sequence[str] | None = None,
) -> Labelled:
    """Labelled examples from a table; `labels` fixes the label set (an unknown one is an error).

    Without `labels`, the label set is the sorted distinct values of the label column.
    """
    if str(source).startswith(DATASET_SCHEME):
        data = vader.load(str(source)[len(DATASET_SCHEME) :])
        if labels is None:
            return data
        return _with_ids(data.texts, [data.names[i] for i in data.labels], list(labels), source)
    frame = read_table(source)
    texts = _texts(frame, text_column, "--text-column", source)
    if pair_column:
        seconds = _texts(frame, pair_column, "--pair-column", source)
        texts = list(zip(texts, seconds, strict=True))
    values = [_label_text(v) for v in _column(frame, label_column, "--label-column", source)]
    for row, value in enumerate(values, start=1):
        if not value:
            raise InputError(f"{source} row {row} has no label in column {label_column!r}.")
    names = list(labels) if labels is not None else sorted(set(values))
    return _with_ids(texts, values, names, source)


def load_texts(source: str | Path, text_column: str = "text") -> list[str]:
    """Unlabelled texts from a table's column, or from a .txt file with one text per line."""
    if str(source).startswith(DATASET_SCHEME):
        return [str(t) for t in vader.load(str(source)[len(DATASET_SCHEME) :]).texts]
    path = Path(source)
    if path.suffix.lower() == ".txt" and path.is_file():
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        texts = [t for t in texts if t]
        if not texts:
            raise InputError(f"{path} has no texts.")
        return texts
    return _texts(read_table(path), text_column, "--text-column", source)


def _column(frame, column: str, flag: str, source: str | Path) -> list:
    if column not in frame.columns:
        found = ", ".join(map(str, frame.columns))
        raise InputError(f"{source} has no column {column!r} (it has {found}): set {flag}.")
    return frame[column].tolist()


def _texts(frame, column: str, flag: str, source: str | Path) -> list[str]:
    texts = _column(frame, column, flag, source)
    for row, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{source} row {row} has no text in column {column!r}.")
    return texts


def _label_text(value: object) -> str:
    """Labels as text: 1 and 1.0 (pandas turns int columns with gaps into floats) are both '1'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _with_ids(
    texts: list[Item], values: list[str], names: list[str], source: str | Path
) -> Labelled:
    ids = {name: i for i, name in enumerate(names)}
    for row, value in enumerate(values, start=1):
        if value not in ids:
            raise InputError(
                f"{source} row {row} has label {value!r}, which is not one of {', '.join(names)}."
            )
    return Labelled(texts, [ids[v] for v in values], names)
