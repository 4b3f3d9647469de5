"""How many requests to keep in flight, and how long to wait before trying one again.

`Limiter` is additive increase, multiplicative decrease, as TCP congestion control and the AWS
SDKs' adaptive retry mode do it, with a latency check so that it stops raising once more requests
only queue up:

- It starts low and doubles its limit once per window (a window is as many completed requests as
  the limit) until the first sign of overload: TCP's slow start, so that a function that scales to
  a thousand instances is driven there in a few round trips, not a thousand.
- After that, in each window in which the limit was really used and the median latency stayed
  within `LATENCY_TOLERANCE` of the best median seen, it climbs back halfway to the limit at
  which it was last cut; once within one of it, it holds there `HOLD` windows, then probes past
  it by 1, 2, 4, ... a window, in case the cut was a passing fault and not a ceiling (BIC-TCP's
  binary search and max probing, CUBIC's plateau; the AWS SDKs use CUBIC). Against a fixed
  cap such as Lambda's reserved concurrency it so spends most windows just under the cap instead
  of in AIMD's sawtooth from 0.7x the cap up: 0.94x the cap after the ramp where AIMD holds
  0.85x (benchmarks/limiter_model.py). When the median climbs above that, the endpoint is
  queueing (a server with a few CPUs), and the limit eases down by 10%.
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
from collections import deque
from dataclasses import dataclass, field

DECREASE = 0.7
LATENCY_TOLERANCE = 2.0
EASE = 0.9
HOLD = 3


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
        self._cut_from = 0.0  # the limit at the last cut: where overload began
        self._held = 0  # windows spent at the plateau just under `_cut_from`
        self._probe = 1.0  # what the next raise past `_cut_from` adds
        self._waiting: deque[asyncio.Future] = deque()

    async def acquire(self) -> None:
        """Wait for a free slot under the current limit, first come first served.

        Each waiter is woken only when a slot is handed to it: a run queues thousands of
        requests, and waking them all at every release (a Condition's notify_all) cost more CPU
        than the requests themselves.
        """
        if self.in_flight < self._slots() and not self._waiting:
            self._take()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter  # `_hand_over` took the slot for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back()  # handed a slot just as we were cancelled
            else:
                self._waiting.remove(waiter)
            raise

    async def release(self, latency: float | None, *, overloaded: bool = False) -> None:
        """A request ended: after `latency` seconds with an answer, or as a sign of overload."""
        self.concurrency.changed(self.in_flight)
        self.in_flight -= 1
        if not self.fixed:
            if overloaded:
                self._cut()
            elif latency is not None:
                self._observe(latency)
        self._hand_over()

    def _slots(self) -> int:
        return max(1, int(self.limit))

    def _take(self) -> None:
        self.concurrency.changed(self.in_flight)
        self.in_flight += 1
        self.concurrency.peak = max(self.concurrency.peak, self.in_flight)
        self._window_full |= self.in_flight >= int(self.limit)

    def _give_back(self) -> None:
        self.concurrency.changed(self.in_flight)
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the free slots under the limit to the longest waiters."""
        while self._waiting and self.in_flight < self._slots():
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    def _cut(self) -> None:
        now = time.perf_counter()
        if self._window:
            self._round_trip = statistics.median(self._window)
        self._slow_start = False
        if now - self._last_cut >= self._round_trip:
            self._cut_from, self._held, self._probe = self.limit, 0, 1.0
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
            self.limit = self._raised()
        self.limit = min(self.limit, float(self.maximum))
        self._new_window()

    def _raised(self) -> float:
        if self._slow_start:
            return self.limit * 2
        if self.limit < self._cut_from - 1:
            return self.limit + (self._cut_from - self.limit) / 2
        if self._held < HOLD:
            self._held += 1
            return self.limit
        raised, self._probe = self.limit + self._probe, self._probe * 2
        return raised

    def _new_window(self) -> None:
        self._window = []
        self._window_full = self.in_flight >= int(self.limit)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): full jitter under a cap."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
