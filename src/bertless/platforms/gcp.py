"""Google Cloud Run functions (2nd gen) and Cloud Functions 1st gen: limits, runtimes, prices."""

from __future__ import annotations

import dataclasses

from bertless.platforms.records import (
    READ_ON,
    READ_ON_WARM,
    MiB,
    PackageLimits,
    Platform,
    Pricing,
    Runtime,
    VcpuScaling,
    WarmPricing,
    fig,
)

# --- Google Cloud Run functions (Cloud Functions 2nd gen) and 1st gen --------------------------
GCP_QUOTAS = "https://cloud.google.com/functions/quotas"
GCP_MEMORY = "https://cloud.google.com/functions/docs/configuring/memory"
GCP_RUNTIMES = "https://cloud.google.com/functions/docs/runtime-support"
GCP_PYTHON_RUNTIMES = "https://docs.cloud.google.com/run/docs/runtimes/python"
RUN_PRICING = "https://cloud.google.com/run/pricing"
_GCP_TIERS = (
    (128, 0.083),
    (256, 0.167),
    (512, 0.333),
    (1024, 0.583),
    (2048, 1.0),
    (4096, 2.0),
    (8192, 2.0),
)
_RUN_PRICE_NOTE = "request-based billing (CPU only during requests), Tier 1 regions"
RUN_BILLING = "https://cloud.google.com/run/docs/configuring/billing-settings"
RUN_CONCURRENCY = "https://cloud.google.com/run/docs/about-concurrency"
_RUN_IDLE_NOTE = (
    "an idle minimum instance, request-based billing, Tier 1; unconfirmed: the stored copies of "
    "the pricing page cut off before the idle rows; value as last known"
)


_GCP_RUNTIME_NOTE = "stack, base image, deprecation and decommission dates from the runtime table"


def _gcp_runtime(
    python: str,
    deprecated: str,
    decommissioned: str | None,
    source: str = GCP_PYTHON_RUNTIMES,
    note: str = _GCP_RUNTIME_NOTE,
) -> Runtime:
    return Runtime(
        identifier="python" + python.replace(".", ""),
        python=python,
        # python310-313 run on the google-22 stack (Ubuntu 22.04), python314 on google-24
        # (Ubuntu 24.04), per the runtime table.
        glibc="2.39" if python == "3.14" else "2.35",
        deprecated_on=deprecated,
        blocked_on=decommissioned,
        source=source,
        read_on=READ_ON,
        note=note,
    )


