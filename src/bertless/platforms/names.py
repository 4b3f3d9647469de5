"""Names and regions each platform accepts, checked before any request leaves the machine.

A name the platform refuses would otherwise fail halfway through a deploy (after an upload, a role,
a bucket), so every deploy checks here first. Region lists: AWS's comes from botocore's own endpoint
data, so it moves with the SDK; Google's and Azure's are copied from the pages below and should be
refreshed with them (a region missing here can be passed with BERTLESS_ALLOW_ANY_REGION=1).
"""

from __future__ import annotations

import os
import re

from bertless.core.errors import BertlessError

LAMBDA_NAME_SOURCE = "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html"
GCP_NAME_SOURCE = (
    "https://cloud.google.com/python/docs/reference/cloudfunctions/latest/"
    "google.cloud.functions_v2.types.CreateFunctionRequest"
)
AZURE_NAME_SOURCE = (
    "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules"
    "#microsoftweb"
)
GCP_REGIONS_SOURCE = "https://cloud.google.com/functions/docs/locations"
AZURE_REGIONS_SOURCE = "https://learn.microsoft.com/azure/reliability/regions-list"
READ_ON = "2026-11-23"


class InvalidNameError(BertlessError, ValueError):
    """A function name or region the platform would refuse; deploy reports it before any request."""


LAMBDA_ALIAS = "live"
"""The alias `bertless deploy aws` moves to each new version; its Function URL and bench use it."""

# Lambda: 1-64 letters, digits, hyphens, underscores (the unqualified function name).
_LAMBDA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Cloud Functions v2 function id: 4-63 of [a-z0-9-]; it also names the Cloud Run service, which
# must start with a letter and not end with a hyphen.
_GCP_NAME = re.compile(r"[a-z][a-z0-9-]{2,61}[a-z0-9]")
# Microsoft.Web/sites: 2-60 alphanumerics and hyphens, not starting or ending with a hyphen; it
# becomes NAME.azurewebsites.net. (Punycode-mappable Unicode is allowed; bertless keeps ASCII.)
_AZURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]")

NAME_RULES = {
    "aws": ("1 to 64 letters, digits, hyphens or underscores", _LAMBDA_NAME, LAMBDA_NAME_SOURCE),
    "gcp": (
        "4 to 63 lowercase letters, digits or hyphens, starting with a letter and not ending "
        "with a hyphen",
        _GCP_NAME,
        GCP_NAME_SOURCE,
    ),
    "azure": (
        "2 to 60 letters, digits or hyphens, not starting or ending with a hyphen",
        _AZURE_NAME,
        AZURE_NAME_SOURCE,
    ),
}

GCP_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)

AZURE_REGIONS = frozenset(
    {
        "australiacentral",
        "australiaeast",
        "australiasoutheast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "canadacentral",
        "canadaeast",
        "centralindia",
        "centralus",
        "chilecentral",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westindia",
        "westus",
        "westus2",
        "westus3",
    }
)


def check_name(cloud: str, name: str) -> str:
    """Return `name` if the platform accepts it; otherwise say which rule it breaks."""
    rule, pattern, source = NAME_RULES[cloud]
    if not pattern.fullmatch(name):
        raise InvalidNameError(f"{cloud} refuses the name {name!r}: it must be {rule} ({source})")
    return name


def aws_regions() -> frozenset[str]:
    """Every region botocore knows Lambda in, across partitions (aws, aws-cn, aws-us-gov, ...)."""
    import boto3

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("lambda", partition_name=partition)
    )


def azure_region(region: str) -> str:
    """Azure's canonical form: 'West Europe' and 'westeurope' are the same region."""
    return region.replace(" ", "").lower()


def check_region(cloud: str, region: str) -> str:
    """Return `region` (canonical) if it exists on the platform; otherwise name a few that do."""
    canonical = azure_region(region) if cloud == "azure" else region
    known = aws_regions() if cloud == "aws" else GCP_REGIONS if cloud == "gcp" else AZURE_REGIONS
    if canonical in known or os.environ.get("BERTLESS_ALLOW_ANY_REGION") == "1":
        return canonical
    close = sorted(r for r in known if r[:2] == canonical[:2])[:4] or sorted(known)[:4]
    raise InvalidNameError(
        f"{cloud} has no region {region!r}; for example: {', '.join(close)} "
        "(set BERTLESS_ALLOW_ANY_REGION=1 for a region newer than this list)"
    )
