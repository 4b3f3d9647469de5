"""The month with cold starts and warm capacity, against values worked out by hand.

Prices used below (from src/bertless/platforms/{aws,gcp,azure}.py, written out so a changed price
fails loudly); a month is 730 hours = 2,628,000 s:
AWS x86_64 $0.0000166667/GB-s, $0.20/1M; INIT billed like duration; provisioned concurrency
$0.0000041667/GB-s configured + $0.0000097222/GB-s served; SnapStart cache $0.0000015046/GB-s,
restore $0.0001397998/GB. Cloud Run functions $0.000024/vCPU-s + $0.0000025/GiB-s in 100 ms
steps, $0.40/1M, start-up billed; an idle minimum instance $0.0000025/vCPU-s + $0.0000025/GiB-s.
Azure Flex $0.000026/GB-s of the instance for at least 1 s, $0.40/1M; always ready: baseline
$0.000004/GB-s, served $0.000016/GB-s. t4g.nano $0.0042/hour.
"""

import json
from dataclasses import replace

import pytest

from bertless.bench import warm
from bertless.bench.warm import SNAPSTART, WARM, Option, Traffic
from bertless.cli.main import main
from bertless.platforms import limits

MONTH_S = 2_628_000
# 1 million requests of 20 ms at 1 GB, a 1 s start-up for 1% of them: the README's default model
README = Traffic(
    requests_per_month=1_000_000,
    duration_ms=20,
    cold_start_ms=1000,
    cold_start_rate=0.01,
    memory_mb=1024,
)


ON_DEMAND = Option(warm.ON_DEMAND)


def month(cloud, option=ON_DEMAND, traffic=README, arch="x86_64"):
    return warm.month(cloud, option, traffic, arch)


# --- AWS ----------------------------------------------------------------------------------------
def test_aws_bills_init_at_one_percent_cold_starts():
    m = month("aws")
    # requests: 1M * 0.02 s * 1 GB * 0.0000166667 = 0.333334; + 0.20 = 0.533334
    assert m.requests_part == pytest.approx(0.533334)
    # 10,000 cold starts * 1 s * 1 GB * 0.0000166667 = 0.166667: about a third more
    assert m.cold_starts == pytest.approx(10_000)
    assert m.cold_starts_part == pytest.approx(0.166667)
    assert m.warm_capacity_part == 0
    assert m.total == pytest.approx(0.700001)


def test_snapstart_caches_one_version_at_1_gb_for_a_month_and_bills_restores():
    m = month("aws", Option(SNAPSTART))
    # cache: 1 GB * 2,628,000 s * 0.0000015046 = 3.9540888
    assert m.warm_capacity_part == pytest.approx(3.9540888)
    # restores: 10,000 * 1 GB * 0.0001397998 = 1.397998; no INIT billed
    assert m.cold_starts_part == pytest.approx(1.397998)
    assert m.requests_part == pytest.approx(0.533334)


def test_provisioned_concurrency_bills_its_capacity_and_serves_at_its_own_price():
    m = month("aws", Option(WARM, 1))
    # 1M * 0.02 s = 20,000 s busy < one instance's month: all served, no cold start
    assert m.cold_starts == 0 and m.cold_starts_part == 0
    # capacity: 2,628,000 s * 1 GB * 0.0000041667 = 10.9500876
    assert m.warm_capacity_part == pytest.approx(10.9500876)
    # served: 20,000 GB-s * 0.0000097222 = 0.194444; + 0.20 requests
    assert m.requests_part == pytest.approx(0.394444)
    assert m.option == "provisioned concurrency 1"


def test_requests_beyond_the_warm_capacity_run_on_demand_with_cold_starts():
    # 262,800,000 requests * 0.02 s = 5,256,000 s: two instances busy on average, one provisioned
    busy = replace(README, requests_per_month=262_800_000)
    m = month("aws", Option(WARM, 1), busy)
    assert m.cold_starts == pytest.approx(131_400_000 * 0.01)
    # half served: 131.4M * 0.02 * 0.0000097222 = 25.5499...; half on demand at 0.0000166667
    expected = 131_400_000 * 0.02 * (0.0000097222 + 0.0000166667) + 262.8 * 0.20
    assert m.requests_part == pytest.approx(expected)


def test_break_even_against_the_vm_is_where_the_month_costs_as_much():
    found = warm.option_cost("aws", ON_DEMAND, README)
    # 0.700001 $ per million; the VM: 0.0042 * 730 = 3.066 $ a month
    assert found.break_even_requests_per_month == pytest.approx(3.066 / 0.700001e-6, rel=1e-6)
    # one provisioned instance already costs more than the VM: never cheaper
    assert warm.option_cost("aws", Option(WARM, 1), README).break_even_requests_per_month == 0


# --- Google -------------------------------------------------------------------------------------
def test_gcp_at_concurrency_8_shares_an_instance_among_8_requests():
    # 100 requests a second of 100 ms: 10 in flight on average, so instances are full at 8
    busy = replace(
        README, requests_per_month=262_800_000, duration_ms=100, memory_mb=2048, concurrency=8
    )
    m = month("gcp", traffic=busy)
    # 2 GiB, 1 vCPU: 2 * 0.0000025 + 0.000024 = 0.000029 $ per instance-second
    # compute: 262.8M * 0.1 s / 8 * 0.000029 = 95.265; requests: 262.8 * 0.40 = 105.12
    assert m.requests_part == pytest.approx(95.265 + 105.12)
    # cold starts: 2,628,000 * 1 s * 0.000029 = 76.212
    assert m.cold_starts_part == pytest.approx(76.212)
    assert m.option == "on demand, concurrency 8"


