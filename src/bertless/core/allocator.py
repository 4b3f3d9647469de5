"""glibc's malloc, set for a process that serves requests from many threads.

The predictor asks onnxruntime's arena to give back, after each run, what the run grew it by: one
request of 32 texts at full length otherwise leaves a process 260 MB larger for as long as it
lives (benchmarks/arena.py). What the arena gives back goes to malloc, and glibc keeps a heap per
thread (up to eight per CPU), each holding on to what was freed in it; with many request threads
a server's memory then crept up with its threads (13.6% over 1,600 requests from 8 clients, when
each request thread could run the model; core.batcher now runs it in one thread of its own).
Two heaps for the whole process keep it flat.

Within a heap, glibc returns only the free memory at its top to the system; what merged runs and
many request threads freed below that stays resident. After 32 clients, a server stayed 1.3x
its size before the burst; `malloc_trim(0)` gives back the free pages inside the heaps too
(`Trimmer`, started by the batcher when a burst is over).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Cap glibc's heaps at `ARENAS`; False where the C library has no `mallopt` (not glibc).

    Call it before the threads that serve requests start: heaps already made stay.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_ARENA_MAX, ARENAS) == 1


def trim() -> bool:
    """Give malloc's free pages back to the system (glibc's `malloc_trim(0)`); False where the
    C library has none. ctypes releases the GIL for the call, which walks every heap."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim(0)
    return True


class Trimmer:
    """Calls `release` (malloc_trim) once a burst is over and the model has been idle `quiet_s`.

    Trimming walks every heap holding its lock (120-180 ms after a 32-client burst on 2 busy
    CPUs), so it runs in a thread of its own, only after `burst_over` (requests had to wait:
    one request at a time, as on Lambda, never starts the thread), and only when no model run
    has been under way for `quiet_s`, so that traffic still coming is not made to wait on it.
    `idle_since` answers the monotonic time since which no run has been under way, or None
    while one is.
    """

    def __init__(
        self,
        idle_since: Callable[[], float | None],
        quiet_s: float,
        release: Callable[[], object] = trim,
    ) -> None:
        self._idle_since = idle_since
        self._quiet_s = quiet_s
        self._release = release
        self._pending = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def burst_over(self) -> None:
        """A burst has drained: release memory once the model stays idle for `quiet_s`."""
        with self._wake:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="trimmer", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                self._pending = False
            while (wait := self._quiet_left()) > 0:
                time.sleep(wait)
            self._release()

    def _quiet_left(self) -> float:
        """Seconds until the model will have been idle `quiet_s`, if nothing runs meanwhile."""
        since = self._idle_since()
        if since is None:
            return self._quiet_s
        return since + self._quiet_s - time.monotonic()
