"""The local engine: a file of any size scored on one machine, resumable after any interruption.

The input is read in chunks of `chunk_rows` rows (never whole). Each scored chunk becomes one
Parquet part in `OUTPUT.parts/`, written under a temporary name, fsynced and renamed, so a part
exists whole or not at all; `run.json` there records what the parts were made from. A rerun
skips the chunks whose part exists, so no row is scored twice or lost, and refuses parts made
from another input, bundle or settings. When every part exists they are joined, in input order,
into OUTPUT (one file in the format its extension names) and the parts folder is removed.

Every core is used by running `workers` processes, each with its own onnxruntime session of
`cores / workers` threads, rather than one process whose session has a thread per core. On the
2-core machine this was built on, two single-threaded processes scored 5,000 MiniLM-L6 texts at
124 texts/s against 101 for one process with two intra-op threads (benchmarks/batch.py, best of
3 rounds; the processes won 5 of the 6 paired rounds). A model this small gives intra-op
threads little work per operator to share, while processes share nothing. So the default is one
process per core. Worker processes are spawned, not forked, so a script that calls `score_file`
with more than one worker needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bertless.batch.io import Chunk, Source, atomic, format_of, write_tables
from bertless.batch.scoring import ERROR_COLUMN, Summary, result_schema, score_rows
from bertless.core.bundle import Bundle, load_bundle
from bertless.core.cpus import available_cpus
from bertless.core.errors import BertlessError, InputError
from bertless.core.predictor import Predictor

DEFAULT_CHUNK_ROWS = 1024
RUN_FILE = "run.json"

RowsDone = Callable[[int, int], None]
"""Told (rows done, rows in the input) at the start and after every chunk."""


class BatchError(BertlessError):
    """An output's parts folder that cannot be resumed by this run."""


@dataclass(frozen=True)
class _Job:
    """What a worker needs to score a chunk and write its part; small, so cheap to send."""

    bundle: str
    parts: str
    id_column: str
    batch_size: int
    truncate: bool


