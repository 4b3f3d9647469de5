"""Platform facts: every figure says where it was read, and the lookups answer or explain."""

import dataclasses
import re
from datetime import date

import pytest

from bertless.platforms import limits, names

ENV = "BERTLESS_AWS_DIRECT_UPLOAD_LIMIT_BYTES"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_iso_date(text: str) -> bool:
    return bool(ISO_DATE.fullmatch(text)) and date.fromisoformat(text) is not None


def test_every_record_has_an_https_source_and_an_iso_read_date():
    records = list(limits.records())
    assert len(records) > 50
    for record in records:
        assert record.source.startswith("https://"), record
        assert _is_iso_date(record.read_on), record


def test_figures_read_from_third_party_copies_are_marked_unconfirmed():
    for record in limits.records():
        if "third-party" in record.note:
            assert "unconfirmed" in record.note, record


def test_every_figure_has_a_unit():
    figures = [r for r in limits.records() if isinstance(r, limits.Figure)]
    assert figures
    for figure in figures:
        assert figure.unit, figure


def test_records_reach_nested_prices_runtimes_and_vms():
    records = list(limits.records())
    assert limits.AWS.pricing.per_gb_second_arm64 in records
    assert limits.AWS.runtimes[0] in records
    assert limits.VMS["t4g.nano"] in records


def test_runtime_dates_are_iso_dates():
    for platform in (*limits.PLATFORMS.values(), *limits.OTHER_PLANS.values()):
        for runtime in platform.runtimes:
            for day in (runtime.deprecated_on, runtime.blocked_on):
                assert day is None or _is_iso_date(day), runtime


def test_the_deploy_targets_are_aws_gcp_and_azure():
    assert set(limits.PLATFORMS) == {"aws", "gcp", "azure"}


