"""Azure Functions, Flex Consumption (the serverless target) and Linux Consumption."""

from __future__ import annotations

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

# --- Azure Functions: Flex Consumption (the serverless target) and Linux Consumption -------------
AZ_FLEX = "https://learn.microsoft.com/en-us/azure/azure-functions/flex-consumption-plan"
AZ_FLEX_MD = (
    "https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/azure-functions/"
    "flex-consumption-plan.md"
)
AZ_PRICING = "https://azure.microsoft.com/pricing/details/functions/"
AZ_PRICING_COPY = "https://modal.com/blog/azure-function-pricing-guide"
AZ_LIMITS = "https://github.com/MicrosoftDocs/azure-docs/blob/main/includes/functions-limits.md"
AZ_TIMEOUT = (
    "https://github.com/MicrosoftDocs/azure-docs/blob/master/includes/functions-timeout-duration.md"
)
AZ_PACKAGE = "https://github.com/Azure/Azure-Functions/issues/2365"
AZ_VERSIONS = "https://learn.microsoft.com/en-us/azure/azure-functions/functions-versions"
AZ_FLEX_BILLING = (
    "https://github.com/MicrosoftDocs/azure-docs/blob/main/includes/"
    "functions-flex-consumption-billing-table.md"
)
_AZ_UNREMEMBERED = (
    "unconfirmed: no stored copy of the pricing page showed this figure; value as last known, "
    "verify before relying on it"
)
_AZ_THIRD_PARTY = (
    "unconfirmed: third-party copy (modal.com); the stored official page shows no prices"
)
_AZ_FLEX_RUNTIMES = (
    "Flex runs Python 3.10 to 3.14 as issue 17 gives it; unconfirmed: the stored copies of the "
    "page (2024-05-24) list 3.10 and 3.11 only"
)
_AZ_CONSUMPTION_RUNTIMES = (
    "Linux Consumption runs Python 3.10 to 3.12 and gets no newer ones, as issue 17 gives it; "
    "unconfirmed against the page"
)
_AZ_NO_PACKAGE_CAP = (
    "no documented cap for zip deploy / run from package (open docs question "
    "MicrosoftDocs/azure-docs#30243); not re-checked"
)


def _azure_runtime(
    python: str, note: str, source: str = AZ_FLEX_MD, read_on: str = READ_ON
) -> Runtime:
    # Azure's Python 3.11 images are Debian Bullseye (glibc 2.31), Azure/azure-functions-python-
    # worker#1651; later ones reportedly Bookworm (2.36, unconfirmed): 2.31 is the safe floor.
    return Runtime(
        identifier="python " + python,
        python=python,
        glibc="2.31",
        source=source,
        read_on=read_on,
        note=note,
    )


