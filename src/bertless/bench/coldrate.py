"""How many requests meet a cold start, derived from a day's traffic and how long a cloud keeps an
idle instance, instead of guessed.

The model, stated once so a figure can be checked by hand or against a simulation:
- Within each hour of the profile, requests arrive as a Poisson process at that hour's rate `λ`,
  and each holds one of its instance's `concurrency` slots for the warm duration `s`. The
  requests in flight are then Poisson with mean `ρ = λ s` (an M/G/∞ queue; by PASTA a request
  sees that same distribution).
- A request goes to the oldest instance with a free slot, so it reaches instance j (1, 2, ...)
  when the c(j-1) slots of the older ones are all busy: the Erlang B probability `B(c(j-1), ρ)`
  (exact for this ordered entry, whatever the duration's distribution), and lands there with
  `p_j = B(c(j-1), ρ) - B(cj, ρ)`. Instance j is then used at rate `u_j = λ p_j`, taken as a
  Poisson stream of its own.
- An instance idle longer than the platform's idle lifetime `T` is gone: a request on instance j
  is cold when instance j had no request in the last T + s seconds, `exp(-u_j (T + s))`. So the
  share of cold requests is `Σ_j p_j exp(-u_j (T + s))` and the instances alive
  `Σ_j 1 - exp(-u_j (T + s))`.
- Instances kept warm (provisioned, minimum, always ready) are the first ones: never cold,
  always alive.
With sparse requests (one instance) this is the textbook `exp(-λ (T + s))`. What it leaves out,
each making real cold starts more frequent: a platform that spreads requests wider than
oldest-first; the overflow onto the newest instances being burstier than Poisson (a simulation
in the tests finds several times more cold starts there when T is only ~25 s against 0.2 s
requests, while the few-instance cases agree within 20%); bursts shorter than an hour (each hour
is taken as steady); and instances a platform recycles while busy (Lambda "every few hours",
no figure given).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from bertless.bench.cost import HOURS_PER_MONTH

HOURS = 24
DAYS_PER_MONTH = HOURS_PER_MONTH / HOURS
SECONDS_PER_HOUR = 3600
_TAIL = 12.0  # standard deviations of the requests in flight kept; beyond, terms are < 1e-30


class ProfileError(ValueError):
    """A traffic profile that cannot be read: one sentence saying why."""


@dataclass(frozen=True)
class ColdStarts:
    """What a month of a daily profile gives on one platform: cold starts and instances."""

    share: float  # of all requests, those meeting a cold start
    per_month: float
    mean_instances: float  # alive on average (busy or idle), warm ones included
    peak_instances: float  # alive on average in the busiest hour


def hour_of_traffic(
    rate_per_s: float, hold_s: float, concurrency: int, idle_s: float, warm: int = 0
) -> tuple[float, float]:
    """(share of requests that are cold, instances alive) for one steady hour (module docstring)."""
    if rate_per_s <= 0:
        return 0.0, float(warm)
    rho = max(rate_per_s * hold_s, 1e-12)  # an instant request still holds its slot a moment
    spread = _TAIL * math.sqrt(rho) + _TAIL
    low = int(max(0.0, rho - spread)) // concurrency * concurrency  # first slot of an instance
    high = int(rho + spread) + concurrency
    high += -high % concurrency  # the window ends where an instance's slots end
    slots = np.arange(low, high + 1, dtype=np.float64)
    # Poisson probabilities of `slots` in flight, in logs so that a large ρ does not overflow
    log_factorial = math.lgamma(low + 1) + np.concatenate(([0.0], np.cumsum(np.log(slots[1:]))))
    pmf = np.exp(slots * math.log(rho) - rho - log_factorial)
    below = pmf[0] * low / (rho - low) if low else 0.0  # P(N < low), a geometric tail
    erlang = pmf / (below + np.cumsum(pmf))  # Erlang B: the first m slots all busy
    at_instances = erlang[::concurrency]  # at m = c(j-1) for the window's instances, then past
    p = at_instances[:-1] - at_instances[1:]  # a request lands on instance j
    before = low // concurrency  # instances below the window: always busy, so alive and warm
    index = np.arange(before + 1, before + 1 + len(p))
    unused = np.exp(-rate_per_s * p * (idle_s + hold_s))  # no request since it last was idle
    cold_instances = index > warm
    share = float(np.sum(p * unused * cold_instances))
    alive = before + np.sum(np.where(cold_instances, 1 - unused, 1.0))
    return share, float(max(alive, warm))


def month_of_cold_starts(
    profile: tuple[float, ...],
    requests_per_month: float,
    hold_s: float,
    concurrency: int,
    idle_s: float,
    warm: int = 0,
) -> ColdStarts:
    """The month of `requests_per_month` spread over the days as `profile` spreads one day."""
    total = sum(profile)
    if requests_per_month <= 0 or total <= 0:
        return ColdStarts(0.0, 0.0, float(warm), float(warm))
    per_day = requests_per_month / DAYS_PER_MONTH  # the profile's day, scaled and repeated
    per_hour = [count / total * per_day for count in profile]
    cold_per_day, alive = 0.0, []
    for count in per_hour:
        share, instances = hour_of_traffic(
            count / SECONDS_PER_HOUR, hold_s, concurrency, idle_s, warm
        )
        cold_per_day += share * count
        alive.append(instances)
    share = cold_per_day / per_day
    return ColdStarts(share, share * requests_per_month, sum(alive) / len(alive), max(alive))


def parse_profile(text: str) -> tuple[float, ...]:
    """24 request counts, one per hour from midnight: given inline (commas or spaces), or a file
    of them (`#` starts a comment), or a JSON-lines request log whose lines carry a time
    (`timestamp`, `time` or the `_aws.Timestamp` of bertless's own EMF log line on Lambda),
    counted per hour of the day and divided by the days the log covers."""
    path = Path(text)
    if path.is_file():
        return _from_file(path)
    return _counts(text, f"--traffic-profile {text!r}")


def _from_file(path: Path) -> tuple[float, ...]:
    content = path.read_text(encoding="utf-8")
    if content.lstrip().startswith("{"):
        return _from_log(content.splitlines(), path)
    numbers = "\n".join(line.partition("#")[0] for line in content.splitlines())  # comments
    return _counts(numbers, str(path))


def _counts(text: str, where: str) -> tuple[float, ...]:
    pieces = [piece for piece in text.replace(",", " ").split() if piece]
    try:
        counts = tuple(float(piece) for piece in pieces)
    except ValueError:
        raise ProfileError(
            f"{where} is not a list of numbers: give {HOURS} request counts, one per hour"
        ) from None
    if len(counts) != HOURS:
        raise ProfileError(f"{where} has {len(counts)} numbers; a day's profile has {HOURS}")
    if any(count < 0 or math.isnan(count) for count in counts) or sum(counts) <= 0:
        raise ProfileError(f"{where}: request counts cannot be negative, and not all zero")
    return counts


def _from_log(lines: list[str], path: Path) -> tuple[float, ...]:
    counts = [0.0] * HOURS
    days: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            moment = _moment(json.loads(line))
        except (ValueError, TypeError, KeyError):
            raise ProfileError(
                f"{path}:{number} has no time bertless can read (a `timestamp` or `time` in ISO "
                "8601, or `_aws.Timestamp` in milliseconds)"
            ) from None
        counts[moment.hour] += 1
        days.add(moment.date().isoformat())
    if not days:
        raise ProfileError(f"{path} holds no request lines")
    return tuple(count / len(days) for count in counts)


def _moment(record: dict) -> datetime:
    from datetime import UTC

    if "_aws" in record:
        return datetime.fromtimestamp(record["_aws"]["Timestamp"] / 1000, UTC)
    stamp = record.get("timestamp", record.get("time"))
    moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment
