"""examples/release-model.yml: every bertless command in it parses with the real CLI, and its
deploy, promote and rollback steps run with --dry-run against moto's server, with the workflow's
own environment, printing whole tables (no figure cut to "…") to a pipe."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import test_deploy_aws
import yaml
from test_deploy_aws import REGION, deploy_aws, target

from bertless.cli import deploy as deploy_command
from bertless.cli.main import main, parser

WORKFLOW = Path(__file__).parents[2] / "examples" / "release-model.yml"
CLOUD_STEPS = ("deploy", "promote", "rollback")

aws_env = test_deploy_aws.aws_env
awslambda = test_deploy_aws.awslambda


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def commands(workflow: dict) -> list[list[str]]:
    """Each `bertless ...` line of every step, as argv, with the inputs' defaults filled in."""
    inputs = workflow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads `on` as True

    def fill(match: re.Match) -> str:
        return inputs[match.group(1)]["default"]

    found = []
    for step in workflow["jobs"]["release"]["steps"]:
        for line in step.get("run", "").splitlines():
            line = re.sub(r"\$\{\{\s*inputs\.(\w+)\s*\}\}", fill, line.strip())
            if line.startswith("bertless "):
                found.append(shlex.split(line)[1:])
    return found


def test_the_workflow_runs_the_release_in_order_and_rolls_back_on_failure():
    workflow = load()
    assert [argv[0] for argv in commands(workflow)] == [
        "export",
        "export",
        "compare",
        "package",
        "deploy",
        "promote",
        "rollback",
    ]
    rollback = workflow["jobs"]["release"]["steps"][-1]
    assert rollback["if"] == "failure()" and rollback["run"] == "bertless rollback aws"


def test_every_bertless_command_parses(monkeypatch):
    workflow = load()
    for key, value in workflow["env"].items():
        monkeypatch.setenv(key, value)
    for argv in commands(workflow):
        args = parser().parse_args(argv)
        assert args.command == argv[0]


def test_the_cloud_steps_dry_run_against_moto(
    artifacts, moto_endpoint, awslambda, monkeypatch, capsys
):
    workflow = load()
    for key, value in workflow["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BERTLESS_REGION", REGION)  # moto's region instead of the workflow's
    monkeypatch.setenv("COLUMNS", "")  # as in a CI log: not set, output not a terminal
    name = workflow["env"]["BERTLESS_NAME"]
    deploy_aws(artifacts("aws", b"v1"), target(name, moto_endpoint))
    deploy_aws(artifacts("aws", b"v2"), target(name, moto_endpoint))  # rollback has a way back
    candidate = artifacts("aws", b"v3")
    monkeypatch.setattr(deploy_command, "_artifact", lambda args, console: candidate)
    capsys.readouterr()

    for argv in commands(workflow):
        if argv[0] in CLOUD_STEPS:
            assert main([*argv, "--dry-run", "--endpoint-url", moto_endpoint]) == 0, argv

    out = capsys.readouterr().out
    assert out.count("dry run: nothing touched") == 3
    assert "version 2 keeps 90%, the new version gets 10%" in out
    assert "version 2 -> version 1" in out
    assert "…" not in out
    alias = awslambda.get_alias(FunctionName=name, Name="live")
    assert alias["FunctionVersion"] == "2" and not (alias.get("RoutingConfig") or {}).get(
        "AdditionalVersionWeights"
    )


@pytest.mark.parametrize("path", ["examples/release-texts.txt"])
def test_the_texts_the_workflow_compares_on_are_in_the_repository(path):
    assert (Path(__file__).parents[2] / path).read_text().strip()
