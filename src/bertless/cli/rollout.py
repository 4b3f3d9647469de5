"""`bertless promote CLOUD --name N` and `bertless rollback CLOUD --name N`: move traffic only.

After `bertless deploy CLOUD ... --canary PERCENT`, promote sends every request to the new
version and rollback sends every request back to the version that served before. Neither
uploads or builds anything. Both print their plan, honour `--dry-run`, and take the deploy
command's connection flags and variables (`--region` / `BERTLESS_REGION`, ...), each meaning
the same as there.
"""

from __future__ import annotations

import argparse

from bertless.cli.env import add
from bertless.deploy.plan import PreflightError, Target
from bertless.deploy.rollout import MOVES, Rollout, check_supported

CLOUDS = ("aws", "gcp", "azure")
HELP = {
    "promote": "Send all traffic to the canary that `bertless deploy --canary` started.",
    "rollback": "Send all traffic back to the version that served before the last deploy.",
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `promote` and `rollback` on the CLI's subcommands."""
    for how in MOVES:
        p = sub.add_parser(
            how,
            help=HELP[how],
            description=HELP[how] + " Nothing is uploaded or built: only traffic moves. Every "
            "flag has an environment variable, named in its help.",
        )
        p.add_argument("cloud", choices=CLOUDS, help="azure refuses, naming what to use instead")
        add(p, "--name", env="BERTLESS_NAME", help="function (Azure: function app) name")
        add(p, "--region", env="BERTLESS_REGION", help="default: the SDK's configured region")
        add(
            p,
            "--endpoint-url",
            env="BERTLESS_ENDPOINT_URL",
            help="API base for a local stand-in (AWS: every client; GCP: both APIs)",
        )
        add(
            p,
            "--dry-run",
            env="BERTLESS_DRY_RUN",
            action="store_true",
            help="read where traffic goes now (read-only calls, so credentials are needed), print "
            "the move, and change nothing",
        )
        add(p, "--project", env="BERTLESS_PROJECT", help="gcp: default google.auth's project")
        p.set_defaults(run=run, how=how)


def run(args: argparse.Namespace) -> int:
    """Read where traffic goes, show the move, and (unless --dry-run) make it."""
    from rich.console import Console

    from bertless.cli.deploy import _print_plan
    from bertless.deploy.plan import Apply, Show
    from bertless.deploy.rollout import move

    if not args.name:
        raise PreflightError("no function name: pass --name or set BERTLESS_NAME")
    check_supported(args.cloud)
    console = Console()
    target = Target(name=args.name, region=args.region, endpoint_url=args.endpoint_url)
    executor = Show() if args.dry_run else Apply()
    with console.status(f"{args.how} {target.name} on {args.cloud}") as status:
        plan = move(
            _rollout(args),
            args.how,
            target,
            executor,
            say=status.update,
            shown=lambda plan: _print_plan(console, plan, dry_run=executor.dry_run),
        )
    if not executor.dry_run:
        done = "moved" if plan.changed else "unchanged"
        console.print(f"{args.how}: {done}", markup=False)
    return 0


def _rollout(args: argparse.Namespace) -> Rollout:
    """The cloud's traffic mover, imported only for the cloud asked for."""
    if args.cloud == "aws":
        from bertless.deploy.aws_rollout import AwsRollout

        return AwsRollout()
    from bertless.deploy.gcp_rollout import GcpRollout

    return GcpRollout(project=args.project)
