"""Bounded model work per instance, with batching across concurrent requests.

Cloud Run functions, Azure Flex Consumption and the local server hand one process many requests
at once. Left alone, each request thread runs the model on its own: the CPUs are shared by as many
runs as there are requests (none finishes sooner), and onnxruntime's arena grows for every run in
flight, so memory follows the concurrency. The `Batcher` runs the model in one thread of its own,
one run at a time; at most so many requests are in its hands at once, running or waiting, and
one more is refused with 503 and `Retry-After`, as TEI's `--max-concurrent-requests` does. A
request is let in whole (`admitted`), before its first micro-batch: one of more rows than the
maximum batch size (a similarity's 32 sentences and its query) runs as two, and must not be
refused after the first has run.

While requests wait, they share a run: the model thread takes the oldest waiting micro-batch and
the others that fit beside it, up to the maximum batch size, and hands each row back to its owner
(TEI's and Infinity's dynamic batching). On a CPU a run is padded to its longest text, so only
micro-batches of similar length are merged (see `PADDING_ALLOWANCE`). The rows of one input do not
depend on the other rows of a batch, apart from float rounding in the padded width (within 1e-5 in
the tests).

Why a thread of its own (Infinity's design), not the request threads taking turns: when a run
ends, the model thread takes what queued meanwhile at once, where a request thread handed the turn
had first to be woken and scheduled while the others held the GIL. In the same run of
benchmarks/concurrency.py, 8 clients of batch-1 /embed got 1.12x the texts/s of requests taking
turns, and one client 1.05x (fp32 MiniLM, 2 CPUs). There is no waiting window.

A thread that calls `run` while the model is idle and nothing waits runs the model itself, as
without a batcher: one request at a time (Lambda) pays no hand-off to the model thread, which
cost 1.07x a direct session call at q50 in process on a quiet machine. Whatever queues
meanwhile is the model thread's, once that run ends. An event loop calls `submit`, which always
queues: the loop must not run the model itself.

When a burst is over (requests had waited, and the queue has drained), the memory malloc holds
free is given back to the system once the model has been idle `QUIET_S`
(`core.allocator.Trimmer`): without it a server stayed 1.3x its size after 32 clients.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from tokenizers import Encoding

from bertless.core.allocator import Trimmer, trim
from bertless.core.errors import BertlessError

Runner = Callable[[list[Encoding]], np.ndarray]

# Padding tokens a merge may add. A model run costs a fixed part (operator dispatch, thread
# wake-ups) plus a part per padded token; merging saves the fixed part and pays for the padding.
# For MiniLM-L6 on 2 CPUs the fixed part was worth 23 to 29 tokens (benchmarks/batch_cost.py):
# merging 8 texts of about 21 tokens halved their time, while merging 8 texts of mixed lengths
# (8 to 192 tokens) padded to the longest was 20% slower than running each alone.
PADDING_ALLOWANCE = 24

# Seconds the model stays idle after a burst before malloc's free memory is given back.
QUIET_S = 1.0


class OverloadedError(BertlessError):
    """The model has as many requests as it may hold; the client should try again shortly."""

    status = 503
    error_type = "Overloaded"
    headers = MappingProxyType({"Retry-After": "1"})


@dataclass(eq=False)
class _Job:
    """One micro-batch of one request, waiting for its rows."""

    encodings: list[Encoding]
    width: int = 0  # the longest encoding: what the job's rows are padded to when run alone
    tokens: int = 0  # rows times width: the tokens of its run alone, padding included
    rows: Future[np.ndarray] = field(default_factory=Future)

    def __post_init__(self) -> None:
        self.width = max(len(e.ids) for e in self.encodings)
        self.tokens = self.width * len(self.encodings)


class Batcher:
    """Runs micro-batches through `runner` in a thread of its own, one run at a time, merging
    waiting ones when `merge` is on; at most `queue_limit` requests are `admitted` at once.

    `run` has the runner's signature, so the predictor calls it in the runner's place.
    `release` gives memory back after a burst (see `core.allocator.Trimmer`).
    """

    def __init__(
        self,
        runner: Runner,
        max_batch_size: int,
        queue_limit: int,
        merge: bool,
        release: Callable[[], object] = trim,
        quiet_s: float = QUIET_S,
    ) -> None:
        self._runner = runner
        self._max_batch_size = max_batch_size
        self._queue_limit = queue_limit
        self._merge = merge
        self._waiting: deque[_Job] = deque()
        self._admitted = 0  # requests between entering and leaving `admitted`
        self._queued = threading.Condition()  # a job was queued, or a run ended
        self._running = False  # a run is under way, in the model thread or a caller's
        self._burst = False  # a request has waited behind a run since the queue last drained
        self._idle_since = time.monotonic()
        self._thread: threading.Thread | None = None
        self._trimmer = Trimmer(self.idle_since, quiet_s, release)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Let one request's micro-batches in, or refuse it with `OverloadedError` when
        `queue_limit` requests are already running or waiting."""
        with self._queued:
            if self._admitted >= self._queue_limit:
                raise OverloadedError(
                    f"the server is busy ({self._queue_limit} requests are already running or "
                    "waiting): try again in a second."
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._queued:
                self._admitted -= 1

    def run(self, encodings: list[Encoding]) -> np.ndarray:
        """The runner's answer for `encodings`, computed alone or in a shared run; in the
        calling thread when the model is idle."""
        with self._queued:
            alone = not self._running and not self._waiting
            self._running |= alone
        if not alone:
            return self.submit(encodings).result()
        job = _Job(encodings)
        self._run([job])
        self._ended()
        return job.rows.result()

    def submit(self, encodings: list[Encoding]) -> Future[np.ndarray]:
        """Queue `encodings` for the model thread; the future holds their rows or the run's
        error. An event loop awaits it (`asyncio.wrap_future`) where a thread would block."""
        job = _Job(encodings)
        with self._queued:
            self._waiting.append(job)
            self._burst |= self._running or len(self._waiting) > 1  # it waits behind another
            self._start_thread()
            self._queued.notify()
        return job.rows

    def _start_thread(self) -> None:
        """Start the model thread at the first request (called holding the lock). A forked
        process has the object but not the thread: gunicorn forks its workers."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name="model", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        """The model thread: run the waiting jobs, oldest first, for as long as the process."""
        while True:
            with self._queued:
                while self._running or not self._waiting:
                    self._queued.wait()
                self._running = True
                batch = self._take_batch()
            if batch:
                self._run(batch)
            self._ended()

    def _ended(self) -> None:
        """A run is over: the model thread takes what waits; or, with nothing waiting, the model
        is idle (and when that ends a burst, memory is given back once all stays quiet)."""
        with self._queued:
            self._running = False
            if self._waiting:
                self._queued.notify()
                return
            self._idle_since = time.monotonic()
            burst_over, self._burst = self._burst, False
            if burst_over:
                self._trimmer.burst_over()

    def _run(self, batch: list[_Job]) -> None:
        """One model run for BATCH; each owner gets its rows, or the error."""
        try:
            rows = self._runner([e for job in batch for e in job.encodings])
        except BaseException as error:  # every owner hears of it
            for job in batch:
                job.rows.set_exception(error)
        else:
            start = 0
            for job in batch:
                job.rows.set_result(rows[start : start + len(job.encodings)])
                start += len(job.encodings)

    def _take_batch(self) -> list[_Job]:
        """The oldest waiting job and the waiting jobs worth running beside it, oldest first:
        each fits in the maximum batch size and adds fewer padding tokens than a run's fixed
        cost is worth (`PADDING_ALLOWANCE`). The jobs left keep their order and run next.

        A job whose future was cancelled (its client left: `local.asgi`) is dropped unrun, as
        TEI drops the entries of clients gone; a job taken is marked running, so that it can no
        longer be cancelled and its rows can always be set. Called holding the lock."""
        self._waiting = deque(job for job in self._waiting if not job.rows.cancelled())
        if not self._waiting:
            return []
        leader = self._waiting.popleft()
        if not self._merge:
            return _claimed([leader])
        rows, width = len(leader.encodings), leader.width
        taken: list[_Job] = [leader]
        left: deque[_Job] = deque()
        for job in self._waiting:
            wider = max(width, job.width)
            padding = (rows + len(job.encodings)) * wider - rows * width - job.tokens
            if rows + len(job.encodings) <= self._max_batch_size and (padding <= PADDING_ALLOWANCE):
                taken.append(job)
                rows, width = rows + len(job.encodings), wider
            else:
                left.append(job)
        self._waiting = left
        return _claimed(taken)

    def idle_since(self) -> float | None:
        """The monotonic time since which no model run has been under way, or None now."""
        with self._queued:
            busy = self._running or self._waiting
            return None if busy else self._idle_since

    def waiting(self) -> int:
        """Micro-batches waiting for the model now (for metrics and tests)."""
        with self._queued:
            return len(self._waiting)


def _claimed(jobs: list[_Job]) -> list[_Job]:
    """The JOBS whose clients still want them, each marked running so that it can no longer be
    cancelled; one cancelled since the queue was swept is left out."""
    return [job for job in jobs if job.rows.set_running_or_notify_cancel()]
