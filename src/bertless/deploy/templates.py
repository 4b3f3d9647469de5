"""Infrastructure as code for teams whose stacks are owned by SAM/CloudFormation or Terraform.

`bertless template aws ARTIFACT` writes an AWS SAM template and `bertless template gcp ARTIFACT`
a Terraform file for Cloud Run functions. Each deploys the same artifact with the same settings
as `bertless deploy`: the values come from the same functions the deployers use (the runtime
from platforms data, the memory from the artifact and preflight, Google's Function body from
`gcp_function.wanted`), and the header names the artifact's sha256.

What SAM adds on its own is what bertless does by hand: `AutoPublishAlias` publishes a version
and moves alias `live` (https://docs.aws.amazon.com/serverless-application-model/latest/
developerguide/sam-resource-function.html), and `DeploymentPreference` shifts traffic as a
canary through CodeDeploy, rolling back on the alarms given
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/
automating-updates-to-serverless-apps.html).

The SAM template is JSON under a comment header (YAML reads JSON, so `sam` and `cfn-lint` take
it as it is); the Terraform is HCL written out here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bertless.deploy import gcp_function
from bertless.deploy.plan import Target
from bertless.deploy.preflight import check_artifact
from bertless.platforms import limits
from bertless.platforms.names import LAMBDA_ALIAS

if TYPE_CHECKING:
    from bertless.packaging.package import Artifact

SAM_CANARY = "Canary10Percent5Minutes"  # one of SAM's predefined DeploymentPreference types
FUNCTION_ID = "BertlessFunction"


def header(artifact: Artifact, cloud: str, how: str) -> list[str]:
    """The comment lines every template starts with: what it deploys, and that it matches."""
    from bertless.core.version import __version__

    return [
        f"Written by `bertless template {cloud}` (bertless {__version__}).",
        f"Artifact: {artifact.path.name}, sha256 {artifact.sha256}.",
        f"It deploys the same artifact with the same settings as `bertless deploy {cloud}`; {how}",
    ]


def sam(artifact: Artifact, target: Target, snapstart: bool = False) -> str:
    """An AWS SAM template: the function, alias `live` with a canary DeploymentPreference, and
    the alias's Function URL (AWS_IAM unless `target.public`)."""
    memory = check_artifact(artifact, "aws", target.memory_mb)
    function: dict[str, Any] = {
        "FunctionName": target.name,
        "CodeUri": artifact.path.name,
        "Handler": artifact.entry_point,
        "Runtime": limits.require_runtime("aws", artifact.python).identifier,
        "Architectures": [artifact.arch],
        "MemorySize": memory,
        "Timeout": target.timeout_s,
        "Description": f"bertless {artifact.sha256}",
        "AutoPublishAlias": LAMBDA_ALIAS,
        "AutoPublishCodeSha256": artifact.sha256,
        "DeploymentPreference": {"Type": {"Ref": "DeploymentType"}},
        "FunctionUrlConfig": {"AuthType": "NONE" if target.public else "AWS_IAM"},
    }
    if target.environment:
        function["Environment"] = {"Variables": dict(target.environment)}
    if snapstart:
        function["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"bertless: {target.name} serving artifact {artifact.sha256[:12]}",
        "Parameters": {
            "DeploymentType": {
                "Type": "String",
                "Default": SAM_CANARY,
                "Description": "how CodeDeploy shifts traffic to a new version (AllAtOnce to skip)",
            }
        },
        "Resources": {FUNCTION_ID: {"Type": "AWS::Serverless::Function", "Properties": function}},
        "Outputs": {
            "FunctionUrl": {
                "Description": f"the Function URL of alias {LAMBDA_ALIAS}",
                "Value": {"Fn::GetAtt": [f"{FUNCTION_ID}Url", "FunctionUrl"]},
            }
        },
    }
    how = f"`sam deploy` uploads {artifact.path.name} from this folder."
    comments = "".join(f"# {line}\n" for line in header(artifact, "aws", how))
    return comments + json.dumps(template, indent=2) + "\n"


def terraform_gcp(artifact: Artifact, target: Target) -> str:
    """Terraform for a Cloud Run function (google_cloudfunctions2_function) from the artifact,
    uploaded to a bucket under a content-addressed name, with the deploy's Function body."""
    memory = check_artifact(artifact, "gcp", target.memory_mb)
    wanted = gcp_function.wanted(artifact, target, memory, target.name)
    build, service = wanted["buildConfig"], wanted["serviceConfig"]
    how = f"set var.source_bucket, keep {artifact.path.name} beside this file, and apply."
    lines = [f"# {line}" for line in header(artifact, "gcp", how)]
    lines += [
        "",
        'variable "project" { type = string }',
        f'variable "region" {{\n  type    = string\n  default = {_hcl(target.region or "")}\n}}',
        'variable "source_bucket" { type = string }',
        "",
        'provider "google" {\n  project = var.project\n  region  = var.region\n}',
        "",
        'resource "google_storage_bucket_object" "artifact" {',
        f"  name   = {_hcl(f'bertless/{target.name}/{artifact.sha256}.zip')}",
        "  bucket = var.source_bucket",
        f"  source = {_hcl(artifact.path.name)}",
        "}",
        "",
        'resource "google_cloudfunctions2_function" "function" {',
        f"  name     = {_hcl(target.name)}",
        "  location = var.region",
        f"  labels   = {_hcl(wanted['labels'])}",
        "  build_config {",
        f"    runtime     = {_hcl(build['runtime'])}",
        f"    entry_point = {_hcl(build['entryPoint'])}",
        "    source {",
        "      storage_source {",
        "        bucket = var.source_bucket",
        "        object = google_storage_bucket_object.artifact.name",
        "      }",
        "    }",
        "  }",
        "  service_config {",
        f"    available_memory      = {_hcl(service['availableMemory'])}",
        f"    timeout_seconds       = {_hcl(service['timeoutSeconds'])}",
        f"    environment_variables = {_hcl(service['environmentVariables'])}",
        "  }",
        "}",
    ]
    if target.public:
        lines += [
            "",
            'resource "google_cloud_run_service_iam_member" "public" {',
            "  location = var.region",
            "  service  = google_cloudfunctions2_function.function.name",
            '  role     = "roles/run.invoker"',
            '  member   = "allUsers"',
            "}",
        ]
    lines += [
        "",
        'output "url" {\n  value = google_cloudfunctions2_function.function.url\n}',
    ]
    return "\n".join(lines) + "\n"


def _hcl(value: object) -> str:
    """A value in HCL: strings and numbers as JSON writes them, maps as `{ key = value }`."""
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(str(k))} = {_hcl(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    return json.dumps(value)
