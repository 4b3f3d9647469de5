"""The cost model against values worked out by hand from the published prices.

Prices used below (from src/bertless/platforms/{aws,gcp,azure}.py, written out here so a changed
price fails loudly):
AWS x86_64 $0.0000166667/GB-s, arm64 $0.0000133334/GB-s, $0.20/1M requests, free 1M + 400,000 GB-s;
Cloud Run functions $0.000024/vCPU-s + $0.0000025/GiB-s, $0.40/1M, free 2M + 180,000 vCPU-s +
360,000 GiB-s, 1 GiB gets 0.583 vCPU; Azure Flex $0.000026/GB-s of the instance, $0.40/1M, free
250,000 + 100,000 GB-s; Azure Consumption $0.000016/GB-s, $0.20/1M, free 1M + 400,000 GB-s;
t4g.nano $0.0042/hour x 730 hours.
"""

import dataclasses
import json
import subprocess
import sys

import pytest

from bertless.bench import cost
from bertless.platforms import limits


def per_million(cloud, duration_ms, memory_mb, arch="x86_64"):
    return cost.cost_per_million(cloud, duration_ms, memory_mb, arch)


# --- the paper's figure: 100 ms at 1 GB is about $2 per million requests ----------------------
@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_100_ms_at_1_gb_costs_about_2_dollars_per_million(cloud):
    assert per_million(cloud, 100, 1024).total_per_million == pytest.approx(2.0, abs=0.30)


# --- per million requests, by cloud --------------------------------------------------------------
def test_aws_x86_100_ms_at_1024_mb():
    b = per_million("aws", 100, 1024)
    # 0.1 s * 1 GB * 0.0000166667 * 1e6 = 1.66667; + 0.20 = 1.86667
    assert b.compute_per_million == pytest.approx(1.66667)
    assert b.requests_per_million == pytest.approx(0.20)
    assert b.total_per_million == pytest.approx(1.86667)


def test_aws_arm64_is_priced_lower():
    # 0.1 s * 1 GB * 0.0000133334 * 1e6 = 1.33334; + 0.20 = 1.53334
    assert per_million("aws", 100, 1024, "arm64").total_per_million == pytest.approx(1.53334)


def test_aws_300_ms_at_512_mb():
    # 0.3 s * 0.5 GB * 0.0000166667 * 1e6 = 2.500005; + 0.20 = 2.700005
    assert per_million("aws", 300, 512).total_per_million == pytest.approx(2.700005)


def test_gcp_bills_the_vcpus_that_come_with_memory():
    b = per_million("gcp", 100, 1024)
    # vCPU: 0.1 s * 0.583 * 0.000024 * 1e6 = 1.3992; memory: 0.1 s * 1 GiB * 0.0000025 * 1e6 = 0.25
    assert b.billed_vcpus == pytest.approx(0.583)
    assert b.compute_per_million == pytest.approx(1.6492)
    # + 0.40 per million requests
    assert b.total_per_million == pytest.approx(2.0492)


def test_gcp_250_ms_at_2048_mb():
    # bills 300 ms; 1 vCPU: 0.3 * 1 * 24 = 7.2; memory: 0.3 * 2 * 2.5 = 1.5; + 0.40 = 9.1
    assert per_million("gcp", 250, 2048).total_per_million == pytest.approx(9.1)


def test_azure_flex_bills_its_instance_for_at_least_a_second():
    b = per_million("azure", 100, 1024)
    # runs on the 2,048 MB instance, billed 1,000 ms: 1 s * 2 GB * 0.000026 * 1e6 = 52.0; + 0.40
    assert (b.billed_ms, b.billed_memory_mb) == (1000, 2048)
    assert b.total_per_million == pytest.approx(52.40)
    assert "1000 ms" in b.note


def test_azure_flex_past_a_second_rounds_to_100_ms():
    # bills 1,300 ms of 4 GB: 1.3 * 4 * 0.000026 * 1e6 = 135.2; + 0.40 = 135.6
    assert per_million("azure", 1234, 4096).total_per_million == pytest.approx(135.6)


def test_azure_consumption_100_ms_at_1024_mb():
    # 0.1 s * 1 GB * 0.000016 * 1e6 = 1.6; + 0.20 = 1.8
    assert per_million("azure-consumption", 100, 1024).total_per_million == pytest.approx(1.8)


def test_azure_consumption_rounds_memory_to_128_mb_and_time_to_100_ms():
    b = per_million("azure-consumption", 50, 200)
    # 200 MB bills as 256 MB, 50 ms as 100 ms: 0.1 * 0.25 * 0.000016 * 1e6 = 0.4; + 0.20 = 0.6
    assert (b.billed_ms, b.billed_memory_mb) == (100, 256)
    assert b.total_per_million == pytest.approx(0.6)


# --- billing granularity ---------------------------------------------------------------------
def test_lambda_rounds_up_to_the_next_millisecond():
    b = per_million("aws", 100.2, 1024)
    # bills 101 ms: 0.101 * 1 * 0.0000166667 * 1e6 = 1.683337; + 0.20 = 1.883337
    assert b.billed_ms == 101
    assert b.total_per_million == pytest.approx(1.883337)


def test_float_noise_does_not_bill_an_extra_step():
    assert per_million("aws", (0.1 + 0.2) * 1000, 1024).billed_ms == 300


@pytest.mark.parametrize(("duration_ms", "billed_ms"), [(1, 100), (100, 100), (120, 200)])
def test_cloud_run_functions_bill_in_100_ms_steps(duration_ms, billed_ms):
    assert per_million("gcp", duration_ms, 512).billed_ms == billed_ms