AZURE = Platform(
    key="azure",
    name="Azure Functions (Flex Consumption)",
    package=PackageLimits(
        zip_direct_upload=fig(None, "bytes", AZ_PACKAGE, _AZ_NO_PACKAGE_CAP),
        via_object_storage=fig(
            None, "bytes", AZ_FLEX_MD, "every Flex deployment goes through a blob container"
        ),
    ),
    memory_min_mb=fig(512, "MB", AZ_FLEX, "unconfirmed: see vcpus"),
    memory_max_mb=fig(4096, "MB", AZ_FLEX_MD),
    memory_step_mb=None,
    vcpus=VcpuScaling(
        points=((512, 0.25), (2048, 1.0), (4096, 2.0)),
        proportional=False,
        source=AZ_FLEX,
        read_on=READ_ON,
        note=(
            "instance memory sizes 512, 2,048 and 4,096 MB (as issue 17 gives them, read "
            "2026-11-29), plus a 272 MB platform buffer; unconfirmed: the stored copy (preview, "
            "2024-05-24) lists only 2,048 and 4,096 MB and no core counts, so the cores are "
            "carried over from platform-limits.md"
        ),
    ),
    timeout_s=fig(
        230,
        "s",
        AZ_TIMEOUT,
        "an HTTP response must start within 230 s; functionTimeout is 30 min by default and may "
        "be unbounded on Flex (also in microsoft/azure-skills hosting-plans.md)",
    ),
    request_bytes=fig(100 * MiB, "bytes", AZ_LIMITS, "not re-checked"),
    response_bytes=None,
    runtimes=(
        _azure_runtime("3.10", "listed by the stored copy (preview, 2024-05-24)"),
        _azure_runtime("3.11", "listed by the stored copy (preview, 2024-05-24)"),
        _azure_runtime("3.12", _AZ_FLEX_RUNTIMES, AZ_FLEX, READ_ON_WARM),
        _azure_runtime(
            "3.13",
            _AZ_FLEX_RUNTIMES + "; the azure-functions library 2.x needs 3.13+",
            AZ_FLEX,
            READ_ON_WARM,
        ),
        _azure_runtime("3.14", _AZ_FLEX_RUNTIMES, AZ_FLEX, READ_ON_WARM),
    ),
    architectures=fig(("x86_64",), "architectures", AZ_FLEX, "Linux; unconfirmed"),
    pricing=Pricing(
        per_gb_second=fig(
            0.000026,
            "USD/GB-second",
            AZ_PRICING_COPY,
            "on demand, of the instance memory size; unconfirmed: third-party copy only",
        ),
        per_million_requests=fig(0.40, "USD/1M executions", AZ_PRICING, _AZ_UNREMEMBERED),
        billing_step_ms=fig(100, "ms", AZ_FLEX_MD, "active period rounded up to 100 ms"),
        min_billed_ms=fig(
            1000,
            "ms",
            AZ_FLEX_MD,
            "minimum billable execution period per instance; concurrent executions share it",
        ),
        free_requests=fig(250_000, "executions/month", AZ_PRICING, _AZ_UNREMEMBERED),
        free_gb_seconds=fig(100_000, "GB-seconds/month", AZ_PRICING, _AZ_UNREMEMBERED),
        bills_instance_memory=True,
        warm=WarmPricing(
            init_billed=fig(
                False,
                "billed",
                AZ_FLEX_BILLING,
                "unconfirmed: on demand bills memory while an instance actively executes "
                "functions; instance start-up is not named",
                read_on=READ_ON_WARM,
            ),
            capacity_name="always-ready instances",
            capacity_per_gb_second=fig(
                0.000004,
                "USD/GB-second",
                AZ_PRICING,
                "the baseline: instance memory of every always-ready instance, all the time; "
                + _AZ_UNREMEMBERED,
                read_on=READ_ON_WARM,
            ),
            served_per_gb_second=fig(
                0.000016,
                "USD/GB-second",
                AZ_PRICING,
                "execution time on an always-ready instance; " + _AZ_UNREMEMBERED,
                read_on=READ_ON_WARM,
            ),
            capacity_free_tier=False,
            max_concurrency=fig(
                1000,
                "requests/instance",
                AZ_FLEX,
                "per-instance HTTP concurrency; unconfirmed: as last known",
                read_on=READ_ON_WARM,
            ),
            idle_lifetime_s=fig(
                1200.0,
                "seconds idle",
                "https://mikhail.io/2019/08/aws-lambda-cold-starts-after-10-minutes/",
                "unconfirmed: Microsoft documents no idle time for Flex Consumption; this "
                "third-party measurement (2019) saw Azure Functions (Consumption) recycle an "
                "instance after 20 minutes idle",
                read_on=READ_ON_WARM,
            ),
        ),
    ),
)

AZURE_CONSUMPTION = Platform(
    key="azure-consumption",
    name="Azure Functions (Linux Consumption)",
    package=PackageLimits(zip_direct_upload=fig(None, "bytes", AZ_PACKAGE, _AZ_NO_PACKAGE_CAP)),
    memory_min_mb=fig(128, "MB", AZ_PRICING, "the smallest billed memory"),
    memory_max_mb=fig(1536, "MB", AZ_PRICING, "per instance; also the billing cap"),
    memory_step_mb=None,
    vcpus=None,  # not documented
    timeout_s=fig(
        230, "s", AZ_TIMEOUT, "HTTP response within 230 s; functionTimeout 5 min default, 10 max"
    ),
    request_bytes=fig(100 * MiB, "bytes", AZ_LIMITS, "not re-checked"),
    response_bytes=None,
    runtimes=tuple(
        _azure_runtime(python, _AZ_CONSUMPTION_RUNTIMES, AZ_VERSIONS, READ_ON_WARM)
        for python in ("3.10", "3.11", "3.12")
    ),
    architectures=fig(("x86_64",), "architectures", AZ_PRICING, "Linux; unconfirmed"),
    pricing=Pricing(
        per_gb_second=fig(0.000016, "USD/GB-second", AZ_PRICING_COPY, _AZ_THIRD_PARTY),
        per_million_requests=fig(0.20, "USD/1M executions", AZ_PRICING_COPY, _AZ_THIRD_PARTY),
        billing_step_ms=fig(
            1, "ms", AZ_PRICING, "unconfirmed: the stored copy is cut off mid-sentence here"
        ),
        min_billed_ms=fig(100, "ms", AZ_PRICING, "unconfirmed: as last known"),
        free_requests=fig(1_000_000, "executions/month", AZ_PRICING, "per subscription"),
        free_gb_seconds=fig(400_000, "GB-seconds/month", AZ_PRICING, "per subscription"),
        memory_rounding_mb=fig(
            128, "MB", AZ_PRICING, "observed memory, rounded up to the nearest 128 MB"
        ),
    ),
    retires_on=fig(
        "2028-09-30",
        "date",
        AZ_VERSIONS,
        "Linux Consumption retires, as issue 17 gives it too; unconfirmed against the page",
        read_on=READ_ON_WARM,
    ),
)