def test_aws_direct_upload_limit_is_50_mib_without_the_override(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert limits.package_limits("aws").zip_direct_upload.value == 50 * 1024 * 1024


def test_override_lowers_the_aws_direct_upload_limit_and_says_so(monkeypatch):
    monkeypatch.setenv(ENV, "1000")
    limit = limits.package_limits("aws").zip_direct_upload
    assert limit.value == 1000
    assert ENV in limit.note
    assert limit.source == limits.AWS_QUOTAS
    assert limits.AWS.package.zip_direct_upload.value == 52_428_800  # the data is untouched


def test_override_leaves_other_aws_limits_and_other_platforms_alone(monkeypatch):
    monkeypatch.setenv(ENV, "1000")
    assert limits.package_limits("aws").unzipped.value == 262_144_000
    assert limits.package_limits("gcp") == limits.GCP.package


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1e6"])
def test_override_refuses_anything_but_a_positive_byte_count(monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ValueError, match=ENV):
        limits.package_limits("aws")


@pytest.mark.parametrize(
    ("platform", "memory_mb", "vcpus"),
    [
        ("aws", 1769, 1.0),  # documented: 1,769 MB is one vCPU
        ("aws", 10240, 6.0),  # documented: the maximum memory gets 6 vCPUs
        ("aws", 128, 0.0724),  # 128 / 1769
        ("aws", 5000, 2.9071),  # 1 + (5000 - 1769) * 5 / (10240 - 1769)
        ("gcp", 1024, 0.583),
        ("gcp", 2048, 1.0),
        ("gcp", 1500, 1.0),  # between tiers: the next tier up
        ("gcp", 16384, 4.0),
        ("gcp", 32768, 8.0),
        ("gcp-gen1", 8192, 2.0),
        ("azure", 512, 0.25),
        ("azure", 1024, 1.0),  # runs on the 2,048 MB instance
        ("azure", 2048, 1.0),
        ("azure", 4096, 2.0),
    ],
)
def test_vcpus_follow_memory_at_documented_points(platform, memory_mb, vcpus):
    assert limits.vcpus_for_memory(platform, memory_mb) == pytest.approx(vcpus, abs=1e-4)


@pytest.mark.parametrize(
    ("platform", "memory_mb"),
    [("aws", 64), ("aws", 10241), ("gcp", 65536), ("gcp-gen1", 16384), ("azure", 8192)],
)
def test_memory_outside_the_range_is_refused_with_the_range(platform, memory_mb):
    with pytest.raises(limits.OutOfRangeError, match="memory must be"):
        limits.vcpus_for_memory(platform, memory_mb)


def test_vcpus_for_a_plan_without_documented_cpu_is_an_explained_error():
    with pytest.raises(limits.OutOfRangeError, match="no vCPU share"):
        limits.vcpus_for_memory("azure-consumption", 1024)


def test_azure_flex_runs_the_smallest_instance_that_holds_the_memory():
    assert limits.instance_memory_mb("azure", 600) == 2048
    assert limits.instance_memory_mb("azure", 4096) == 4096


def test_unknown_platform_names_the_known_ones():
    with pytest.raises(limits.UnknownPlatformError, match=r"'oracle'.*aws, azure"):
        limits.get_platform("oracle")
    with pytest.raises(limits.UnknownPlatformError):
        limits.vcpus_for_memory("oracle", 1024)
    with pytest.raises(limits.UnknownPlatformError):
        limits.runtime("oracle")


def test_lambda_python_runtimes_carry_the_glibc_that_picks_wheels():
    py311 = limits.runtime("aws", "3.11")
    assert (py311.os, py311.glibc) == ("Amazon Linux 2", "2.26")
    for python in ("3.12", "3.13"):
        found = limits.runtime("aws", python)
        assert (found.os, found.glibc) == ("Amazon Linux 2023", "2.34")
    assert limits.runtime("aws", "3.12").deprecated_on == "2028-10-31"


def test_runtime_is_none_for_a_version_the_platform_does_not_offer():
    assert limits.runtime("aws", "3.9") is None
    assert limits.runtime("gcp-gen1", "3.13") is None


def test_require_runtime_names_the_versions_on_offer():
    with pytest.raises(limits.UnsupportedRuntimeError, match=r"no Python 3\.9.*3\.12"):
        limits.require_runtime("aws", "3.9")
    assert limits.require_runtime("gcp", "3.12").identifier == "python312"


def test_lambda_offers_arm64_and_prices_it():
    assert "arm64" in limits.AWS.architectures.value
    assert limits.AWS.pricing.per_gb_second_arm64.value < limits.AWS.pricing.per_gb_second.value


def test_gen1_differs_where_documented():
    assert limits.GCP_GEN1.timeout_s.value == 540
    assert limits.GCP_GEN1.request_bytes.value == 10 * 1024 * 1024
    assert limits.GCP_GEN1.package.zip_direct_upload.value == 100 * 1024 * 1024
    assert limits.GCP.package.zip_direct_upload.value is None  # no cap stated for 2nd gen


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.AWS.timeout_s.value = 1  # type: ignore[misc]


def test_unknown_vm_names_the_known_ones():
    with pytest.raises(limits.UnknownPlatformError, match=r"t4g\.nano"):
        limits.get_vm("m5.large")


def test_a_name_the_platform_refuses_is_a_value_error_naming_the_rule():
    with pytest.raises(names.InvalidNameError, match=r"gcp refuses the name 'Upper_Case'.*4 to 63"):
        names.check_name("gcp", "Upper_Case")
    assert issubclass(names.InvalidNameError, ValueError)
    assert names.check_name("gcp", "fine-name") == "fine-name"


def test_deploy_reports_a_refused_name_or_region_as_a_preflight_error(monkeypatch):
    from bertless.deploy import preflight
    from bertless.deploy.plan import PreflightError

    monkeypatch.delenv("BERTLESS_ALLOW_ANY_REGION", raising=False)
    with pytest.raises(PreflightError, match="azure refuses the name '-x'"):
        preflight.check_name("azure", "-x")
    with pytest.raises(PreflightError, match="gcp has no region 'mars-central1'"):
        preflight.check_region("gcp", "mars-central1")
    assert preflight.check_region("azure", "West Europe") == "westeurope"
