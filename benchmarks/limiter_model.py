"""The adaptive limiter against a fixed concurrency cap, in a model with no machine in it.

Each step is one round trip: the real `Limiter` has `int(limit)` requests in flight; above the
cap (Lambda's reserved concurrency) some are throttled and the limiter hears one 429, else every
request answers in 1 s. What a step scores is min(in flight, cap) / cap. Printed: the mean over
the whole run (the ramp from 4 included) and over the steps after the ramp, for a few caps and
run lengths in round trips; plain AIMD (cut by 0.7, one more per round trip) would hold 0.85 after
the ramp, the mean of its sawtooth from 0.7 to 1.

    .venv/bin/python benchmarks/limiter_model.py
"""

from __future__ import annotations

import asyncio

from bertless.batch.adaptive import Limiter


def scored(cap: int, round_trips: int) -> list[float]:
    async def run() -> list[float]:
        limiter, steps = Limiter(4, 10_000), []
        for _ in range(round_trips):
            in_flight = max(1, int(limiter.limit))
            steps.append(min(in_flight, cap) / cap)
            for _ in range(in_flight):
                await limiter.acquire()
            limiter._last_cut = -1e9  # the last cut is a round trip ago
            for i in range(in_flight):
                await limiter.release(None if i >= cap else 1.0, overloaded=i >= cap)
        return steps

    return asyncio.run(run())


def main() -> None:
    print("cap  round trips  whole run  after the ramp")
    for cap in (16, 64, 256, 1000):
        for round_trips in (10, 50, 400):
            steps = scored(cap, round_trips)
            ramp = next(i for i, s in enumerate(steps) if s == 1.0)
            after = steps[ramp:]
            print(
                f"{cap:4d}  {round_trips:11d}  {sum(steps) / len(steps):9.2f}  "
                f"{sum(after) / len(after):14.2f}"
            )


if __name__ == "__main__":
    main()
