"""Cold starts derived from traffic: against the textbook value and a simulation of the same
policy, request by request (written here, independent of the closed form it checks)."""

import json
import math
import random

import pytest

from bertless.bench import warm
from bertless.bench.coldrate import (
    DAYS_PER_MONTH,
    ProfileError,
    hour_of_traffic,
    month_of_cold_starts,
    parse_profile,
)
from bertless.cli.main import main


def simulate(rate, hold_s, concurrency, idle_s, requests, warm=0, seed=0):
    """Share of cold requests: Poisson arrivals, each on the oldest instance with a free slot,
    an instance gone once idle longer than `idle_s` (the first `warm` never go, never start)."""
    rng = random.Random(seed)
    now, cold = 0.0, 0
    instances = []  # per instance: [ends of the requests it holds, idle since]
    for _ in range(requests):
        now += rng.expovariate(rate)
        alive = []
        for index, (ends, idle_since) in enumerate(instances):
            running = [end for end in ends if end > now]
            if ends and not running:
                idle_since = max(ends)
            if running or now - idle_since <= idle_s or index < warm:
                alive.append([running, idle_since])
        instances = alive
        for instance in instances:
            if len(instance[0]) < concurrency:
                instance[0].append(now + hold_s)
                break
        else:
            cold += len(instances) >= warm
            instances.append([[now + hold_s], now])
    return cold / requests


def test_sparse_traffic_meets_the_textbook_exp_minus_rate_times_idle_time():
    # one request every 10 minutes, instances kept 10 minutes after a 20 ms request: e^-1.00003
    share, instances = hour_of_traffic(1 / 600, 0.02, 1, 600)
    assert share == pytest.approx(math.exp(-600.02 / 600), rel=1e-4)
    assert instances == pytest.approx(1 - math.exp(-600.02 / 600), rel=1e-4)


@pytest.mark.parametrize(
    ("rate", "hold_s", "concurrency", "idle_s"),
    [
        (1 / 60, 0.02, 1, 60),  # one instance, cold after a quiet minute
        (5.0, 0.5, 1, 60),  # several instances: the top ones idle out
        (2.0, 1.0, 1, 30),
        (20.0, 0.5, 4, 5),  # four requests per instance
        (0.5, 0.5, 4, 2),
        (10.0, 1.0, 2, 10),
    ],
)
def test_the_closed_form_agrees_with_a_simulation_of_the_same_policy(
    rate, hold_s, concurrency, idle_s
):
    expected = simulate(rate, hold_s, concurrency, idle_s, requests=30_000)
    share, _ = hour_of_traffic(rate, hold_s, concurrency, idle_s)
    assert expected > 0.0005  # enough cold starts in the simulation to compare
    assert share == pytest.approx(expected, rel=0.2)


def test_warm_instances_take_the_cold_starts_of_the_first_ones_away():
    # one request every 10 minutes on one kept-warm instance: only overlaps reach a second one
    share, instances = hour_of_traffic(1 / 600, 0.02, 1, 600, warm=1)
    assert share < 1e-4
    assert instances >= 1
    assert simulate(1 / 600, 0.02, 1, 600, requests=3000, warm=1) < 1e-3


def test_a_flat_day_is_one_hour_of_traffic_repeated():
    requests = 24 * 600 * DAYS_PER_MONTH  # 600 requests an hour
    found = month_of_cold_starts((1.0,) * 24, requests, 0.02, 1, 600)
    share, instances = hour_of_traffic(600 / 3600, 0.02, 1, 600)
    assert found.share == pytest.approx(share)
    assert found.per_month == pytest.approx(share * requests)
    assert found.mean_instances == pytest.approx(instances)
    assert found.peak_instances == pytest.approx(instances)


