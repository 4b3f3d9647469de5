"""glibc's malloc, set for a process that serves requests from many threads.

The predictor asks onnxruntime's arena to give back, after each run, what the run grew it by: one
request of 32 texts at full length otherwise leaves a process 260 MB larger for as long as it
lives (benchmarks/arena.py). What the arena gives back goes to malloc, and glibc keeps a heap per
thread (up to eight per CPU), each holding on to what was freed in it; since every request thread
may lead a model run (core.batcher), a server's memory then crept up with its threads (13.6% over
1,600 requests from 8 clients). Two heaps for the whole process keep it flat.
"""

from __future__ import annotations

import ctypes

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
