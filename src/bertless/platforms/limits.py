"""Each platform's limits, runtimes and prices, as data that says where it came from.

Providers change these figures without notice, so every figure is a record carrying the page it
was read from and the day it was read; a figure whose note says "unconfirmed" could not be checked
against the provider's own page and must be checked before anyone relies on it. Change a
figure by editing its record here (value, source, read_on, note), never by writing a literal
elsewhere: packaging and the cost model read everything through this module.

Conventions: sizes are bytes, with a provider's "MB" read as 2**20 bytes (Lambda's own error for
"250 MB" says 262144000 bytes); memory settings are MB (= MiB); prices are US dollars in the
cheapest region tier (AWS us-east-1, Google Tier 1, Azure East US).

Override for tests: the AWS direct-upload zip limit can be lowered with the environment variable
BERTLESS_AWS_DIRECT_UPLOAD_LIMIT_BYTES (a positive integer), so a test can trip the limit with a
small artifact. Only `package_limits()` applies it; read package limits through that function.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

READ_ON = "2026-11-23"
MiB = 1024 * 1024
GiB = 1024 * MiB
AWS_DIRECT_UPLOAD_ENV = "BERTLESS_AWS_DIRECT_UPLOAD_LIMIT_BYTES"


class UnknownPlatformError(LookupError):
    """A platform name that this module has no data for."""


class UnsupportedRuntimeError(LookupError):
    """A Python version that a platform does not offer."""


class OutOfRangeError(ValueError):
    """A setting (memory, architecture) that the platform does not accept."""


@dataclass(frozen=True, kw_only=True)
class Sourced:
    """Where a record was read: a figure without this is a guess."""

    source: str
    read_on: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Figure(Sourced, Generic[T]):
    """One limit or price. A value of None means the provider documents no cap."""

    value: T
    unit: str


@dataclass(frozen=True, kw_only=True)
class VcpuScaling(Sourced):
    """How much CPU a memory setting buys, as the documented (memory MB, vCPUs) points.

    proportional: CPU grows with memory between the points (Lambda). Otherwise a memory size gets
    the vCPUs of the next documented size up (Cloud Run tiers, Azure Flex instance sizes).
    """

    points: tuple[tuple[int, float], ...]
    proportional: bool


@dataclass(frozen=True, kw_only=True)
class Runtime(Sourced):
    """A managed Python runtime; its glibc decides which manylinux wheels can run there."""

    identifier: str
    python: str
    os: str | None = None
    glibc: str | None = None
    deprecated_on: str | None = None
    blocked_on: str | None = None  # no more creates (AWS) or deploys (Google decommission)


@dataclass(frozen=True, kw_only=True)
class PackageLimits:
    """Artifact size caps by upload path; a field left None is a path the platform lacks."""

    zip_direct_upload: Figure[int | None] | None = None
    unzipped: Figure[int | None] | None = None
    via_object_storage: Figure[int | None] | None = None
    container_image: Figure[int | None] | None = None


@dataclass(frozen=True, kw_only=True)
class Pricing:
    """On-demand prices and the rules that turn a request into billed units."""

    per_gb_second: Figure[float]  # memory; GiB-second on Google
    per_million_requests: Figure[float]
    billing_step_ms: Figure[int]
    min_billed_ms: Figure[int]
    free_requests: Figure[int]
    free_gb_seconds: Figure[int]
    per_gb_second_arm64: Figure[float] | None = None
    per_vcpu_second: Figure[float] | None = None
    free_vcpu_seconds: Figure[int] | None = None
    memory_rounding_mb: Figure[int] | None = None  # billed memory rounded up to this step
    bills_instance_memory: bool = False  # bills the instance size, not the setting


@dataclass(frozen=True, kw_only=True)
class Platform:
    """One place a function can run, with every figure that decides whether and how it fits."""

    key: str
    name: str
    package: PackageLimits
    memory_min_mb: Figure[int]
    memory_max_mb: Figure[int]
    # None: any size in range, rounded up to an instance size where the plan bills instances
    memory_step_mb: Figure[int] | None
    vcpus: VcpuScaling | None
    timeout_s: Figure[int]
    request_bytes: Figure[int]
    response_bytes: Figure[int] | None
    runtimes: tuple[Runtime, ...]
    architectures: Figure[tuple[str, ...]]
    pricing: Pricing | None
    retires_on: Figure[str] | None = None


@dataclass(frozen=True, kw_only=True)
class VmPrice(Sourced):
    """An always-on machine to hold serverless prices against."""

    name: str
    region: str
    vcpus: int
    memory_mb: int
    usd_per_hour: float


def _fig(value: T, unit: str, source: str, note: str = "") -> Figure[T]:
    return Figure(value=value, unit=unit, source=source, read_on=READ_ON, note=note)


# --- AWS Lambda -------------------------------------------------------------------------------
AWS_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
AWS_INVOKE = "https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html"
AWS_STREAMING = (
    "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/lambda/"
    "aws.sdk.kotlin.services.lambda.model/-function-url-config/invoke-mode.html"
)
AWS_MEMORY = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
AWS_PYTHON = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html"
AWS_PRICING = "https://aws.amazon.com/lambda/pricing/"
AWS_PRICING_COPY = "https://cloudchipr.com/blog/aws-lambda-pricing"
_AWS_PRICE_NOTE = (
    "us-east-1, first pricing tier; unconfirmed: read from third-party copies (cloudchipr.com, "
    "git.mcrn.ar) that agree: the stored copy of aws.amazon.com/lambda/pricing shows no figures"
)
_AL2023 = "Amazon Linux 2023"

AWS = Platform(
    key="aws",
    name="AWS Lambda",
    package=PackageLimits(
        zip_direct_upload=_fig(
            50 * MiB, "bytes", AWS_QUOTAS, "zipped, uploaded through the API; larger goes via S3"
        ),
        unzipped=_fig(
            250 * MiB, "bytes", AWS_QUOTAS, "function plus all layers, extracted (262144000)"
        ),
        via_object_storage=_fig(
            250 * MiB,
            "bytes",
            AWS_QUOTAS,
            "an S3 upload lifts only the 50 MB zipped cap; the unzipped cap still binds",
        ),
        container_image=_fig(10 * GiB, "bytes", AWS_QUOTAS, "uncompressed, all layers"),
    ),
    memory_min_mb=_fig(128, "MB", AWS_QUOTAS),
    memory_max_mb=_fig(10240, "MB", AWS_QUOTAS),
    memory_step_mb=_fig(1, "MB", AWS_QUOTAS),
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
    timeout_s=_fig(900, "s", AWS_QUOTAS, "API Gateway ends HTTP requests sooner (29-30 s)"),
    request_bytes=_fig(
        6 * MiB, "bytes", AWS_INVOKE, "synchronous invoke and Function URL; asynchronous: 1 MB"
    ),
    response_bytes=_fig(
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
            source="https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html",
            read_on=READ_ON,
            note="listed as a runtime identifier; deprecation dates unconfirmed",
        ),
    ),
    architectures=_fig(("x86_64", "arm64"), "architectures", AWS_PRICING),
    pricing=Pricing(
        per_gb_second=_fig(0.0000166667, "USD/GB-second", AWS_PRICING_COPY, _AWS_PRICE_NOTE),
        per_gb_second_arm64=_fig(
            0.0000133334, "USD/GB-second", AWS_PRICING_COPY, "arm64; " + _AWS_PRICE_NOTE
        ),
        per_million_requests=_fig(0.20, "USD/1M requests", AWS_PRICING_COPY, _AWS_PRICE_NOTE),
        billing_step_ms=_fig(1, "ms", AWS_PRICING, "duration rounded up to the nearest 1 ms"),
        min_billed_ms=_fig(1, "ms", AWS_PRICING),
        free_requests=_fig(1_000_000, "requests/month", AWS_PRICING_COPY, "per account"),
        free_gb_seconds=_fig(
            400_000, "GB-seconds/month", AWS_PRICING_COPY, "per account, x86_64 and arm64 together"
        ),
    ),
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
        zip_direct_upload=_fig(None, "bytes", GCP_QUOTAS, "N/A for 2nd gen in the quota table"),
        unzipped=_fig(None, "bytes", GCP_QUOTAS, "N/A for 2nd gen in the quota table"),
    ),
    memory_min_mb=_fig(128, "MB", GCP_MEMORY),
    memory_max_mb=_fig(32768, "MB", GCP_QUOTAS),
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
    timeout_s=_fig(
        3600,
        "s",
        GCP_QUOTAS,
        "HTTP functions; read from the zh-CN copy of the quota table (replaces the Firebase copy)",
    ),
    request_bytes=_fig(32 * MiB, "bytes", GCP_QUOTAS, "uncompressed"),
    response_bytes=_fig(32 * MiB, "bytes", GCP_QUOTAS, "uncompressed; 10 MB when streamed"),
    runtimes=(
        _gcp_runtime("3.11", "2027-10-24", "2028-04-24"),
        _gcp_runtime("3.12", "2028-10-02", "2029-04-02"),
        _gcp_runtime("3.13", "2029-10-10", "2030-04-10"),
        _gcp_runtime("3.14", "2030-10-10", "2031-04-10"),
    ),
    architectures=_fig(
        ("x86_64",), "architectures", GCP_RUNTIMES, "unconfirmed: no arm64 option documented"
    ),
    pricing=Pricing(
        per_vcpu_second=_fig(0.000024, "USD/vCPU-second", RUN_PRICING, _RUN_PRICE_NOTE),
        per_gb_second=_fig(0.0000025, "USD/GiB-second", RUN_PRICING, _RUN_PRICE_NOTE),
        per_million_requests=_fig(0.40, "USD/1M requests", RUN_PRICING),
        billing_step_ms=_fig(100, "ms", RUN_PRICING, "rounded up to the nearest 100 ms"),
        min_billed_ms=_fig(100, "ms", RUN_PRICING),
        free_requests=_fig(2_000_000, "requests/month", RUN_PRICING, "per billing account"),
        free_gb_seconds=_fig(360_000, "GiB-seconds/month", RUN_PRICING, "per billing account"),
        free_vcpu_seconds=_fig(180_000, "vCPU-seconds/month", RUN_PRICING, "per billing account"),
    ),
)

GCP_GEN1 = dataclasses.replace(
    GCP,
    key="gcp-gen1",
    name="Google Cloud Functions (1st gen)",
    package=PackageLimits(
        zip_direct_upload=_fig(100 * MiB, "bytes", GCP_QUOTAS, "compressed sources"),
        unzipped=_fig(500 * MiB, "bytes", GCP_QUOTAS, "uncompressed sources plus modules"),
    ),
    memory_max_mb=_fig(8192, "MB", GCP_QUOTAS),
    vcpus=VcpuScaling(
        points=_GCP_TIERS,
        proportional=False,
        source="https://cloud.google.com/functions/1stgendocs/configuring/memory",
        read_on=READ_ON,
    ),
    timeout_s=_fig(540, "s", GCP_QUOTAS),
    request_bytes=_fig(10 * MiB, "bytes", GCP_QUOTAS),
    response_bytes=_fig(10 * MiB, "bytes", GCP_QUOTAS),
    runtimes=GCP.runtimes[:2],
    pricing=None,  # billed by memory tier in 100 ms steps; not modeled: deploy 2nd gen instead
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
_AZ_UNREMEMBERED = (
    "unconfirmed: no stored copy of the pricing page showed this figure; value as last known, "
    "verify before relying on it"
)
_AZ_THIRD_PARTY = (
    "unconfirmed: third-party copy (modal.com); the stored official page shows no prices"
)
_AZ_NO_PACKAGE_CAP = (
    "no documented cap for zip deploy / run from package (open docs question "
    "MicrosoftDocs/azure-docs#30243); not re-checked"
)


def _azure_runtime(python: str, note: str, source: str = AZ_FLEX_MD) -> Runtime:
    # Azure's Python 3.11 images are Debian Bullseye (glibc 2.31), Azure/azure-functions-python-
    # worker#1651; later ones reportedly Bookworm (2.36, unconfirmed): 2.31 is the safe floor.
    return Runtime(
        identifier="python " + python,
        python=python,
        glibc="2.31",
        source=source,
        read_on=READ_ON,
        note=note,
    )


AZURE = Platform(
    key="azure",
    name="Azure Functions (Flex Consumption)",
    package=PackageLimits(
        zip_direct_upload=_fig(None, "bytes", AZ_PACKAGE, _AZ_NO_PACKAGE_CAP),
        via_object_storage=_fig(
            None, "bytes", AZ_FLEX_MD, "every Flex deployment goes through a blob container"
        ),
    ),
    memory_min_mb=_fig(512, "MB", AZ_FLEX, "unconfirmed: see vcpus"),
    memory_max_mb=_fig(4096, "MB", AZ_FLEX_MD),
    memory_step_mb=None,
    vcpus=VcpuScaling(
        points=((512, 0.25), (2048, 1.0), (4096, 2.0)),
        proportional=False,
        source=AZ_FLEX,
        read_on=READ_ON,
        note=(
            "instance memory sizes, plus a 272 MB platform buffer; unconfirmed: the stored copy "
            "(preview, 2024-05-24) lists only 2,048 and 4,096 MB and no core counts, so the 512 MB "
            "size and the cores are carried over from platform-limits.md"
        ),
    ),
    timeout_s=_fig(
        230,
        "s",
        AZ_TIMEOUT,
        "an HTTP response must start within 230 s; functionTimeout is 30 min by default and may "
        "be unbounded on Flex (also in microsoft/azure-skills hosting-plans.md)",
    ),
    request_bytes=_fig(100 * MiB, "bytes", AZ_LIMITS, "not re-checked"),
    response_bytes=None,
    runtimes=(
        _azure_runtime("3.11", "listed by the stored copy (preview, 2024-05-24)"),
        _azure_runtime("3.12", "unconfirmed: the stored copy lists 3.10 and 3.11 only"),
        _azure_runtime(
            "3.13",
            "unconfirmed; the azure-functions library 2.x needs 3.13+",
            "https://learn.microsoft.com/azure/azure-functions/functions-reference-python",
        ),
    ),
    architectures=_fig(("x86_64",), "architectures", AZ_FLEX, "Linux; unconfirmed"),
    pricing=Pricing(
        per_gb_second=_fig(
            0.000026,
            "USD/GB-second",
            AZ_PRICING_COPY,
            "on demand, of the instance memory size; unconfirmed: third-party copy only",
        ),
        per_million_requests=_fig(0.40, "USD/1M executions", AZ_PRICING, _AZ_UNREMEMBERED),
        billing_step_ms=_fig(100, "ms", AZ_FLEX_MD, "active period rounded up to 100 ms"),
        min_billed_ms=_fig(
            1000,
            "ms",
            AZ_FLEX_MD,
            "minimum billable execution period per instance; concurrent executions share it",
        ),
        free_requests=_fig(250_000, "executions/month", AZ_PRICING, _AZ_UNREMEMBERED),
        free_gb_seconds=_fig(100_000, "GB-seconds/month", AZ_PRICING, _AZ_UNREMEMBERED),
        bills_instance_memory=True,
    ),
)

AZURE_CONSUMPTION = Platform(
    key="azure-consumption",
    name="Azure Functions (Linux Consumption)",
    package=PackageLimits(zip_direct_upload=_fig(None, "bytes", AZ_PACKAGE, _AZ_NO_PACKAGE_CAP)),
    memory_min_mb=_fig(128, "MB", AZ_PRICING, "the smallest billed memory"),
    memory_max_mb=_fig(1536, "MB", AZ_PRICING, "per instance; also the billing cap"),
    memory_step_mb=None,
    vcpus=None,  # not documented
    timeout_s=_fig(
        230, "s", AZ_TIMEOUT, "HTTP response within 230 s; functionTimeout 5 min default, 10 max"
    ),
    request_bytes=_fig(100 * MiB, "bytes", AZ_LIMITS, "not re-checked"),
    response_bytes=None,
    runtimes=(
        _azure_runtime(
            "3.11",
            "unconfirmed; Linux Consumption gets no new language versions",
            "https://learn.microsoft.com/en-us/azure/azure-functions/functions-versions",
        ),
    ),
    architectures=_fig(("x86_64",), "architectures", AZ_PRICING, "Linux; unconfirmed"),
    pricing=Pricing(
        per_gb_second=_fig(0.000016, "USD/GB-second", AZ_PRICING_COPY, _AZ_THIRD_PARTY),
        per_million_requests=_fig(0.20, "USD/1M executions", AZ_PRICING_COPY, _AZ_THIRD_PARTY),
        billing_step_ms=_fig(
            1, "ms", AZ_PRICING, "unconfirmed: the stored copy is cut off mid-sentence here"
        ),
        min_billed_ms=_fig(100, "ms", AZ_PRICING, "unconfirmed: as last known"),
        free_requests=_fig(1_000_000, "executions/month", AZ_PRICING, "per subscription"),
        free_gb_seconds=_fig(400_000, "GB-seconds/month", AZ_PRICING, "per subscription"),
        memory_rounding_mb=_fig(
            128, "MB", AZ_PRICING, "observed memory, rounded up to the nearest 128 MB"
        ),
    ),
    retires_on=_fig(
        "2028-09-30",
        "date",
        "https://learn.microsoft.com/en-us/azure/azure-functions/functions-versions",
        "Linux Consumption retires; not re-checked",
    ),
)

# --- Registry ---------------------------------------------------------------------------------
PLATFORMS: dict[str, Platform] = {"aws": AWS, "gcp": GCP, "azure": AZURE}
"""The platforms bertless deploys to."""

OTHER_PLANS: dict[str, Platform] = {"gcp-gen1": GCP_GEN1, "azure-consumption": AZURE_CONSUMPTION}
"""Older plans that differ materially; kept to compare against and to explain errors."""

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


def get_platform(name: str) -> Platform:
    """Look a platform up by key, naming the known keys when the name is wrong."""
    known = PLATFORMS | OTHER_PLANS
    if name not in known:
        raise UnknownPlatformError(
            f"unknown platform {name!r}; known platforms: {', '.join(sorted(known))}"
        )
    return known[name]


def get_vm(name: str) -> VmPrice:
    if name not in VMS:
        raise UnknownPlatformError(f"unknown VM {name!r}; known VMs: {', '.join(sorted(VMS))}")
    return VMS[name]


def runtime(platform: str, python: str = "3.12") -> Runtime | None:
    """The platform's runtime for a Python version ("3.12"), or None if it offers none."""
    return next((r for r in get_platform(platform).runtimes if r.python == python), None)


