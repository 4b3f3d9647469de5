"""`bertless template aws|gcp|azure ARTIFACT --name N --out FILE`: infrastructure as code
instead of a deploy, for stacks owned by SAM/CloudFormation or Terraform (`deploy/templates.py`).

The flags that shape a deploy (`--name`, `--memory`, `--timeout`, `--public`, `--env`) mean and
read the same variables as in `bertless deploy`, so one CI job's settings serve both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertless.cli.env import add
from bertless.deploy.plan import PreflightError, Target

CLOUDS = ("aws", "gcp", "azure")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `template` on the CLI's subcommands."""
    p = sub.add_parser(
        "template",
        help="Write an AWS SAM template or Terraform that deploys an artifact as bertless would.",
        description="aws: a SAM template (function, alias live with a canary DeploymentPreference, "
        "Function URL); gcp: Terraform for a Cloud Run function; azure: Terraform for a Flex "
        "Consumption app that `bertless deploy azure` then deploys to. The template names the "
        "artifact's sha256 and expects the zip beside it.",
    )
    p.add_argument("cloud", choices=CLOUDS)
    add(p, "source", env="BERTLESS_SOURCE", help="an artifact zip (or its report JSON)")
    add(p, "--name", env="BERTLESS_NAME", help="function name")
    add(p, "--out", env="BERTLESS_TEMPLATE", help="the file to write (default: print it)")
    add(p, "--region", env="BERTLESS_REGION", help="gcp, azure: the default region variable")
    add(
        p,
        "--memory",
        env="BERTLESS_MEMORY",
        type=int,
        help="the function's memory in MB (default: the artifact's)",
    )
    add(p, "--timeout", env="BERTLESS_TIMEOUT", type=int, default=30, help="seconds (default 30)")
    add(
        p,
        "--public",
        env="BERTLESS_PUBLIC",
        action="store_true",
        help="let anyone call the function without credentials (default: authenticated only)",
    )
    add(
        p,
        "--snapstart",
        env="BERTLESS_TEMPLATE_SNAPSTART",
        action="store_true",
        help="aws: SnapStart on published versions",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read the artifact, write the template, and say where the zip must be."""
    from bertless.deploy import templates
    from bertless.packaging.package import read_artifact

    if not args.name:
        raise PreflightError("no function name: pass --name or set BERTLESS_NAME")
    if not args.source or not Path(args.source).is_file():
        raise PreflightError(f"no artifact at {args.source}: run `bertless package` first")
    artifact = read_artifact(Path(args.source))
    target = Target(
        name=args.name,
        region=args.region,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        public=args.public,
    )
    if args.cloud == "aws":
        text = templates.sam(artifact, target, snapstart=args.snapstart)
    elif args.cloud == "gcp":
        text = templates.terraform_gcp(artifact, target)
    else:
        text = templates.terraform_azure(artifact, target)
    if not args.out:
        print(text, end="")
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if out.parent.resolve() != artifact.path.parent.resolve():
        print(f"{out} written; copy {artifact.path.name} beside it before deploying")
    else:
        print(f"{out} written, beside {artifact.path.name}")
    return 0
