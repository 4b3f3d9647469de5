"""AWS Lambda's limits, runtimes and prices, and the EC2 machines its cost is held against."""

from __future__ import annotations

from bertless.platforms.records import (
    READ_ON,
    READ_ON_WARM,
    GiB,
    MiB,
    PackageLimits,
    Platform,
    Pricing,
    Runtime,
    VcpuScaling,
    VmPrice,
    WarmPricing,
    fig,
)

# --- AWS Lambda -------------------------------------------------------------------------------
AWS_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
AWS_INVOKE = "https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html"
AWS_STREAMING = (
    "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/lambda/"
    "aws.sdk.kotlin.services.lambda.model/-function-url-config/invoke-mode.html"
)
AWS_MEMORY = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
AWS_PYTHON = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html"
AWS_LAYERS = "https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html"
AWS_PRICING = "https://aws.amazon.com/lambda/pricing/"
AWS_PRICING_COPY = "https://cloudchipr.com/blog/aws-lambda-pricing"
_AWS_PRICE_NOTE = (
    "us-east-1, first pricing tier; unconfirmed: read from third-party copies (cloudchipr.com, "
    "git.mcrn.ar) that agree: the stored copy of aws.amazon.com/lambda/pricing shows no figures"
)
_AL2023 = "Amazon Linux 2023"
AWS_INIT_BILLING = (
    "https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/"
)
AWS_SNAPSTART = "https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html"
AWS_SNAPSTART_COPY = "https://awsnegotiations.com/blog/lambda-snapstart-cost-impact/"
AWS_PROVISIONED_COPY = (
    "https://mark-sailes.medium.com/"
    "the-other-feature-of-aws-lambda-provisioned-concurrency-saving-money-24e4e5086e1b"
)
_AWS_WARM_NOTE = (
    "x86_64, us-east-1; unconfirmed: the stored copy of aws.amazon.com/lambda/pricing names the "
    "charge but shows no figure; value from a third-party copy and as last known"
)