def test_gcp_concurrency_needs_a_whole_vcpu_and_is_no_help_to_sparse_traffic():
    sparse = replace(README, concurrency=8)  # 0.008 requests in flight: nothing to share
    m = month("gcp", traffic=sparse)
    # 1 GiB gets 0.583 vCPU; concurrency bills 1: 1M * 0.1 s * (0.0000025 + 0.000024) = 2.65
    assert m.requests_part == pytest.approx(2.65 + 0.40)
    assert "needs 1 vCPU" in m.note


def test_a_gcp_minimum_instance_bills_its_idle_time_at_the_idle_rate():
    m = month("gcp", Option(WARM, 1))
    # busy: 1M * 100 ms (billed step) = 100,000 s; idle: 2,528,000 s
    # at 1 GiB * 0.0000025 + 0.583 vCPU * 0.0000025 = 0.0000039575 = 10.00456
    assert m.warm_capacity_part == pytest.approx(10.00456)
    # busy time at the on-demand price: 100,000 * (0.0000025 + 0.583 * 0.000024) = 1.6492
    assert m.requests_part == pytest.approx(1.6492 + 0.40)
    assert m.option == "minimum instances 1"


# --- Azure --------------------------------------------------------------------------------------
def test_an_always_ready_flex_instance_for_a_month():
    m = month("azure", Option(WARM, 1), replace(README, memory_mb=2048))
    # baseline: 2 GB * 2,628,000 s * 0.000004 = 21.024
    assert m.warm_capacity_part == pytest.approx(21.024)
    # served: 1M * 1 s (minimum) * 2 GB * 0.000016 = 32.0; + 1M * 0.40 / 1M
    assert m.requests_part == pytest.approx(32.40)
    assert m.cold_starts_part == 0 and "unconfirmed" in m.note


# --- refusals and the report --------------------------------------------------------------------
def test_options_a_cloud_refuses_are_one_sentence_in_the_report():
    rows = warm.warm_report(README, warm_instances=2, arch="arm64")
    sentences = [row for row in rows if isinstance(row, str)]
    assert any("SnapStart is priced here for x86_64 only" in s for s in sentences)
    # GCP and Azure have no arm64: their on-demand rows are refused too
    assert len([r for r in rows if not isinstance(r, str)]) == 1


def test_one_concurrency_prices_cloud_run_and_flex_while_lambda_keeps_one():
    rows = warm.warm_report(replace(README, concurrency=8))
    assert all(not isinstance(row, str) for row in rows)
    aws = [row for row in rows if row.cloud == "aws"]
    assert aws[0].total == pytest.approx(0.700001)  # as at concurrency 1
    assert all("concurrency 8" in row.option for row in rows if row.cloud != "aws")


def test_aws_takes_one_request_per_instance():
    with pytest.raises(limits.OutOfRangeError, match="at most 1 request"):
        month("aws", traffic=replace(README, concurrency=2))


@pytest.mark.parametrize(
    ("change", "words"),
    [({"cold_start_rate": 1.5}, "share from 0 to 1"), ({"cold_start_ms": -1}, "cannot take")],
)
def test_bad_traffic_is_one_sentence(change, words):
    with pytest.raises(ValueError, match=words):
        month("aws", traffic=replace(README, **change))


def test_every_warm_price_has_a_source_and_a_date():
    for cloud in warm.WARM_CLOUDS:
        found = list(limits.records(limits.get_platform(cloud).pricing.warm))
        assert len(found) >= 3
        assert all(r.source.startswith("https://") and r.read_on for r in found)


def test_cost_command_prints_the_month_as_json_and_draws_the_plot(tmp_path, capsys):
    plot = tmp_path / "cost.png"
    argv = ["cost", "--duration-ms", "20", "--memory", "1024", "--cold-start-ms", "1000"]
    assert main([*argv, "--json", "--plot", str(plot)]) == 0
    data = json.loads(capsys.readouterr().out)
    options = {(o["cloud"], o["option"]): o for o in data["warm"]["options"]}
    assert options["aws", "on demand"]["total"] == pytest.approx(0.700001)
    assert options["aws", "SnapStart"]["warm_capacity_part"] == pytest.approx(3.9540888)
    assert data["warm"]["free_tier"] is False
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_cost_plot_without_a_cold_start_is_one_sentence(tmp_path, capsys):
    code = main(["cost", "--duration-ms", "20", "--plot", str(tmp_path / "x.png")])
    assert code == 2
    assert "give --cold-start-ms" in capsys.readouterr().err


def test_startup_cpu_boost_bills_a_shorter_start_up_at_twice_the_vcpus():
    boosted = replace(README, boosted_cold_start_ms=600)
    m = month("gcp", Option(warm.BOOST), boosted)
    # 10,000 start-ups of 600 ms (100 ms steps) at 1 GiB and 2 x 0.583 vCPU:
    # 0.6 s * (0.0000025 + 1.166 * 0.000024) = 0.0000182904 each
    assert m.cold_starts_part == pytest.approx(10_000 * 0.6 * (0.0000025 + 1.166 * 0.000024))
    assert m.option == "on demand, startup CPU boost"
    # without a boosted measurement the start-up keeps its length and costs more than unboosted
    unboosted = month("gcp")
    assert month("gcp", Option(warm.BOOST)).cold_starts_part > unboosted.cold_starts_part
    assert m.requests_part == pytest.approx(unboosted.requests_part)


def test_only_cloud_run_is_priced_with_the_boost():
    assert [o.kind for o in warm.options_for("gcp", 0, cpu_boost=True)] == ["on demand", warm.BOOST]
    assert warm.BOOST not in [o.kind for o in warm.options_for("aws", 0, cpu_boost=True)]
    with pytest.raises(limits.OutOfRangeError, match="offers no startup CPU boost"):
        month("aws", Option(warm.BOOST))