def require_runtime(platform: str, python: str = "3.12") -> Runtime:
    """Like `runtime`, for callers that cannot go on without one."""
    found = runtime(platform, python)
    if found is None:
        offered = ", ".join(r.python for r in get_platform(platform).runtimes)
        raise UnsupportedRuntimeError(
            f"{platform} offers no Python {python} runtime; it offers Python {offered}"
        )
    return found


def check_memory(platform: str, memory_mb: int) -> None:
    """Refuse a memory setting the platform would refuse, with the accepted range."""
    p = get_platform(platform)
    low, high = p.memory_min_mb.value, p.memory_max_mb.value
    if not low <= memory_mb <= high:
        raise OutOfRangeError(f"{p.name} memory must be {low} to {high} MB; got {memory_mb} MB")
    if p.memory_step_mb is not None and (memory_mb - low) % p.memory_step_mb.value:
        raise OutOfRangeError(
            f"{p.name} memory goes in {p.memory_step_mb.value} MB steps; got {memory_mb} MB"
        )


def instance_memory_mb(platform: str, memory_mb: int) -> int:
    """The smallest documented size that holds `memory_mb`: what a sized plan runs and bills."""
    check_memory(platform, memory_mb)
    scaling = _scaling(platform)
    return next(mb for mb, _ in scaling.points if mb >= memory_mb)