def test_a_profile_gives_its_shape_and_the_month_its_volume():
    night_and_day = (1.0,) * 12 + (100.0,) * 12
    one = month_of_cold_starts(night_and_day, 1e6, 0.02, 1, 600)
    scaled = month_of_cold_starts(tuple(10 * x for x in night_and_day), 1e6, 0.02, 1, 600)
    assert one == scaled
    # by hand: 12 hours at 1/101 and 12 at 100/101 of each day's requests
    per_day = 1e6 / DAYS_PER_MONTH
    night, day = per_day / 101 / 12, per_day * 100 / 101 / 12
    cold_night = hour_of_traffic(night / 3600, 0.02, 1, 600)[0] * night
    cold_day = hour_of_traffic(day / 3600, 0.02, 1, 600)[0] * day
    assert one.per_month == pytest.approx(12 * (cold_night + cold_day) * DAYS_PER_MONTH)


def test_a_profile_is_24_numbers_inline_or_in_a_file(tmp_path):
    counts = ",".join(str(hour) for hour in range(1, 25))
    assert parse_profile(counts) == tuple(float(hour) for hour in range(1, 25))
    path = tmp_path / "day.txt"
    path.write_text("# a day\n" + "\n".join(f"{hour}  # h{hour}" for hour in range(1, 25)))
    assert parse_profile(str(path))[23] == 24.0
    with pytest.raises(ProfileError, match="has 3 numbers; a day's profile has 24"):
        parse_profile("1,2,3")
    with pytest.raises(ProfileError, match="not a list of numbers"):
        parse_profile("a," * 23 + "b")


def test_a_request_log_is_counted_per_hour_and_divided_by_its_days(tmp_path):
    lines = [
        {"message": "request", "_aws": {"Timestamp": 1_764_374_400_000}},  # 2025-11-29 00:00Z
        {"message": "request", "timestamp": "2025-11-29T13:05:00Z"},
        {"message": "request", "time": "2025-11-30T13:59:59+00:00"},
        {"message": "request", "timestamp": "2025-11-30T14:00:00.5+01:00"},  # 13:00 UTC
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    profile = parse_profile(str(path))
    assert profile[0] == 0.5 and profile[13] == 1.5  # 1 and 3 requests over 2 days
    assert sum(profile) == 2.0
    path.write_text('{"message": "request"}\n')
    with pytest.raises(ProfileError, match=r"requests\.jsonl:1 has no time"):
        parse_profile(str(path))


def test_each_cloud_prices_the_cold_starts_its_idle_lifetime_gives():
    traffic = warm.Traffic(
        requests_per_month=1e5,
        duration_ms=20,
        cold_start_ms=1000,
        cold_start_rate=0.01,
        memory_mb=1024,
        profile=(1.0,) * 24,
    )
    on_demand = warm.Option(warm.ON_DEMAND)
    rows = {cloud: warm.month(cloud, on_demand, traffic) for cloud in warm.WARM_CLOUDS}
    hourly = 1e5 / DAYS_PER_MONTH / 24 / 3600
    for cloud, idle_s in (("aws", 600), ("gcp", 900), ("azure", 1200)):  # the platforms' data
        share, _ = hour_of_traffic(hourly, 0.02, 1, idle_s)
        assert rows[cloud].cold_starts == pytest.approx(share * 1e5)
    # AWS: each cold start bills its 1 s of INIT at 1 GB
    assert rows["aws"].cold_starts_part == pytest.approx(rows["aws"].cold_starts * 0.0000166667)


def test_cost_command_derives_cold_starts_from_a_profile(capsys):
    argv = ["cost", "--duration-ms", "20", "--memory", "1024", "--cold-start-ms", "1000"]
    profile = ",".join(["100"] * 24)
    assert main([*argv, "--traffic-profile", profile, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["warm"]["traffic"]["requests_per_month"] == round(2400 * DAYS_PER_MONTH)
    aws = next(o for o in data["warm"]["options"] if o["cloud"] == "aws")
    assert 0 < aws["derived"]["share"] < 0.01
    assert main([*argv, "--traffic-profile", "1,2"]) == 2
    assert "has 2 numbers" in capsys.readouterr().err
    assert main(["cost", "--duration-ms", "20", "--traffic-profile", profile]) == 2
    assert "--traffic-profile prices cold starts: give --cold-start-ms" in capsys.readouterr().err
