"""Reading and writing Parquet, JSON Lines and CSV in fixed-size chunks, never a whole file.

The format is chosen by the file's extension. Reading yields chunks of exactly `rows` rows (the
last may be shorter), so chunk `k` is always the same rows of a file: that is what lets an
interrupted run find where it stopped. Writing goes to a temporary name that is fsynced and then
renamed, so a file either exists whole or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bertless.core.errors import InputError

Format = Literal["parquet", "jsonl", "csv"]
EXTENSIONS: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}


def format_of(path: str | Path) -> Format:
    """The format a file's extension names, or an error saying which extensions work."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise InputError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; name the "
            f"file with one of {', '.join(EXTENSIONS)}."
        )
    return EXTENSIONS[suffix]


@dataclass(frozen=True)
class Chunk:
    """Chunk `index` of a source: the ids, texts and pair texts of its rows."""

    index: int
    ids: pa.Array
    texts: list[object]
    pairs: list[object] | None


def _one_role_each(**columns: str | None) -> None:
    """Refuse a column named for two roles (`--pair-column text`): reading it twice was
    pyarrow's KeyError about a field that exists twice."""
    named = [(f"--{role}-column", column) for role, column in columns.items() if column]
    for i, (flag, column) in enumerate(named):
        for other, same in named[i + 1 :]:
            if column == same:
                raise InputError(
                    f"{column!r} is named by both {flag} and {other}: give each its own column."
                )