# --- a month, with the free tier apart -------------------------------------------------------
def test_aws_month_with_and_without_free_tier():
    m = cost.monthly_cost("aws", 100, 1024, 10_000_000)
    # without: 10 * 1.86667 = 18.6667
    assert m.without_free_tier == pytest.approx(18.6667)
    # with: (1,000,000 - 400,000) GB-s * 0.0000166667 = 10.00002; (10M - 1M) * 0.20 / 1M = 1.8
    assert m.with_free_tier == pytest.approx(11.80002)


def test_gcp_month_spends_each_free_allowance_separately():
    m = cost.monthly_cost("gcp", 100, 1024, 10_000_000)
    assert m.without_free_tier == pytest.approx(20.492)  # 10 * 2.0492
    # vCPU-s: 583,000 - 180,000 = 403,000 * 0.000024 = 9.672
    # GiB-s: 1,000,000 - 360,000 = 640,000 * 0.0000025 = 1.6
    # requests: (10M - 2M) * 0.40 / 1M = 3.2
    assert m.with_free_tier == pytest.approx(14.472)


def test_azure_month_with_and_without_free_tier():
    flex = cost.monthly_cost("azure", 100, 2048, 10_000_000)
    assert flex.without_free_tier == pytest.approx(524.0)  # 10 * 52.40
    # (20,000,000 - 100,000) GB-s * 0.000026 = 517.4; (10M - 250,000) * 0.40 / 1M = 3.9
    assert flex.with_free_tier == pytest.approx(521.3)
    consumption = cost.monthly_cost("azure-consumption", 100, 1024, 10_000_000)
    # (1,000,000 - 400,000) * 0.000016 = 9.6; (10M - 1M) * 0.20 / 1M = 1.8
    assert consumption.with_free_tier == pytest.approx(11.4)


def test_a_month_inside_the_free_tier_costs_nothing_only_with_it():
    m = cost.monthly_cost("aws", 100, 1024, 1_000_000)
    assert m.with_free_tier == 0.0
    assert m.without_free_tier == pytest.approx(1.86667)


def test_month_is_set_beside_the_always_on_vm():
    m = cost.monthly_cost("aws", 100, 1024, 10_000_000)
    assert m.vm == "t4g.nano"
    assert m.vm_monthly == pytest.approx(3.066)  # 0.0042 * 730
    # 3.066 / (1.86667 / 1e6) requests a month cost as much as the VM
    assert m.break_even_requests_per_month == pytest.approx(1_642_497, rel=1e-5)


# --- the report ------------------------------------------------------------------------------
def test_report_has_a_row_per_cloud_and_explains_the_clouds_that_cannot_run_it():
    report = cost.cost_report(100, 2048, "arm64", requests_per_month=5_000_000)
    assert [row.cloud for row in report] == ["aws", "gcp", "azure", "azure-consumption"]
    aws, gcp, _, consumption = report
    assert aws.breakdown.arch == "arm64"
    assert gcp.breakdown.arch == "x86_64"  # arm64 is priced on AWS only
    assert aws.monthly.requests_per_month == 5_000_000
    assert consumption.breakdown is None
    assert "1536 MB" in consumption.unavailable


def test_report_without_a_rate_has_no_monthly_figures():
    assert all(row.monthly is None for row in cost.cost_report(100, 1024))


def test_report_renders_as_a_table_and_as_json():
    report = cost.cost_report(100, 1024, requests_per_month=10_000_000)
    table = cost.render_cost_table(report)
    assert table.row_count == 4
    assert len(table.columns) == 8
    data = json.loads(json.dumps(cost.report_to_json(report)))
    aws = data["rows"][0]
    assert aws["total_per_million"] == pytest.approx(1.86667)
    assert aws["monthly"]["with_free_tier"] == pytest.approx(11.80002)
    assert all(url.startswith("https://") for url in aws["price_sources"])


def test_cost_module_imports_without_rich():
    code = "import sys; sys.modules['rich'] = None; import bertless.bench.cost"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- prices come from the platform data, and bad input is explained ---------------------------
def test_prices_are_read_from_the_platform_data(monkeypatch):
    pricing = limits.AWS.pricing
    cheaper = dataclasses.replace(
        pricing, per_gb_second=dataclasses.replace(pricing.per_gb_second, value=0.00001)
    )
    monkeypatch.setitem(limits.PLATFORMS, "aws", dataclasses.replace(limits.AWS, pricing=cheaper))
    # 0.1 s * 1 GB * 0.00001 * 1e6 = 1.0; + 0.20 = 1.2
    assert per_million("aws", 100, 1024).total_per_million == pytest.approx(1.2)


def test_arm64_is_refused_where_it_is_not_offered():
    with pytest.raises(limits.OutOfRangeError, match="not arm64"):
        per_million("gcp", 100, 1024, "arm64")


def test_a_plan_without_prices_says_so():
    with pytest.raises(limits.OutOfRangeError, match="no prices"):
        per_million("gcp-gen1", 100, 1024)


@pytest.mark.parametrize("duration_ms", [0, -5])
def test_duration_must_be_positive(duration_ms):
    with pytest.raises(ValueError, match="duration must be positive"):
        per_million("aws", duration_ms, 1024)


def test_unknown_cloud_names_the_known_ones():
    with pytest.raises(limits.UnknownPlatformError, match="aws"):
        per_million("oracle", 100, 1024)
