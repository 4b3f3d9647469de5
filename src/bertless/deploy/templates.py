"""Infrastructure as code for teams whose stacks are owned by SAM/CloudFormation or Terraform.

`bertless template aws ARTIFACT` writes an AWS SAM template, `bertless template gcp ARTIFACT`
Terraform for Cloud Run functions, and `bertless template azure ARTIFACT` Terraform for a Flex
Consumption app whose code `bertless deploy azure` then puts on it (as it deploys to an
existing app). Each deploys the same artifact with the same settings
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
from bertless.deploy.azure_app import PUBLIC_SETTING
from bertless.deploy.plan import ARTIFACT_SHA_SETTING, Target
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


def terraform_azure(artifact: Artifact, target: Target) -> str:
    """Terraform for a Flex Consumption function app (azurerm_function_app_flex_consumption)
    sized for the artifact; the code then goes with `bertless deploy azure`, which deploys to an
    existing app and records the artifact's sha256 in its settings only once it succeeded (so
    the template leaves that setting to it)."""
    check_artifact(artifact, "azure", None)
    memory = limits.instance_memory_mb("azure", target.memory_mb or artifact.memory_mb)
    settings = {**target.environment, PUBLIC_SETTING: "1" if target.public else "0"}
    how = (
        "apply it, then put the code on the app with "
        f"`bertless deploy azure {artifact.path.name} --name {target.name} ...`."
    )
    lines = [f"# {line}" for line in header(artifact, "azure", how)]
    lines += [
        "",
        'variable "resource_group_name" { type = string }',
        f'variable "location" {{\n  type    = string\n  default = {_hcl(target.region or "")}\n}}',
        'variable "storage_account_name" { type = string }',
        "",
        'provider "azurerm" {\n  features {}\n}',
        "",
        'data "azurerm_storage_account" "deployments" {',
        "  name                = var.storage_account_name",
        "  resource_group_name = var.resource_group_name",
        "}",
        "",
        'resource "azurerm_storage_container" "deployments" {',
        f"  name                  = {_hcl(f'bertless-{target.name}')}",
        "  storage_account_id    = data.azurerm_storage_account.deployments.id",
        '  container_access_type = "private"',
        "}",
        "",
        'resource "azurerm_service_plan" "plan" {',
        f"  name                = {_hcl(f'{target.name}-plan')}",
        "  resource_group_name = var.resource_group_name",
        "  location            = var.location",
        '  os_type             = "Linux"',
        '  sku_name            = "FC1"',
        "}",
        "",
        'resource "azurerm_function_app_flex_consumption" "app" {',
        f"  name                        = {_hcl(target.name)}",
        "  resource_group_name         = var.resource_group_name",
        "  location                    = var.location",
        "  service_plan_id             = azurerm_service_plan.plan.id",
        '  storage_container_type      = "blobContainer"',
        "  storage_container_endpoint  = "
        '"${data.azurerm_storage_account.deployments.primary_blob_endpoint}'
        '${azurerm_storage_container.deployments.name}"',
        '  storage_authentication_type = "SystemAssignedIdentity"',
        '  runtime_name                = "python"',
        f"  runtime_version             = {_hcl(artifact.python)}",
        f"  instance_memory_in_mb       = {memory}",
        f"  app_settings                = {_hcl(settings)}",
        f"  tags                        = {_hcl({'bertless-artifact-sha256': artifact.sha256})}",
        "  identity {",
        '    type = "SystemAssigned"',
        "  }",
        "  site_config {}",
        "  lifecycle {",
        f"    ignore_changes = [app_settings[{_hcl(ARTIFACT_SHA_SETTING)}]]",
        "  }",
        "}",
        "",
        'resource "azurerm_role_assignment" "deployments" {',
        "  scope                = data.azurerm_storage_account.deployments.id",
        '  role_definition_name = "Storage Blob Data Owner"',
        "  principal_id         = "
        "azurerm_function_app_flex_consumption.app.identity[0].principal_id",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _hcl(value: object) -> str:
    """A value in HCL: strings and numbers as JSON writes them, maps as `{ key = value }`."""
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(str(k))} = {_hcl(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    return json.dumps(value)
