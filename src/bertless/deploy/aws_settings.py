"""The Lambda function settings bertless owns, and how the account's copy is compared to them.

`deploy aws` sets these and leaves every other setting alone; `deploy template aws` writes the
same values into its SAM template. Lambda reports `CodeSha256` as base64 of the zip's sha256, so
comparing it with the artifact's hash tells whether the code changed without downloading it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from bertless.deploy import aws_warm as warm
from bertless.platforms import limits

if TYPE_CHECKING:
    from bertless.deploy.plan import Target
    from bertless.packaging.package import Artifact


def code_sha256(artifact: Artifact) -> str:
    """The artifact's hash in Lambda's own form (base64 of the raw sha256)."""
    return base64.b64encode(bytes.fromhex(artifact.sha256)).decode()


def settings(artifact: Artifact, target: Target, memory: int) -> dict[str, Any]:
    """The function settings bertless owns besides the role; others are left alone. An image
    names its own runtime and handler (its base and CMD)."""
    owned = {
        "Runtime": limits.require_runtime("aws", artifact.python).identifier,
        "Handler": artifact.entry_point,
        "MemorySize": memory,
        "Timeout": target.timeout_s,
        "Environment": {"Variables": dict(target.environment)},
    }
    if artifact.image_uri:
        del owned["Runtime"], owned["Handler"]
    return owned


def drift(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings whose current value differs from the wanted one."""
    have = dict(current)
    have["Environment"] = {"Variables": current.get("Environment", {}).get("Variables", {})}
    have["Layers"] = [layer["Arn"] for layer in current.get("Layers", [])]
    have["SnapStart"] = warm.snapstart_as_set(current)
    return [key for key, value in wanted.items() if have.get(key) != value]
