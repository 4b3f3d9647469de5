"""Bounded model work per instance, with batching across concurrent requests.

Cloud Run functions, Azure Flex Consumption and the local server hand one process many requests
at once. Left alone, each request thread runs the model on its own: the CPUs are shared by as many
runs as there are requests (none finishes sooner), and onnxruntime's arena grows for every run in
flight, so memory follows the concurrency. The `Batcher` admits at most `slots` model runs at a
time; other requests wait in a bounded queue, and a full queue is refused with 503 and
`Retry-After`, as TEI's `--max-concurrent-requests` does.

While requests wait, they can share one run: the request that gets a slot takes the waiting
requests' micro-batches along with its own, up to the maximum batch size, and hands each row back
to its owner (TEI's and Infinity's dynamic batching). On a CPU a run is padded to its longest
text, so only micro-batches of similar length are merged (see `PADDING_ALLOWANCE`). The rows of
one input do not depend on the other rows of a batch, apart from float rounding in the padded
width (within 1e-5 in the tests).

There is no background thread and no waiting window: a request that finds a slot free runs at
once, in its own thread, as it would without a batcher, so one request at a time (Lambda) pays
only for a lock. When a run ends, the oldest waiting request is woken to run next and takes what
has queued up meanwhile.

When a burst is over (requests had waited, and the last run has handed the slot to nobody), the
memory malloc holds free is given back to the system once the model has been idle `QUIET_S`
(`core.allocator.Trimmer`): without it a server stayed 1.3x its size after 32 clients.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
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
    """The queue of waiting requests is full; the client should try again shortly."""

    status = 503
    error_type = "Overloaded"
    headers = MappingProxyType({"Retry-After": "1"})


@dataclass(eq=False)
class _Job:
    """One micro-batch of one request, waiting for its rows or for its turn to run."""

    encodings: list[Encoding]
    width: int = 0  # the longest encoding: what the job's rows are padded to when run alone
    tokens: int = 0  # rows times width: the tokens of its run alone, padding included
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # woken to run (itself and whatever waits), not with its rows
    rows: np.ndarray | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.width = max(len(e.ids) for e in self.encodings)
        self.tokens = self.width * len(self.encodings)


class Batcher:
    """Runs micro-batches through `runner`, at most `slots` at a time, merging waiting ones
    when `merge` is on; at most `queue_limit` micro-batches wait.

    `run` has the runner's signature, so the predictor calls it in the runner's place.
    `release` gives memory back after a burst (see `core.allocator.Trimmer`).
    """

    def __init__(
        self,
        runner: Runner,
        max_batch_size: int,
        queue_limit: int,
        merge: bool,
        slots: int = 1,
        release: Callable[[], object] = trim,
        quiet_s: float = QUIET_S,
    ) -> None:
        self._runner = runner
        self._max_batch_size = max_batch_size
        self._queue_limit = queue_limit
        self._merge = merge
        self._slots = slots
        self._free = slots
        self._waiting: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._burst = False  # a request has waited since the queue last drained
        self._idle_since = time.monotonic()
        self._trimmer = Trimmer(self.idle_since, quiet_s, release)

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
                self._burst = True
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
        batch = [job, *self._take_waiting(job)]
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

    def _take_waiting(self, leader: _Job) -> list[_Job]:
        """Waiting jobs worth running in LEADER's run, oldest first: each fits in the maximum
        batch size and adds fewer padding tokens than a run's fixed cost is worth
        (`PADDING_ALLOWANCE`). The jobs left keep their order and run next."""
        if not self._merge:
            return []
        rows, width = len(leader.encodings), leader.width
        taken: list[_Job] = []
        left: deque[_Job] = deque()
        with self._lock:
            for job in self._waiting:
                wider = max(width, job.width)
                padding = (rows + len(job.encodings)) * wider - rows * width - job.tokens
                if rows + len(job.encodings) <= self._max_batch_size and (
                    padding <= PADDING_ALLOWANCE
                ):
                    taken.append(job)
                    rows, width = rows + len(job.encodings), wider
                else:
                    left.append(job)
            self._waiting = left
        return taken

    def _pass_slot(self) -> None:
        """Wake the oldest waiting job to run next, or free the slot when none waits (and
        when that ends a burst, have memory given back once all stays quiet)."""
        with self._lock:
            if not self._waiting:
                self._free += 1
                self._idle_since = time.monotonic()
                burst_over, self._burst = self._burst, False
                if burst_over:
                    self._trimmer.burst_over()
                return
            successor = self._waiting.popleft()
        successor.leads = True
        successor.ready.set()

    def idle_since(self) -> float | None:
        """The monotonic time since which no model run has been under way, or None now."""
        with self._lock:
            return self._idle_since if self._free == self._slots else None

    def waiting(self) -> int:
        """Micro-batches waiting for a slot now (for metrics and tests)."""
        with self._lock:
            return len(self._waiting)
