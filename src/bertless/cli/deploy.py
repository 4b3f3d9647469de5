"""`bertless deploy {aws,gcp,azure} ARTIFACT_OR_BUNDLE --name NAME`: parse, show, call the client.

A bundle directory is packaged first; an artifact from `bertless package` is used as is. Every
flag has an environment variable named in its help (`--role-arn` / `BERTLESS_ROLE_ARN`), like the
rest of the CLI. Secrets (the Azure function key) are printed once, on their own line, and never
logged.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bertless.cli.env import add
from bertless.cli.package import add_artifact_flags
from bertless.deploy.plan import Deployer, Plan, PreflightError, Result, Target
from bertless.deploy.rollout import check_canary

if TYPE_CHECKING:
    from rich.console import Console

    from bertless.packaging.package import Artifact

CLOUDS = ("aws", "gcp", "azure")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `deploy` on the CLI's subcommands."""
    p = sub.add_parser(
        "deploy",
        help="Deploy a bundle or artifact to AWS Lambda, Google Cloud Functions or Azure.",
        description="Create or update a function that serves the bundle. Safe to repeat: the same "
        "artifact deployed twice changes nothing. Every flag has an environment variable, named "
        "in its help.",
    )
    p.add_argument("cloud", choices=CLOUDS)
    add(
        p,
        "source",
        env="BERTLESS_SOURCE",
        help="an artifact zip (or its report JSON) from `bertless package`, or a bundle directory",
    )
    add(p, "--name", env="BERTLESS_NAME", help="function (Azure: function app) name")
    add(p, "--region", env="BERTLESS_REGION", help="default: the SDK's configured region")
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
        "--dry-run",
        env="BERTLESS_DRY_RUN",
        action="store_true",
        help="read the cloud's current state (read-only calls, so credentials are needed), print "
        "the steps a deploy would take, and change nothing",
    )
    add(
        p,
        "--endpoint-url",
        env="BERTLESS_ENDPOINT_URL",
        help="API base for a local stand-in (AWS: every client; GCP: both APIs; Azure: ARM)",
    )
    add(
        p,
        "--canary",
        env="BERTLESS_CANARY",
        type=float,
        metavar="PERCENT",
        help="send only this share of requests to the new version (AWS: alias weights; GCP: "
        "Cloud Run traffic split; Azure refuses); then `bertless promote` or `bertless rollback`",
    )
    add(
        p,
        "--no-smoke",
        env="BERTLESS_NO_SMOKE",
        dest="smoke",
        action="store_false",
        help="skip the GET /health request after deploying",
    )
    add(
        p,
        "--env",
        env="BERTLESS_ENV",
        separator=",",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the function (repeatable; the variable takes K=V,K2=V2)",
    )
    add_artifact_flags(p.add_argument_group("packaging (when SOURCE is a bundle)"))
    aws = p.add_argument_group("aws")
    add(aws, "--role-arn", env="BERTLESS_ROLE_ARN", help="execution role (default: create one)")
    add(
        aws,
        "--bucket",
        env="BERTLESS_BUCKET",
        help="S3 bucket for zips over the direct-upload limit",
    )
    add(
        aws,
        "--snapstart",
        env="BERTLESS_SNAPSTART",
        action="store_true",
        help="restore published versions from a snapshot (Python 3.12+)",
    )
    add(
        aws,
        "--provisioned",
        env="BERTLESS_PROVISIONED",
        type=int,
        default=0,
        help="environments kept initialised on alias live (default 0)",
    )
    gcp = p.add_argument_group("gcp")
    add(gcp, "--project", env="BERTLESS_PROJECT", help="default: google.auth's project")
    add(
        gcp,
        "--min-instances",
        env="BERTLESS_MIN_INSTANCES",
        type=int,
        help="instances kept warm (default: as the function has it)",
    )
    add(
        gcp,
        "--max-instances",
        env="BERTLESS_MAX_INSTANCES",
        type=int,
        help="most instances (default: as the function has it)",
    )
    add(
        gcp,
        "--cpu",
        env="BERTLESS_CPU",
        help="vCPUs per instance, like 1 (default: what the memory gets)",
    )
    add(
        gcp,
        "--cpu-boost",
        env="BERTLESS_CPU_BOOST",
        action="store_true",
        help="more vCPUs while an instance starts (Cloud Run's startup CPU boost, set on the "
        "function's service)",
    )
    azure = p.add_argument_group("azure")
    add(
        azure,
        "--subscription",
        env="BERTLESS_SUBSCRIPTION",
        default=os.environ.get("AZURE_SUBSCRIPTION_ID"),
        help="default: AZURE_SUBSCRIPTION_ID",
    )
    add(azure, "--resource-group", env="BERTLESS_RESOURCE_GROUP")
    add(
        azure,
        "--storage-account",
        env="BERTLESS_STORAGE_ACCOUNT",
        help="Linux Consumption apps: where the package blob goes (or set "
        "AZURE_STORAGE_CONNECTION_STRING); Flex Consumption apps need none",
    )
    add(
        azure,
        "--container",
        env="BERTLESS_CONTAINER",
        default="bertless-deployments",
        help="the blob container of Linux Consumption packages (default bertless-deployments)",
    )
    add(
        azure,
        "--always-ready",
        env="BERTLESS_ALWAYS_READY",
        type=int,
        help="Flex: HTTP instances kept running (default: as the app has it)",
    )
    add(
        azure,
        "--instance-memory",
        env="BERTLESS_INSTANCE_MEMORY",
        type=int,
        help="Flex: instance size in MB, 512, 2048 or 4096 (default: as the app has it)",
    )
    add(
        azure,
        "--concurrency",
        env="BERTLESS_INSTANCE_CONCURRENCY",
        dest="instance_concurrency",
        type=int,
        help="GCP and Azure Flex: HTTP requests one instance takes at once (GCP: above 1 needs "
        "--cpu 1; default: what the artifact was packaged for with `bertless package "
        "--concurrency N`, else as the function has it)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plan from the cloud's state, show the plan, and (unless --dry-run) carry it out."""
    from rich.console import Console

    from bertless.deploy.plan import Apply, Show, deploy

    console = Console()
    if not args.name:
        raise PreflightError("no function name: pass --name or set BERTLESS_NAME")
    artifact = _artifact(args, console)
    target = Target(
        name=args.name,
        region=args.region,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        public=args.public,
        endpoint_url=args.endpoint_url,
        smoke=args.smoke,
        environment=_environment(args.env),
        canary=None if args.canary is None else check_canary(args.canary),
    )
    executor = Show() if args.dry_run else Apply()
    with console.status(f"deploying {target.name} to {args.cloud}") as status:
        result = deploy(
            _deployer(args),
            artifact,
            target,
            executor,
            say=status.update,
            shown=lambda plan: _print_plan(console, plan, dry_run=executor.dry_run),
        )
    if result is not None:
        _print_result(console, result)
        if target.canary is not None and result.changed:
            console.print(
                f"canary: {target.canary:.0%} of requests go to the new version; "
                f"`bertless promote {args.cloud} --name {target.name}` sends all of them, "
                f"`bertless rollback {args.cloud} --name {target.name}` none",
                markup=False,
                soft_wrap=True,
            )
    return 0


def _artifact(args: argparse.Namespace, console: Console) -> Artifact:
    """The artifact named, or one packaged now from a bundle directory."""
    if not args.source:
        raise PreflightError("nothing to deploy: name an artifact or a bundle directory")
    source = Path(args.source)
    if source.is_dir() and (source / "bundle.json").is_file():
        from bertless.packaging.package import package

        with console.status(f"packaging {source} for {args.cloud}") as status:
            return package(
                args.cloud,
                source,
                Path(args.out),
                python=args.python,
                arch=args.arch,
                memory_mb=args.memory,
                progress=status.update,
                layers=args.layers,
            )
    if source.is_file() and _is_image_report(source):
        from bertless.packaging.image import read_image

        return read_image(source)
    if source.is_file():
        from bertless.packaging.package import read_artifact

        return read_artifact(source)
    raise PreflightError(f"{source} is neither an artifact nor a bundle directory (no bundle.json)")


def _environment(pairs: list[str]) -> dict[str, str]:
    environment = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PreflightError(f"--env takes KEY=VALUE; got {pair!r}")
        environment[key] = value
    return environment


def _deployer(args: argparse.Namespace) -> Deployer:
    """The cloud's deploy client, imported only for the cloud asked for."""
    if args.cloud == "aws":
        from bertless.deploy.aws import AwsDeployer, AwsOptions

        options = AwsOptions(
            role_arn=args.role_arn,
            bucket=args.bucket,
            snapstart=args.snapstart,
            provisioned=args.provisioned,
        )
        return AwsDeployer(options)
    if args.cloud == "gcp":
        from bertless.deploy.gcp import GcpDeployer, GcpOptions

        options = GcpOptions(
            project=args.project,
            min_instances=args.min_instances,
            max_instances=args.max_instances,
            concurrency=args.instance_concurrency,
            cpu=args.cpu,
            cpu_boost=args.cpu_boost,
        )
        if _is_image_report(args.source):  # a Cloud Run service
            from bertless.deploy.cloudrun import CloudRunDeployer

            return CloudRunDeployer(options)
        return GcpDeployer(options)
    from bertless.deploy.azure import AzureDeployer, AzureOptions

    azure_options = AzureOptions(
        subscription=args.subscription,
        resource_group=args.resource_group,
        storage_account=args.storage_account,
        container=args.container,
        always_ready=args.always_ready,
        instance_memory_mb=args.instance_memory,
        concurrency=args.instance_concurrency,
    )
    if _is_image_report(args.source):  # a Functions container app
        from bertless.deploy.azure_containerapp import ContainerAppDeployer

        return ContainerAppDeployer(azure_options)
    return AzureDeployer(azure_options)


def _is_image_report(source: str | Path) -> bool:
    """Whether SOURCE is `package --format image --push`'s report (NAME-image.json): a pushed
    image, which runs as a container (Cloud Run, Container Apps) rather than as a function zip."""
    return Path(source).name.endswith("-image.json")


def _size(size: int | None) -> str:
    return "" if size is None else f"{size / 2**20:.1f} MB"


def _print_plan(console: Console, plan: Plan, dry_run: bool = False) -> None:
    from rich.table import Table

    title = f"{'plan' if dry_run else 'deploy'}: {plan.cloud} {plan.name} in {plan.region}"
    table = Table(title=title + (" (dry run: nothing touched)" if dry_run else ""))
    for column in ("action", "what", "detail", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for step in plan.steps:
        table.add_row(step.action, step.what, step.detail, _size(step.size))
    console.print(table)


def _print_result(console: Console, result: Result) -> None:
    if result.changed:
        version = f" (version {result.version})" if result.version else ""
        console.print(f"[green]deployed[/] {result.plan.name}{version}")
    else:
        console.print(f"[yellow]unchanged[/]: {result.plan.name} already serves this artifact")
    for note in result.notes:
        style = "bold red" if note.startswith("PUBLIC") else "yellow"
        console.print(note, style=style, markup=False)
    console.print(f"auth: {result.auth}", markup=False)
    if result.secret:
        console.print(
            f"{result.secret_label}, shown once: {result.secret}", markup=False, soft_wrap=True
        )
    console.print(f"url: {result.url}", markup=False, soft_wrap=True)
