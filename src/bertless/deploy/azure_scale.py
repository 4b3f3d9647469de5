"""Flex Consumption's warm capacity and size: always-ready instances, instance memory, concurrency.

They live in the site's `properties.functionAppConfig.scaleAndConcurrency` (Microsoft.Web/sites
2023-12-01, FunctionsScaleAndConcurrency: `alwaysReady` [{name, instanceCount}], `instanceMemoryMB`,
`triggers.http.perInstanceConcurrency`;
https://learn.microsoft.com/rest/api/appservice/web-apps/update and
https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to). The planner compares
what the site shows with what was asked and, when they differ, PATCHes the whole functionAppConfig
with only those fields changed (the deployment storage and runtime sent back as read). A flag not
given leaves its field as it is. Always-ready instances go to the `http` group: bertless deploys
HTTP functions only. `bertless cost` prices them (limits.AZURE's WarmPricing).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from bertless.deploy.azure_app import App
from bertless.deploy.plan import DeployError, Plan, PreflightError
from bertless.platforms import limits

HTTP_GROUP = "http"


@dataclass(frozen=True)
class FlexScale:
    """What was asked; None leaves the app's own value."""

    always_ready: int | None = None
    instance_memory_mb: int | None = None
    concurrency: int | None = None

    @property
    def asked(self) -> bool:
        return any(
            v is not None for v in (self.always_ready, self.instance_memory_mb, self.concurrency)
        )

    def check(self) -> None:
        """Refuse, before any request, a value Flex Consumption does not take."""
        sizes = [mb for mb, _ in limits.AZURE.vcpus.points] if limits.AZURE.vcpus else []
        if self.instance_memory_mb is not None and self.instance_memory_mb not in sizes:
            offered = ", ".join(f"{mb:,}" for mb in sizes)
            raise PreflightError(
                f"Flex Consumption instances have {offered} MB; got --instance-memory "
                f"{self.instance_memory_mb}"
            )
        if self.always_ready is not None and self.always_ready < 0:
            raise PreflightError(
                f"--always-ready takes 0 or more instances; got {self.always_ready}"
            )
        warm = limits.AZURE.pricing.warm if limits.AZURE.pricing else None
        most = warm.max_concurrency.value if warm and warm.max_concurrency else None
        if self.concurrency is not None and not 1 <= self.concurrency <= (most or self.concurrency):
            raise PreflightError(
                f"--concurrency takes 1 to {most} requests per instance; got {self.concurrency}"
            )

    def plan(self, plan: Plan, app: App) -> None:
        """One step when the app's scale settings differ from those asked, else unchanged."""
        if not self.asked:
            return
        if not app.flex:
            raise DeployError(
                f"{app.name} is a Linux Consumption app: --always-ready, --instance-memory and "
                "--concurrency are Flex Consumption settings"
            )
        config = app.site["properties"]["functionAppConfig"]
        have = config.get("scaleAndConcurrency") or {}
        wanted, changes = self._merged(have)
        what = "scale and concurrency"
        if not changes:
            plan.unchanged(what, _describe(have))
            return
        new = {**copy.deepcopy(config), "scaleAndConcurrency": wanted}
        plan.add("update", what, ", ".join(changes), run=lambda: _patch(app, new))

    def _merged(self, have: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The scaleAndConcurrency to send, and each change as `field old -> new`."""
        wanted, changes = copy.deepcopy(have), []
        if (
            self.instance_memory_mb is not None
            and have.get("instanceMemoryMB") != self.instance_memory_mb
        ):
            changes.append(
                f"instance memory {have.get('instanceMemoryMB')} -> {self.instance_memory_mb} MB"
            )
            wanted["instanceMemoryMB"] = self.instance_memory_mb
        if self.always_ready is not None:
            groups = [g for g in have.get("alwaysReady") or [] if g.get("name") != HTTP_GROUP]
            before = _always_ready(have)
            if before != self.always_ready:
                changes.append(f"always ready {before} -> {self.always_ready}")
                if self.always_ready:
                    groups.append({"name": HTTP_GROUP, "instanceCount": self.always_ready})
                wanted["alwaysReady"] = groups
        if self.concurrency is not None:
            before = ((have.get("triggers") or {}).get("http") or {}).get("perInstanceConcurrency")
            if before != self.concurrency:
                changes.append(f"HTTP concurrency {before} -> {self.concurrency}")
                triggers = wanted.setdefault("triggers", {}) or {}
                triggers["http"] = {
                    **(triggers.get("http") or {}),
                    "perInstanceConcurrency": self.concurrency,
                }
                wanted["triggers"] = triggers
        return wanted, changes


def _always_ready(scale: dict[str, Any]) -> int:
    groups = scale.get("alwaysReady") or []
    return next((g.get("instanceCount", 0) for g in groups if g.get("name") == HTTP_GROUP), 0)


def _describe(scale: dict[str, Any]) -> str:
    http = ((scale.get("triggers") or {}).get("http") or {}).get("perInstanceConcurrency")
    return (
        f"{scale.get('instanceMemoryMB')} MB, always ready {_always_ready(scale)}, "
        f"HTTP concurrency {http if http is not None else 'default'}"
    )


def _patch(app: App, config: dict[str, Any]) -> None:
    """PATCH the site with the whole functionAppConfig; keep the site document in step."""
    app.arm.patch(app.resource(), {"properties": {"functionAppConfig": config}})
    app.site["properties"]["functionAppConfig"] = config
