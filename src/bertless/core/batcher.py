"""Bounded model work per instance, with batching across concurrent requests.

Cloud Run functions, Azure Flex Consumption and the local server hand one process many requests
at once. Left alone, each request thread runs the model on its own: the CPUs are shared by as many
runs as there are requests (none finishes sooner), and onnxruntime's arena grows for every run in
flight, so memory follows the concurrency. The `Batcher` admits at most `slots` model runs at a
time; other requests wait in a bounded queue, and a full queue is refused with 503 and
`Retry-After`, as TEI's `--max-concurrent-requests` does.

While requests wait, they can share one run: the request that gets a slot takes the waiting
requests' micro-batches along with its own, up to the maximum batch size, and hands each row back
to its owner (TEI's and Infinity's dynamic batching). The rows of one input do not depend on the
other rows of a batch, apart from float rounding in the padded width (within 1e-6 here).

There is no background thread and no waiting window: a request that finds a slot free runs at
once, in its own thread, as it would without a batcher, so one request at a time (Lambda) pays
only for a lock. When a run ends, the oldest waiting request is woken to run next and takes what
has queued up meanwhile.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from tokenizers import Encoding

from bertless.core.errors import BertlessError

Runner = Callable[[list[Encoding]], np.ndarray]


class OverloadedError(BertlessError):
    """The queue of waiting requests is full; the client should try again shortly."""

    status = 503
    error_type = "Overloaded"
    headers = MappingProxyType({"Retry-After": "1"})


@dataclass(eq=False)
class _Job:
    """One micro-batch of one request, waiting for its rows or for its turn to run."""

    encodings: list[Encoding]
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # woken to run (itself and whatever waits), not with its rows
    rows: np.ndarray | None = None
    error: BaseException | None = None


class Batcher:
    """Runs micro-batches through `runner`, at most `slots` at a time, merging waiting ones
    when `merge` is on; at most `queue_limit` micro-batches wait.

    `run` has the runner's signature, so the predictor calls it in the runner's place.
    """

    def __init__(
        self, runner: Runner, max_batch_size: int, queue_limit: int, merge: bool, slots: int = 1
    ) -> None:
        self._runner = runner
        self._max_batch_size = max_batch_size
        self._queue_limit = queue_limit
        self._merge = merge
        self._free = slots
        self._waiting: deque[_Job] = deque()
        self._lock = threading.Lock()

    def run(self, encodings: list[Encoding]) -> np.ndarray:
        """The runner's answer for `encodings`, computed alone or in a shared run."""
        job = _Job(encodings)
        with self._lock:
            if self._free > 0:
                self._free -= 1
                job.leads = True
            elif len(self._waiting) >= self._queue_limit:
                raise OverloadedError(
                    f"the server is busy ({self._queue_limit} requests are already waiting): "
                    "try again in a second."
                )
            else:
                self._waiting.append(job)
        if not job.leads:
            job.ready.wait()
        if job.leads:
            self._lead(job)
        if job.error is not None:
            raise job.error
        assert job.rows is not None
        return job.rows

    def _lead(self, job: _Job) -> None:
        """Run JOB with the waiting jobs that fit beside it; then pass the slot on."""
        batch = [job, *self._take_waiting(len(job.encodings))]
        try:
            rows = self._runner([e for j in batch for e in j.encodings])
        except BaseException as error:  # every owner hears of it, each in its own thread
            for member in batch:
                member.error = error
        else:
            start = 0
            for member in batch:
                member.rows = rows[start : start + len(member.encodings)]
                start += len(member.encodings)
        finally:
            self._pass_slot()
            for member in batch[1:]:
                member.ready.set()

    def _take_waiting(self, size: int) -> list[_Job]:
        """Waiting jobs, oldest first, that fit in one batch with SIZE rows already in it."""
        taken: list[_Job] = []
        if not self._merge:
            return taken
        with self._lock:
            while self._waiting and size + len(self._waiting[0].encodings) <= self._max_batch_size:
                size += len(self._waiting[0].encodings)
                taken.append(self._waiting.popleft())
        return taken

    def _pass_slot(self) -> None:
        """Wake the oldest waiting job to run next, or free the slot when none waits."""
        with self._lock:
            if not self._waiting:
                self._free += 1
                return
            successor = self._waiting.popleft()
        successor.leads = True
        successor.ready.set()

    def waiting(self) -> int:
        """Micro-batches waiting for a slot now (for metrics and tests)."""
        with self._lock:
            return len(self._waiting)
