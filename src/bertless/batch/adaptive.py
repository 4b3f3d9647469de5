"""How many requests to keep in flight, and how long to wait before trying one again.

`Limiter` is additive increase, multiplicative decrease, as TCP congestion control and the AWS
SDKs' adaptive retry mode do it, with a latency check so that it stops raising once more requests
only queue up:

- It starts low and doubles its limit once per window (a window is as many completed requests as
  the limit) until the first sign of overload: TCP's slow start, so that a function that scales to
  a thousand instances is driven there in a few round trips, not a thousand.
- After that it adds one per window in which the limit was really used and the median latency
  stayed within `LATENCY_TOLERANCE` of the best median seen: more requests in flight then mean
  more answers. When the median climbs above that, the endpoint is queueing (a server with a few
  CPUs), and the limit eases down by 10%.
- A throttle (429), an unavailable answer (503), a gateway timeout or a client timeout cuts the
  limit by `DECREASE` (0.7, the AWS SDKs' beta), at most once per round trip, so a burst of
  throttles answered together counts as one signal, as a TCP window's losses do.

`backoff` is capped exponential backoff with full jitter (the AWS Architecture Blog's
"Exponential Backoff And Jitter"): clients that failed together do not retry together.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field

DECREASE = 0.7
LATENCY_TOLERANCE = 2.0
EASE = 0.9


@dataclass
class Concurrency:
    """Requests in flight over a run: the peak, and the mean weighted by time."""

    peak: int = 0
    _area: float = 0.0
    _since: float = field(default_factory=time.perf_counter)
    _start: float = field(default_factory=time.perf_counter)

    def changed(self, in_flight_before: int) -> None:
        now = time.perf_counter()
        self._area += in_flight_before * (now - self._since)
        self._since = now

    @property
    def mean(self) -> float:
        elapsed = self._since - self._start
        return self._area / elapsed if elapsed > 0 else 0.0


class Limiter:
    """A gate that lets at most `limit` requests through at once, the limit set as above.

    `fixed` keeps the limit where it starts (`--concurrency N`); the adaptive one starts at
    `initial` and stays within 1..`maximum`.
    """

    def __init__(self, initial: int, maximum: int, *, fixed: bool = False) -> None:
        self.limit = float(min(initial, maximum))
        self.maximum = maximum
        self.fixed = fixed
        self.in_flight = 0
        self.concurrency = Concurrency()
        self._slow_start = True
        self._window: list[float] = []
        self._window_full = False  # the limit was reached during this window
        self._best_median = float("inf")
        self._round_trip = 0.0  # the last window's median latency, kept across windows
        self._last_cut = 0.0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for a free slot under the current limit."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.concurrency.changed(self.in_flight)
            self.in_flight += 1
            self.concurrency.peak = max(self.concurrency.peak, self.in_flight)
            self._window_full |= self.in_flight >= int(self.limit)

    async def release(self, latency: float | None, *, overloaded: bool = False) -> None:
        """A request ended: after `latency` seconds with an answer, or as a sign of overload."""
        async with self._changed:
            self.concurrency.changed(self.in_flight)
            self.in_flight -= 1
            if not self.fixed:
                if overloaded:
                    self._cut()
                elif latency is not None:
                    self._observe(latency)
            self._changed.notify_all()

    def _cut(self) -> None:
        now = time.perf_counter()
        if self._window:
            self._round_trip = statistics.median(self._window)
        self._slow_start = False
        if now - self._last_cut >= self._round_trip:
            self.limit = max(1.0, self.limit * DECREASE)
            self._last_cut = now
            self._new_window()

    def _observe(self, latency: float) -> None:
        self._window.append(latency)
        if len(self._window) < max(4, int(self.limit)):
            return
        median = self._round_trip = statistics.median(self._window)
        self._best_median = min(self._best_median, median)
        if median > LATENCY_TOLERANCE * self._best_median:
            self._slow_start = False
            self.limit = max(1.0, self.limit * EASE)
        elif self._window_full:
            self.limit = self.limit * 2 if self._slow_start else self.limit + 1
        self.limit = min(self.limit, float(self.maximum))
        self._new_window()

    def _new_window(self) -> None:
        self._window = []
        self._window_full = self.in_flight >= int(self.limit)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): full jitter under a cap."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
