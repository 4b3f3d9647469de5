"""The endpoint engine: a file scored by a deployed bertless function, driven as hard as it takes.

It reads and writes exactly as the local engine does (`io.py`; parts in `OUTPUT.parts/`, so a
killed run resumes where it stopped and no row is scored twice or lost), but each chunk's rows go
to the contract's `/embed` or `/predict` through `client.Client`: kept-alive connections,
`texts_per_request` texts a request, as many requests at once as its limiter allows, retried
until they succeed or run out of retries. A row that fails gets the last error in its `error`
column and the others go on. Rows the local engine would refuse (null, not a string, empty) are
refused here the same way, before anything is sent.

Several chunks are in flight at once, enough to keep the concurrency ceiling busy, so the
requests of the next chunk start while the slowest of this one finish.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bertless.batch.client import Client, Options
from bertless.batch.io import Chunk, Source, atomic, format_of
from bertless.batch.lambda_invoke import PREFIX, Bill, Invoker
from bertless.batch.local import (
    RowsDone,
    claim,
    finished_parts,
    join_parts,
    part_path,
    parts_dir,
)
from bertless.batch.scoring import ERROR_COLUMN, Summary, result_columns, result_schema, row_problem
from bertless.core.errors import InputError

DEFAULT_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class EndpointSummary(Summary):
    """The local engine's summary, plus how the endpoint was driven."""

    requests: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    retry_after_seconds: float = 0.0
    peak_concurrency: int = 0
    mean_concurrency: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # answered requests' q50/q95/q99
    bill: Bill | None = None  # a `lambda:NAME` run: what Lambda billed, from its REPORT lines


def score_endpoint(
    url: str,
    input: str | Path,
    output: str | Path,
    *,
    text_column: str = "text",
    pair_column: str | None = None,
    id_column: str = "id",
    truncate: bool | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    options: Options | None = None,
    progress: RowsDone = lambda done, total: None,
) -> EndpointSummary:
    """Score every row of `input` into `output` through the endpoint at `url`, resuming a run.

    `options` say how hard to drive the endpoint (default: adaptive concurrency, 32 texts a
    request, 8 retries).
    """
    source = Source(input, text_column, pair_column, id_column)
    run = _Run(url.rstrip("/"), options or Options(), truncate)
    return asyncio.run(run.file(source, Path(output), chunk_rows, progress))