class Source:
    """An input file with its columns checked, readable in chunks as often as needed.

    The id column is optional: without one, ids are row numbers (0-based), which the local
    engine's in-order output makes as good as ids. The columns of a JSON Lines file are the keys
    of its first line; a later line without a key has a null there.
    """

    def __init__(
        self,
        path: str | Path,
        text_column: str = "text",
        pair_column: str | None = None,
        id_column: str = "id",
    ) -> None:
        self.path = Path(path)
        self.format = format_of(self.path)
        if not self.path.is_file():
            raise InputError(f"{self.path} does not exist or is not a file.")
        self.text_column = text_column
        self.pair_column = pair_column
        self.id_column = id_column
        _one_role_each(id=id_column, text=text_column, pair=pair_column)
        names = self._column_names()
        for role, column in (("text", text_column), ("pair", pair_column)):
            if column is not None and column not in names:
                flag = "--text-column" if role == "text" else "--pair-column"
                raise InputError(
                    f"{self.path} has no column {column!r} (it has {', '.join(names) or 'none'}): "
                    f"name the {role} column with {flag}."
                )
        self.has_ids = id_column in names

    @property
    def columns(self) -> list[str]:
        """The columns read from the file, in the order id, text, pair."""
        wanted = [self.id_column if self.has_ids else None, self.text_column, self.pair_column]
        return [c for c in wanted if c is not None]

    def count(self) -> int:
        """The number of rows, for progress and ETA; a quick pass that parses no texts."""
        if self.format == "parquet":
            return pq.ParquetFile(self.path).metadata.num_rows
        if self.format == "csv":
            return sum(batch.num_rows for batch in self._csv([self.text_column]))
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def chunks(self, rows: int) -> Iterator[Chunk]:
        """Consecutive chunks of exactly `rows` rows (the last may be shorter)."""
        if self.format == "jsonl":
            blocks = self._jsonl(rows)
        elif self.format == "csv":
            blocks = map(self._block, self._csv(self.columns))
        else:
            batches = pq.ParquetFile(self.path).iter_batches(batch_size=rows, columns=self.columns)
            blocks = map(self._block, batches)
        start = 0
        for index, (ids, texts, pairs) in enumerate(_rechunk(blocks, rows)):
            if ids is None:
                ids = pa.array(range(start, start + len(texts)), type=pa.int64())
            yield Chunk(index, ids, texts, pairs)
            start += len(texts)

    # -- per format -------------------------------------------------------------------------

    def _column_names(self) -> list[str]:
        if self.format == "parquet":
            return pq.ParquetFile(self.path).schema_arrow.names
        if self.format == "csv":
            return pacsv.open_csv(self.path).schema.names
        with self.path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"{}")
        return list(_json_object(first, 1, self.path))

    def _block(self, batch: pa.RecordBatch) -> _Block:
        return (
            batch.column(self.id_column) if self.has_ids else None,
            batch.column(self.text_column).to_pylist(),
            batch.column(self.pair_column).to_pylist() if self.pair_column else None,
        )

    def _csv(self, columns: list[str]) -> pacsv.CSVStreamingReader:
        """Every column read as a string: ids such as 00042 stay intact, no type guessing."""
        return pacsv.open_csv(
            self.path,
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.string())
            ),
        )

    def _jsonl(self, rows: int) -> Iterator[_Block]:
        """Lines parsed one by one, so a number where a text belongs is that row's error.

        Ids keep their JSON type; the first chunk fixes it so that every chunk agrees.
        """
        id_type: pa.DataType | None = None
        for line, records in _json_records(self.path, rows):
            ids = self._jsonl_ids(records, id_type, line)
            id_type = id_type or (ids.type if ids is not None else None)
            texts = [record.get(self.text_column) for record in records]
            pairs = [r.get(self.pair_column) for r in records] if self.pair_column else None
            yield ids, texts, pairs

    def _jsonl_ids(
        self, records: list[dict], id_type: pa.DataType | None, line: int
    ) -> pa.Array | None:
        if not self.has_ids:
            return None
        try:
            return pa.array([record.get(self.id_column) for record in records], type=id_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InputError(
                f"{self.path}: the ids up to line {line} do not share one type ({error}); give "
                "every row an id of the same JSON type."
            ) from None


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary name beside `path`; when the block succeeds it is fsynced and renamed.

    A reader (or a resumed run) therefore sees the whole file or none of it, even after a
    power cut.
    """
    temp = path.with_name(f".{path.name}.tmp")
    try:
        yield temp
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temp.unlink(missing_ok=True)


def write_tables(tables: Iterable[pa.Table], path: Path, schema: pa.Schema) -> None:
    """Tables one after another into one file of the format the extension names, atomically.

    CSV has no lists, so vector columns are written there as JSON arrays in a text field.
    """
    fmt = format_of(path)
    with atomic(path) as temp:
        if fmt == "parquet":
            with pq.ParquetWriter(temp, schema) as writer:
                for table in tables:
                    writer.write_table(table)
        elif fmt == "csv":
            flat = pa.schema([_flat_field(field) for field in schema])
            with pacsv.CSVWriter(temp, flat) as writer:
                for table in tables:
                    writer.write_table(_lists_as_json(table, flat))
        else:
            with temp.open("w", encoding="utf-8") as handle:
                for table in tables:
                    handle.writelines(
                        json.dumps(row, ensure_ascii=False, default=str) + "\n"
                        for row in table.to_pylist()
                    )


def _flat_field(field: pa.Field) -> pa.Field:
    listed = pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type)
    return field.with_type(pa.string()) if listed else field


def _lists_as_json(table: pa.Table, flat: pa.Schema) -> pa.Table:
    columns = [
        column
        if field.type == flat.field(index).type
        else pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()])
        for index, (field, column) in enumerate(zip(table.schema, table.columns, strict=True))
    ]
    return pa.Table.from_arrays(columns, schema=flat)


_Block = tuple[pa.Array | None, list[object], list[object] | None]


def _rechunk(blocks: Iterable[_Block], rows: int) -> Iterator[_Block]:
    """Blocks of any size (row groups, CSV blocks) regrouped into exactly `rows` rows."""
    ids: list[pa.Array] = []
    texts: list[object] = []
    pairs: list[object] = []
    paired = False
    for block_ids, block_texts, block_pairs in blocks:
        ids += [block_ids] if block_ids is not None else []
        texts += block_texts
        if block_pairs is not None:
            paired = True
            pairs += block_pairs
        while len(texts) >= rows:
            yield _head(ids, rows), texts[:rows], pairs[:rows] if paired else None
            ids, texts, pairs = _tail(ids, rows), texts[rows:], pairs[rows:]
    if texts:
        yield _head(ids, len(texts)), texts, pairs if paired else None


def _head(ids: list[pa.Array], rows: int) -> pa.Array | None:
    return pa.chunked_array(ids).slice(0, rows).combine_chunks() if ids else None


def _tail(ids: list[pa.Array], rows: int) -> list[pa.Array]:
    return [pa.chunked_array(ids).slice(rows).combine_chunks()] if ids else []


def _json_records(path: Path, rows: int) -> Iterator[tuple[int, list[dict]]]:
    """Groups of `rows` JSON objects, each with the number of its group's last line."""
    records: list[dict] = []
    number = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            records.append(_json_object(line, number, path))
            if len(records) == rows:
                yield number, records
                records = []
    if records:
        yield number, records


def _json_object(line: bytes, number: int, path: Path) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: line {number} is not valid JSON ({error}); fix or remove it."
        ) from None
    if not isinstance(record, dict):
        raise InputError(
            f"{path}: line {number} is a JSON {type(record).__name__}, not an object; write one "
            'object per line, such as {"id": 1, "text": "..."}.'
        )
    return record
