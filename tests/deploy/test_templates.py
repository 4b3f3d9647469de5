"""`bertless template`: a SAM template that cfn-lint accepts (and a broken one it refuses, so the
check can fail), and Terraform that python-hcl2 parses; both name the artifact's sha256 and carry
the settings the deployers themselves would set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from bertless.cli.main import main
from bertless.deploy import aws_settings, gcp_function, templates
from bertless.deploy.plan import Target

CFN_LINT = Path(sys.executable).parent / "cfn-lint"  # installed with moto[server]


def cfn_lint(path) -> subprocess.CompletedProcess:
    return subprocess.run([CFN_LINT, str(path)], capture_output=True, text=True, timeout=300)


def sam_body(text: str) -> dict:
    """The template below its comment header (YAML reads JSON; so does json)."""
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))


def test_sam_template_of_the_default_artifact_passes_cfn_lint(packaged, tmp_path):
    artifact = packaged("aws")
    target = Target(name="minilm")
    text = templates.sam(artifact, target, snapstart=True)
    path = artifact.path.parent / "template.yaml"
    path.write_text(text)

    linted = cfn_lint(path)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    assert f"sha256 {artifact.sha256}" in text.splitlines()[1]
    function = sam_body(text)["Resources"]["BertlessFunction"]["Properties"]
    settings = aws_settings.settings(artifact, target, artifact.memory_mb)  # what `deploy aws` sets
    for key in ("Runtime", "Handler", "MemorySize", "Timeout"):
        assert function[key] == settings[key], key
    assert function["CodeUri"] == artifact.path.name
    assert function["AutoPublishAlias"] == "live"
    assert function["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def test_cfn_lint_refuses_a_broken_template(artifacts, tmp_path):
    artifact = artifacts("aws")
    body = sam_body(templates.sam(artifact, Target(name="broken")))
    body["Resources"]["BertlessFunction"]["Properties"]["MemorySize"] = 99999
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(body))

    linted = cfn_lint(path)
    assert linted.returncode != 0 and "E3034" in linted.stdout, linted.stdout + linted.stderr


def test_terraform_for_gcp_parses_and_names_the_artifact_hash(artifacts):
    artifact = artifacts("gcp", memory_mb=1024)
    target = Target(name="minilm", region="europe-west1", public=True)

    parsed = hcl2.loads(templates.terraform_gcp(artifact, target))

    resources = {
        kind.strip('"'): {name.strip('"'): body for name, body in named.items()}
        for block in parsed["resource"]
        for kind, named in block.items()
    }
    source = resources["google_storage_bucket_object"]["artifact"]
    assert source["name"].strip('"') == f"bertless/minilm/{artifact.sha256}.zip"
    function = resources["google_cloudfunctions2_function"]["function"]
    wanted = gcp_function.wanted(artifact, target, 1024, "minilm")  # what `deploy gcp` sends
    service = function["service_config"][0]
    assert service["available_memory"].strip('"') == wanted["serviceConfig"]["availableMemory"]
    assert service["timeout_seconds"] == wanted["serviceConfig"]["timeoutSeconds"]
    env = {k.strip('"'): v.strip('"') for k, v in service["environment_variables"].items()}
    assert env == wanted["serviceConfig"]["environmentVariables"]
    build = function["build_config"][0]
    assert build["runtime"].strip('"') == wanted["buildConfig"]["runtime"]
    assert (
        resources["google_cloud_run_service_iam_member"]["public"]["member"].strip('"')
        == "allUsers"
    )


def test_the_cli_writes_the_template_beside_the_artifact(packaged, capsys):
    artifact = packaged("aws")
    out = artifact.path.parent / "template.yaml"

    assert main(["template", "aws", str(artifact.path), "--name", "x", "--out", str(out)]) == 0

    assert artifact.sha256 in out.read_text()
    assert "beside" in capsys.readouterr().out


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_cli_without_an_artifact_is_one_sentence(cloud, tmp_path, capsys):
    assert main(["template", cloud, str(tmp_path / "none.zip"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "run `bertless package` first" in err and "Traceback" not in err


def test_terraform_for_azure_sizes_the_flex_app_and_leaves_the_hash_setting_to_deploy(artifacts):
    artifact = artifacts("azure", memory_mb=1024)
    target = Target(name="my-app", region="westeurope")

    parsed = hcl2.loads(templates.terraform_azure(artifact, target))

    (app,) = [
        named['"app"']
        for block in parsed["resource"]
        for kind, named in block.items()
        if kind == '"azurerm_function_app_flex_consumption"'
    ]
    assert app["instance_memory_in_mb"] == 2048  # Flex sizes: 512, 2048, 4096 MB
    assert app["runtime_version"].strip('"') == artifact.python
    tags = {k.strip('"'): v.strip('"') for k, v in app["tags"].items()}
    assert tags == {"bertless-artifact-sha256": artifact.sha256}
    settings = {k.strip('"'): v.strip('"') for k, v in app["app_settings"].items()}
    assert settings == {"BERTLESS_PUBLIC": "0"}  # as `deploy azure` sets it for a private app
    assert "BERTLESS_ARTIFACT_SHA256" in app["lifecycle"][0]["ignore_changes"][0]