GCP = Platform(
    key="gcp",
    name="Google Cloud Run functions (2nd gen)",
    package=PackageLimits(
        zip_direct_upload=fig(None, "bytes", GCP_QUOTAS, "N/A for 2nd gen in the quota table"),
        unzipped=fig(None, "bytes", GCP_QUOTAS, "N/A for 2nd gen in the quota table"),
    ),
    memory_min_mb=fig(128, "MB", GCP_MEMORY),
    memory_max_mb=fig(32768, "MB", GCP_QUOTAS),
    memory_step_mb=None,
    vcpus=VcpuScaling(
        points=(*_GCP_TIERS, (16384, 4.0), (32768, 8.0)),
        proportional=False,
        source=GCP_MEMORY,
        read_on=READ_ON,
        note=(
            "default vCPUs per memory tier; --cpu can override; a size between tiers is assumed "
            "to get the next tier up (unconfirmed)"
        ),
    ),
    timeout_s=fig(
        3600,
        "s",
        GCP_QUOTAS,
        "HTTP functions; read from the zh-CN copy of the quota table (replaces the Firebase copy)",
    ),
    request_bytes=fig(32 * MiB, "bytes", GCP_QUOTAS, "uncompressed"),
    response_bytes=fig(32 * MiB, "bytes", GCP_QUOTAS, "uncompressed; 10 MB when streamed"),
    runtimes=(
        _gcp_runtime("3.11", "2027-10-24", "2028-04-24"),
        _gcp_runtime("3.12", "2028-10-02", "2029-04-02"),
        _gcp_runtime("3.13", "2029-10-10", "2030-04-10"),
        _gcp_runtime("3.14", "2030-10-10", "2031-04-10"),
    ),
    architectures=fig(
        ("x86_64",),
        "architectures",
        GCP_RUNTIMES,
        "Cloud Run functions build and run x86_64 only, as issue 17 gives it; no arm64 option "
        "is documented",
        read_on=READ_ON_WARM,
    ),
    pricing=Pricing(
        per_vcpu_second=fig(0.000024, "USD/vCPU-second", RUN_PRICING, _RUN_PRICE_NOTE),
        per_gb_second=fig(0.0000025, "USD/GiB-second", RUN_PRICING, _RUN_PRICE_NOTE),
        per_million_requests=fig(0.40, "USD/1M requests", RUN_PRICING),
        billing_step_ms=fig(100, "ms", RUN_PRICING, "rounded up to the nearest 100 ms"),
        min_billed_ms=fig(100, "ms", RUN_PRICING),
        free_requests=fig(2_000_000, "requests/month", RUN_PRICING, "per billing account"),
        free_gb_seconds=fig(360_000, "GiB-seconds/month", RUN_PRICING, "per billing account"),
        free_vcpu_seconds=fig(180_000, "vCPU-seconds/month", RUN_PRICING, "per billing account"),
        warm=WarmPricing(
            init_billed=fig(
                True,
                "billed",
                RUN_BILLING,
                "request-based billing charges instances during container startup and shutdown",
                read_on=READ_ON_WARM,
            ),
            capacity_name="minimum instances",
            capacity_per_gb_second=fig(
                0.0000025, "USD/GiB-second", RUN_PRICING, _RUN_IDLE_NOTE, read_on=READ_ON_WARM
            ),
            capacity_per_vcpu_second=fig(
                0.0000025, "USD/vCPU-second", RUN_PRICING, _RUN_IDLE_NOTE, read_on=READ_ON_WARM
            ),
            max_concurrency=fig(
                1000,
                "requests/instance",
                RUN_CONCURRENCY,
                "above 1 needs at least 1 vCPU; the Cloud Functions API sets 1 unless told",
                read_on=READ_ON_WARM,
            ),
            idle_lifetime_s=fig(
                900.0,
                "seconds idle",
                "https://cloud.google.com/run/docs/about-instance-autoscaling",
                "unconfirmed: the functions' own page keeps idle instances 'for an unspecified "
                "amount of time' (cloud.google.com/functions/docs/configuring/min-instances); "
                "15 minutes is the 'up to 15 minutes' Cloud Run's autoscaling page gave as last "
                "known, not found in today's copy of it; mikhail.io (2019) saw instances survive "
                "hours, so cold starts may be fewer",
                read_on=READ_ON_WARM,
            ),
            startup_boost=fig(
                2.0,
                "x vCPUs while starting",
                "https://cloud.google.com/run/docs/configuring/services/cpu#startup-boost",
                "unconfirmed, as last known: with startup CPU boost an instance gets twice its "
                "vCPUs (at most 8) during start-up and 10 s after, and the boosted vCPUs are "
                "billed for the start-up under request-based billing; today's stored copies of "
                "the page stop before that section, a third-party guide calls the boost free, "
                "and Google's 2022 launch said it 'doesn't impact your bill much'",
                read_on=READ_ON_WARM,
            ),
        ),
    ),
)

GCP_GEN1 = dataclasses.replace(
    GCP,
    key="gcp-gen1",
    name="Google Cloud Functions (1st gen)",
    package=PackageLimits(
        zip_direct_upload=fig(100 * MiB, "bytes", GCP_QUOTAS, "compressed sources"),
        unzipped=fig(500 * MiB, "bytes", GCP_QUOTAS, "uncompressed sources plus modules"),
    ),
    memory_max_mb=fig(8192, "MB", GCP_QUOTAS),
    vcpus=VcpuScaling(
        points=_GCP_TIERS,
        proportional=False,
        source="https://cloud.google.com/functions/1stgendocs/configuring/memory",
        read_on=READ_ON,
    ),
    timeout_s=fig(540, "s", GCP_QUOTAS),
    request_bytes=fig(10 * MiB, "bytes", GCP_QUOTAS),
    response_bytes=fig(10 * MiB, "bytes", GCP_QUOTAS),
    runtimes=GCP.runtimes[:2],
    pricing=None,  # billed by memory tier in 100 ms steps; not modeled: deploy 2nd gen instead
)