def vcpus_for_memory(platform: str, memory_mb: int) -> float:
    """The vCPUs (or CPU share) a memory setting gets; it sizes thread pools and GCP bills it."""
    check_memory(platform, memory_mb)
    scaling = _scaling(platform)
    if not scaling.proportional:
        return next(cpus for mb, cpus in scaling.points if mb >= memory_mb)
    (mb0, cpu0), *rest = scaling.points
    if memory_mb <= mb0:
        return memory_mb * cpu0 / mb0
    for mb1, cpu1 in rest:
        if memory_mb <= mb1:
            return cpu0 + (memory_mb - mb0) * (cpu1 - cpu0) / (mb1 - mb0)
        mb0, cpu0 = mb1, cpu1
    raise OutOfRangeError(f"{platform}: no vCPU figure documented for {memory_mb} MB")


def package_limits(platform: str) -> PackageLimits:
    """The platform's package caps, with the documented test override applied on AWS."""
    limits = get_platform(platform).package
    raw = os.environ.get(AWS_DIRECT_UPLOAD_ENV)
    if platform != "aws" or raw is None:
        return limits
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{AWS_DIRECT_UPLOAD_ENV} must be a positive number of bytes; got {raw!r}")
    overridden = dataclasses.replace(
        limits.zip_direct_upload, value=int(raw), note=f"overridden by {AWS_DIRECT_UPLOAD_ENV}"
    )
    return dataclasses.replace(limits, zip_direct_upload=overridden)


def records(*roots: object) -> Iterator[Sourced]:
    """Every sourced record under `roots` (default: all data here), so they can be audited."""
    for item in roots or (*PLATFORMS.values(), *OTHER_PLANS.values(), *VMS.values()):
        yield from _walk(item)


def _walk(item: object) -> Iterator[Sourced]:
    if isinstance(item, Sourced):
        yield item
    if isinstance(item, tuple):
        for element in item:
            yield from _walk(element)
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for field in dataclasses.fields(item):
            yield from _walk(getattr(item, field.name))


def _scaling(platform: str) -> VcpuScaling:
    scaling = get_platform(platform).vcpus
    if scaling is None:
        raise OutOfRangeError(f"{platform}: the provider documents no vCPU share per memory size")
    return scaling