class _Run:
    """One run: the client, the output's parts, and the chunks still to score."""

    def __init__(self, url: str, options: Options, truncate: bool | None) -> None:
        self.url = url
        self.options = options
        self.truncate = truncate

    async def file(
        self, source: Source, output: Path, chunk_rows: int, progress: RowsDone
    ) -> EndpointSummary:
        started = time.perf_counter()
        format_of(output)
        async with session(self.options, self.url) as http:
            self.client = client = Client(self.url, self.options, http)
            client.truncate = self.truncate
            info = await client.read_info()
            if source.pair_column and info.task == "feature-extraction":
                raise InputError("an embedding endpoint scores single texts: drop --pair-column.")
            self.id_column = source.id_column
            parts = parts_dir(output)
            claim(parts, self._fingerprint(source, chunk_rows))
            done = finished_parts(parts)
            total = source.count()
            rows_done = sum(rows for rows, _ in done.values())
            progress(rows_done, total)
            scored = 0
            async for index, rows, errors in self._chunks(source, chunk_rows, set(done), parts):
                done[index] = (rows, errors)
                scored += rows
                rows_done += rows
                progress(rows_done, total)
        ids = pa.field(source.id_column, pa.int64())
        join_parts(parts, sorted(done), output, pa.schema([ids, *result_schema(info)]))
        concurrency = client.limiter.concurrency
        return EndpointSummary(
            rows=rows_done,
            errors=sum(errors for _, errors in done.values()),
            scored=scored,
            seconds=time.perf_counter() - started,
            requests=client.requests,
            retries=dict(client.retries),
            retry_after_seconds=client.retry_after,
            peak_concurrency=concurrency.peak,
            mean_concurrency=concurrency.mean,
            latency_ms=_quantiles(client.latencies),
            bill=getattr(http, "bill", None),
        )

    # -- chunks, a few at a time so requests of the next start while this one's last finish ---

    async def _chunks(
        self, source: Source, chunk_rows: int, skip: set[int], parts: Path
    ) -> AsyncIterator[tuple[int, int, int]]:
        per_chunk = max(1, chunk_rows // self.client.texts_per_request())
        ceiling = self.options.concurrency or self.options.max_concurrency
        room = asyncio.Semaphore(max(2, -(-2 * ceiling // per_chunk)))
        finished: asyncio.Queue = asyncio.Queue()
        pending = 0

        async def one(chunk: Chunk) -> None:
            try:
                await finished.put(await self._chunk(chunk, parts))
            except Exception as error:  # handed to the reader, which raises it
                await finished.put(error)
            finally:
                room.release()

        tasks = set()
        for chunk in source.chunks(chunk_rows):
            if chunk.index in skip:
                continue
            await room.acquire()
            while not finished.empty():
                pending -= 1
                yield _result(finished.get_nowait())
            task = asyncio.create_task(one(chunk))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            pending += 1
        while pending:
            pending -= 1
            yield _result(await finished.get())

    async def _chunk(self, chunk: Chunk, parts: Path) -> tuple[int, int, int]:
        results = await score_texts(self.client, chunk.texts, chunk.pairs)
        table = pa.Table.from_arrays(
            [chunk.ids, *results.columns], names=[self.id_column, *results.column_names]
        )
        path = part_path(parts, chunk.index)
        await asyncio.to_thread(_write_part, table, path)
        return chunk.index, table.num_rows, table.num_rows - results.column(ERROR_COLUMN).null_count

    def _fingerprint(self, source: Source, chunk_rows: int) -> dict:
        stat = source.path.stat()
        return {
            "input": str(source.path.resolve()),
            "input_bytes": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "endpoint": self.url,
            "bundle_sha256": self.client.info.checksum,
            "text_column": source.text_column,
            "pair_column": source.pair_column,
            "id_column": source.id_column,
            "chunk_rows": chunk_rows,
            "truncate": self.truncate,
        }


async def score_texts(client: Client, texts: list, pairs: list | None = None) -> pa.Table:
    """The result columns for these rows, as the local engine's `score_rows` gives them."""
    paired = pairs is not None
    problems = [
        row_problem(text, pairs[i] if paired else None, paired=paired)
        for i, text in enumerate(texts)
    ]
    good = [i for i, problem in enumerate(problems) if problem is None]
    inputs = [[texts[i], pairs[i]] if paired else texts[i] for i in good]
    groups = list(_groups(inputs, client.texts_per_request(), client.payload_limit()))
    answers = await asyncio.gather(*(client.score(inputs[a:b]) for a, b in groups))
    values, scored = [], []
    for (start, _), answer in zip(groups, answers, strict=True):
        for offset, (value, error) in enumerate(answer):
            position = good[start + offset]
            if error is None:
                values.append(value)
                scored.append(position)
            else:
                problems[position] = error
    width = _width(client.info, values)
    matrix = np.asarray(values, dtype=np.float32).reshape(len(values), width)
    return result_columns(client.info, len(texts), scored, matrix, problems)


class BlockingClient:
    """A `Client` on its own event loop, for callers that are not async (Spark's Python workers).

    One per partition: its connections and its limiter last from one batch to the next.
    """

    def __init__(self, url: str, options: Options, truncate: bool | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = session(options, url)
        self.client = Client(url, options, self.http)
        self.client.truncate = truncate
        self.info = self.loop.run_until_complete(self.client.read_info())

    def score(self, texts: list, pairs: list | None = None) -> pa.Table:
        """The result columns for these rows (see `score_texts`)."""
        return self.loop.run_until_complete(score_texts(self.client, texts, pairs))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


# -- helpers ---------------------------------------------------------------------------------


def session(options: Options, url: str) -> httpx.AsyncClient:
    """What a run sends through: kept-alive HTTP connections, or for a `lambda:NAME[:ALIAS]`
    URL (`--aws-function`) the Lambda API, which takes the same `get`, `post` and `aclose`."""
    if not url.startswith(PREFIX):
        return Client.session(options)
    return Invoker(  # type: ignore[return-value]
        url.removeprefix(PREFIX),
        threads=options.concurrency or options.max_concurrency,
        timeout=options.timeout,
        endpoint_url=options.endpoint_url,
        region=options.region,
    )


def _groups(inputs: list, most: int, payload_limit: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive requests of at most `most` inputs and `payload_limit` bytes.

    A text's size is its JSON encoding's; a quarter of the limit is left for the rest of the body
    and for escapes, so a request never meets the platform's limit.
    """
    budget = payload_limit * 3 // 4
    start, size = 0, 0
    for end, item in enumerate(inputs):
        item_size = len(json.dumps(item).encode()) + 2
        if end > start and (end - start == most or size + item_size > budget):
            yield start, end
            start, size = end, 0
        size += item_size
    if start < len(inputs):
        yield start, len(inputs)


def _quantiles(seconds) -> dict[str, float]:
    if not len(seconds):
        return {}
    ms = np.percentile(np.frombuffer(seconds, dtype=np.float64) * 1e3, [50, 95, 99])
    return dict(zip(("q50", "q95", "q99"), (round(float(q), 1) for q in ms), strict=True))


def _write_part(table: pa.Table, path: Path) -> None:
    with atomic(path) as temp:
        pq.write_table(table, temp)


def _result(item):
    if isinstance(item, BaseException):
        raise item
    return item


def _width(info, values: list) -> int:
    """The width of the result vectors, also when no row of a chunk was scored."""
    if values:
        return len(values[0])
    if info.task == "feature-extraction":
        return info.dimension or 0
    return len(info.labels)