def parts_dir(output: str | Path) -> Path:
    """Where the parts of OUTPUT live while a run is under way: `OUTPUT.parts/` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def score_file(
    bundle: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_column: str = "text",
    pair_column: str | None = None,
    id_column: str = "id",
    batch_size: int = 32,
    truncate: bool | None = None,
    workers: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: RowsDone = lambda done, total: None,
) -> Summary:
    """Score every row of `input` into `output`, continuing an interrupted run of the same job.

    `workers` defaults to one process per available core.
    """
    started = time.perf_counter()
    output = Path(output)
    format_of(output)
    checked = load_bundle(bundle)
    if pair_column and checked.manifest.task == "feature-extraction":
        raise InputError("an embedding model scores single texts: drop --pair-column.")
    source = Source(input, text_column, pair_column, id_column)
    truncate = checked.manifest.auto_truncate if truncate is None else truncate
    parts = parts_dir(output)
    claim(parts, _fingerprint(source, checked, chunk_rows, truncate))
    done = finished_parts(parts)
    total = source.count()
    rows_done = sum(rows for rows, _ in done.values())
    progress(rows_done, total)

    job = _Job(str(checked.path), str(parts), id_column, batch_size, truncate)
    todo = (chunk for chunk in source.chunks(chunk_rows) if chunk.index not in done)
    scored = 0
    for index, rows, errors in _score(todo, job, workers or available_cpus()):
        done[index] = (rows, errors)
        scored += rows
        rows_done += rows
        progress(rows_done, total)

    schema = pa.schema([pa.field(id_column, pa.int64()), *result_schema(checked.manifest)])
    join_parts(parts, sorted(done), output, schema)
    errors = sum(errors for _, errors in done.values())
    return Summary(rows_done, errors, scored, time.perf_counter() - started)


# -- scoring, in this process or in one process per core -------------------------------------


def _score(chunks: Iterable[Chunk], job: _Job, workers: int) -> Iterator[tuple[int, int, int]]:
    """(chunk index, rows, errors) for each chunk as its part is written, in any order."""
    if workers == 1:
        predictor = Predictor.load(job.bundle, verify=False)
        for chunk in chunks:
            yield _score_chunk(predictor, chunk, job)
        return
    threads = max(1, available_cpus() // workers)
    with ProcessPoolExecutor(
        workers,
        # spawn: a fork of a process running pyarrow's thread pools can deadlock.
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_load_worker,
        initargs=(job.bundle, threads),
    ) as pool:
        pending: set[Future] = set()
        for chunk in chunks:
            pending.add(pool.submit(_score_in_worker, chunk, job))
            # Two chunks in flight per worker keep it busy without reading ahead unboundedly.
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in finished)


_worker_predictor: Predictor | None = None


def _load_worker(bundle: str, threads: int) -> None:
    """Load the bundle once per worker process (the parent has already checked its files).

    A worker also exits as soon as its parent does: a killed run must not leave workers that
    wait forever on a queue nobody will fill, each holding a model in memory.
    """
    global _worker_predictor
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    _worker_predictor = Predictor.load(bundle, verify=False, threads=threads)


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _score_in_worker(chunk: Chunk, job: _Job) -> tuple[int, int, int]:
    assert _worker_predictor is not None, "the pool initializer loads the predictor"
    return _score_chunk(_worker_predictor, chunk, job)


def _score_chunk(predictor: Predictor, chunk: Chunk, job: _Job) -> tuple[int, int, int]:
    results = score_rows(predictor, chunk.texts, chunk.pairs, job.batch_size, job.truncate)
    table = pa.Table.from_arrays(
        [chunk.ids, *results.columns], names=[job.id_column, *results.column_names]
    )
    with atomic(part_path(Path(job.parts), chunk.index)) as temp:
        pq.write_table(table, temp)
    errors = table.num_rows - results.column(ERROR_COLUMN).null_count
    return chunk.index, table.num_rows, errors


# -- the parts folder ------------------------------------------------------------------------


def part_path(parts: Path, index: int) -> Path:
    """Where chunk `index` is written: numbered so that name order is input order."""
    return parts / f"part-{index:06d}.parquet"


def join_parts(parts: Path, indexes: list[int], output: Path, schema: pa.Schema) -> None:
    """The parts, in the order given, into OUTPUT; then the parts folder goes.

    `schema` is for a run with no rows; otherwise the first part's own schema is used.
    """
    paths = [part_path(parts, index) for index in indexes]
    if paths:
        schema = pq.read_schema(paths[0])
    write_tables((pq.read_table(path) for path in paths), output, schema)
    shutil.rmtree(parts)


def _fingerprint(source: Source, bundle: Bundle, chunk_rows: int, truncate: bool) -> dict:
    """Everything that decides which rows a part holds and what they say."""
    stat = source.path.stat()
    return {
        "input": str(source.path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "bundle_sha256": bundle.checksum,
        "text_column": source.text_column,
        "pair_column": source.pair_column,
        "id_column": source.id_column,
        "chunk_rows": chunk_rows,
        "truncate": truncate,
    }


def claim(parts: Path, fingerprint: dict) -> None:
    """Start a parts folder, or check that the one there was made by this same job."""
    run = parts / RUN_FILE
    if run.is_file():
        previous = json.loads(run.read_text(encoding="utf-8"))
        changed = sorted(
            k for k in fingerprint.keys() | previous.keys() if previous.get(k) != fingerprint.get(k)
        )
        if changed:
            raise BatchError(
                f"{parts} holds parts of another run (its {', '.join(changed)} differ): "
                "delete that folder to start over, or write to another OUTPUT."
            )
        return
    parts.mkdir(parents=True, exist_ok=True)
    with atomic(run) as temp:
        temp.write_text(json.dumps(fingerprint, indent=2, sort_keys=True), encoding="utf-8")


def finished_parts(parts: Path) -> dict[int, tuple[int, int]]:
    """(rows, errors) of every part an earlier run finished, by chunk index."""
    done = {}
    for path in parts.glob("part-*.parquet"):
        errors = pq.read_table(path, columns=[ERROR_COLUMN]).column(ERROR_COLUMN)
        done[int(path.stem.removeprefix("part-"))] = (len(errors), len(errors) - errors.null_count)
    return done