AWS = Platform(
    key="aws",
    name="AWS Lambda",
    package=PackageLimits(
        zip_direct_upload=fig(
            50 * MiB, "bytes", AWS_QUOTAS, "zipped, uploaded through the API; larger goes via S3"
        ),
        unzipped=fig(
            250 * MiB, "bytes", AWS_QUOTAS, "function plus all layers, extracted (262144000)"
        ),
        via_object_storage=fig(
            250 * MiB,
            "bytes",
            AWS_QUOTAS,
            "an S3 upload lifts only the 50 MB zipped cap; the unzipped cap still binds",
        ),
        container_image=fig(10 * GiB, "bytes", AWS_QUOTAS, "uncompressed, all layers"),
        layers_per_function=fig(
            5,
            "layers",
            AWS_LAYERS,
            "the function and all its layers unzipped stay within the 250 MB unzipped cap",
            read_on="2026-11-29",
        ),
    ),
    memory_min_mb=fig(128, "MB", AWS_QUOTAS),
    memory_max_mb=fig(10240, "MB", AWS_QUOTAS),
    memory_step_mb=fig(1, "MB", AWS_QUOTAS),
    vcpus=VcpuScaling(
        points=((1769, 1.0), (10240, 6.0)),
        proportional=True,
        source=AWS_MEMORY,
        read_on=READ_ON,
        note=(
            "1,769 MB = 1 vCPU read from the de/es/fr/zh copies of the page; unconfirmed: "
            "10,240 MB = 6 vCPUs is from the launch post (aws.amazon.com/blogs/aws/new-for-aws-"
            "lambda-functions-with-up-to-10-gb-of-memory-and-6-vcpus) as quoted by a maintainer "
            "in aws/aws-lambda-rust-runtime#440; between the points this is a CPU share, "
            "interpolated linearly: the visible core count differs (rwnx/lambda-cpuinfo)"
        ),
    ),
    timeout_s=fig(900, "s", AWS_QUOTAS, "API Gateway ends HTTP requests sooner (29-30 s)"),
    request_bytes=fig(
        6 * MiB, "bytes", AWS_INVOKE, "synchronous invoke and Function URL; asynchronous: 1 MB"
    ),
    response_bytes=fig(
        6 * MiB,
        "bytes",
        AWS_INVOKE,
        "buffered; a RESPONSE_STREAM Function URL allows 200 MB (" + AWS_STREAMING + ")",
    ),
    runtimes=(
        Runtime(
            identifier="python3.11",
            python="3.11",
            os="Amazon Linux 2",
            glibc="2.26",
            deprecated_on="2027-06-30",
            blocked_on="2027-07-31",
            source=AWS_PYTHON,
            read_on=READ_ON,
            note=(
                "unconfirmed: the stored copy cut off before this row; dates and OS carried "
                "over from platform-limits.md; glibc is the Amazon Linux 2 release's"
            ),
        ),
        Runtime(
            identifier="python3.12",
            python="3.12",
            os=_AL2023,
            glibc="2.34",
            deprecated_on="2028-10-31",
            blocked_on="2028-11-30",
            source=AWS_PYTHON,
            read_on=READ_ON,
            note="updates blocked from 2029-01-10; glibc is the AL2023 release's",
        ),
        Runtime(
            identifier="python3.13",
            python="3.13",
            os=_AL2023,
            glibc="2.34",
            deprecated_on="2029-06-30",
            blocked_on="2029-07-31",
            source=AWS_PYTHON,
            read_on=READ_ON,
            note="updates blocked from 2029-08-31; glibc is the AL2023 release's",
        ),
        Runtime(
            identifier="python3.14",
            python="3.14",
            os=_AL2023,
            glibc="2.34",
            deprecated_on="2029-06-30",
            source="https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html",
            read_on=READ_ON_WARM,
            note=(
                "deprecation date as issue 17 gives it; unconfirmed: the stored copy of the page "
                "lists python3.14 without dates, and upstream Python 3.14 is supported to 2030-10, "
                "so check it; block dates not known"
            ),
        ),
    ),
    architectures=fig(("x86_64", "arm64"), "architectures", AWS_PRICING),
    pricing=Pricing(
        per_gb_second=fig(0.0000166667, "USD/GB-second", AWS_PRICING_COPY, _AWS_PRICE_NOTE),
        per_gb_second_arm64=fig(
            0.0000133334, "USD/GB-second", AWS_PRICING_COPY, "arm64; " + _AWS_PRICE_NOTE
        ),
        per_million_requests=fig(0.20, "USD/1M requests", AWS_PRICING_COPY, _AWS_PRICE_NOTE),
        billing_step_ms=fig(1, "ms", AWS_PRICING, "duration rounded up to the nearest 1 ms"),
        min_billed_ms=fig(1, "ms", AWS_PRICING),
        free_requests=fig(1_000_000, "requests/month", AWS_PRICING_COPY, "per account"),
        free_gb_seconds=fig(
            400_000, "GB-seconds/month", AWS_PRICING_COPY, "per account, x86_64 and arm64 together"
        ),
        warm=WarmPricing(
            init_billed=fig(
                True,
                "billed",
                AWS_INIT_BILLING,
                "since 2025-08-01 the INIT phase of on-demand zip functions on managed runtimes "
                "is billed like the handler's duration (already so for images and provisioned "
                "concurrency); the post puts cold starts under 1% of invocations",
                read_on=READ_ON_WARM,
            ),
            capacity_name="provisioned concurrency",
            capacity_per_gb_second=fig(
                0.0000041667,
                "USD/GB-second",
                AWS_PROVISIONED_COPY,
                "configured concurrency x memory, rounded up to 5 minutes; " + _AWS_WARM_NOTE,
                read_on=READ_ON_WARM,
            ),
            served_per_gb_second=fig(
                0.0000097222,
                "USD/GB-second",
                AWS_PROVISIONED_COPY,
                "duration of requests served by provisioned concurrency; " + _AWS_WARM_NOTE,
                read_on=READ_ON_WARM,
            ),
            capacity_free_tier=False,
            snapshot_cache_per_gb_second=fig(
                0.0000015046,
                "USD/GB-second",
                AWS_SNAPSTART_COPY,
                "per published version with SnapStart, memory x time cached (3 hours at least); "
                "Python 3.12+ since 2024-11-18; unconfirmed: third-party copy only",
                read_on=READ_ON_WARM,
            ),
            snapshot_restore_per_gb=fig(
                0.0001397998,
                "USD/GB restored",
                AWS_SNAPSTART_COPY,
                "per restore of an execution environment, by memory; unconfirmed: third-party "
                "copy only",
                read_on=READ_ON_WARM,
            ),
            max_concurrency=fig(
                1,
                "requests/instance",
                "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html",
                "an execution environment serves one request at a time",
                read_on=READ_ON_WARM,
            ),
            idle_lifetime_s=fig(
                600.0,
                "seconds idle",
                "https://mikhail.io/2019/08/aws-lambda-cold-starts-after-10-minutes/",
                "unconfirmed: AWS documents no figure, only that it keeps an execution "
                "environment 'for a non-deterministic period of time' (Lambda operator guide, "
                "execution environments); this third-party measurement (2019) saw every idle "
                "instance recycled 10 minutes after its last request",
                read_on=READ_ON_WARM,
            ),
        ),
    ),
)

EC2_PRICING = "https://aws.amazon.com/ec2/pricing/on-demand/"
_EC2_NOTE = (
    "Linux on demand, us-east-1; unconfirmed: no stored copy showed this price, value as last "
    "known; verify before relying on it"
)
VMS: dict[str, VmPrice] = {
    "t4g.nano": VmPrice(
        name="t4g.nano",
        region="us-east-1",
        vcpus=2,
        memory_mb=512,
        usd_per_hour=0.0042,
        source=EC2_PRICING,
        read_on=READ_ON,
        note=_EC2_NOTE,
    ),
    "t3.micro": VmPrice(
        name="t3.micro",
        region="us-east-1",
        vcpus=2,
        memory_mb=1024,
        usd_per_hour=0.0104,
        source=EC2_PRICING,
        read_on=READ_ON,
        note=_EC2_NOTE,
    ),
}
"""The cheapest always-on machines, for the monthly comparison."""
