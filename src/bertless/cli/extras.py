"""Which extra to install when a command misses an optional dependency.

The extras are read from the installed package's own metadata (pyproject's
`[project.optional-dependencies]`), so this table cannot drift from what `pip install` brings.
"""

from __future__ import annotations

import re
from importlib import metadata

# The extra that makes each command whole: named first when it brings the missing module, since
# installing a smaller extra that holds only the module would just fail on the next import.
COMMAND_EXTRAS = {
    "export": "export",
    "serve": "gcp",
    "package": "deploy",
    "deploy": "deploy",
    "bench": "bench",
    "cost": "cli",
    "batch": "batch",
    "train": "train",
    "distill": "train",
    "build-sentiment": "train",
    "quickstart": "all",  # it exports, packages, serves, measures and trains
}
# Modules whose distribution is not named after them.
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*).*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def extras() -> dict[str, set[str]]:
    """Each extra's distributions (normalized names), leaving out `dev`."""
    try:
        requirements = metadata.requires("bertless") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return {}
    found: dict[str, set[str]] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match and match.group(2) != "dev":
            found.setdefault(match.group(2), set()).add(_name(match.group(1)))
    return found


def _holding(module: str) -> dict[str, set[str]]:
    """The extras that bring `module` (`azure` matches every `azure-*` distribution)."""
    wanted = _name(DISTRIBUTIONS.get(module, module))
    return {
        extra: names
        for extra, names in extras().items()
        if any(name == wanted or name.startswith(wanted + "-") for name in names)
    }


def missing_extra(command: str, module: str) -> str | None:
    """The sentence telling what to install when `bertless COMMAND` cannot import `module`, or
    None when no extra brings it (then the missing module is a bug, not a choice of install)."""
    parts = module.split(".")
    for size in range(len(parts), 0, -1):  # `rich.console`, then `rich`
        holding = _holding(".".join(parts[:size]))
        if holding:
            module = ".".join(parts[:size])
            break
    else:
        return None
    extra = COMMAND_EXTRAS.get(command)
    if extra not in holding:  # else the smallest extra that brings it, never `all`
        smallest = sorted((len(names), name) for name, names in holding.items() if name != "all")
        if not smallest:
            return None
        extra = smallest[0][1]
    return (
        f"bertless {command} needs the '{extra}' extra ({module} is not installed): "
        f"pip install 'bertless[{extra}]'"
    )
