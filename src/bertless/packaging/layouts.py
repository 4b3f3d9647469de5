"""Where each cloud wants the files of a function, and the small files bertless writes for it.

Each layout holds the entry file, `bertless.core`, the one adapter it needs and the bundle; the
runtime wheels go where the platform imports them from (Lambda: the zip's root; Azure: the
run-from-package folder `.python_packages/lib/site-packages`), or, on Google, are left to the
platform, which installs `requirements.txt` at deploy.

The package root `bertless/__init__.py` is written, not copied: the installed one is for library
users and imports what they want, and anything imported there would load in every function.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bertless

BUNDLE_DIR = "bundle"
_ENTRY = '''"""{what} entry point, written by `bertless package {cloud}`.

It serves the bundle in the folder beside this file.
"""

import os

os.environ.setdefault(
    "BERTLESS_BUNDLE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "{bundle}")
)

from bertless.adapters.{cloud} import {name}  # noqa: E402

__all__ = ["{name}"]
'''
PACKAGE_MARKER = b'''"""bertless inside a function artifact: `core` and one adapter, nothing else.

Written by `bertless package`; it imports nothing, so a cold start loads only what serves.
"""
'''


@dataclass(frozen=True)
class Layout:
    cloud: str
    entry_file: str
    entry_point: str  # what the platform is told to call
    extra: str  # bertless's extra that the adapter needs
    site_packages: str | None  # where vendored wheels go in the zip; None: the platform installs

    def generated(self, pins: Sequence[str]) -> dict[str, bytes]:
        """The files bertless writes into the artifact, by path in the zip."""
        name = self.entry_point.rpartition(".")[2]
        entry = _ENTRY.format(
            what=_WHAT[self.cloud], cloud=self.cloud, bundle=BUNDLE_DIR, name=name
        )
        files = {self.entry_file: entry.encode(), "bertless/__init__.py": PACKAGE_MARKER}
        if self.cloud in ("gcp", "azure"):
            files["requirements.txt"] = ("".join(f"{pin}\n" for pin in sorted(pins))).encode()
        if self.cloud == "azure":
            files["host.json"] = (json.dumps(HOST_JSON, indent=2, sort_keys=True) + "\n").encode()
        return files

    def sources(self) -> dict[str, Path]:
        """bertless's own modules the function imports: the core and this cloud's adapter."""
        root = Path(bertless.__file__).parent
        chosen = [root / "adapters" / "__init__.py"]
        chosen += [root / "adapters" / f"{self.cloud}.py", *sorted((root / "core").glob("*.py"))]
        return {f"bertless/{p.relative_to(root).as_posix()}": p for p in chosen}


_WHAT = {"aws": "AWS Lambda", "gcp": "Google Cloud Functions", "azure": "Azure Functions"}

# routePrefix "" keeps the contract's paths (/embed, not /api/embed); the bundle range is the one
# Microsoft's templates use for the v4 host.
HOST_JSON = {
    "version": "2.0",
    "extensionBundle": {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    },
    "extensions": {"http": {"routePrefix": ""}},
}

LAYOUTS: dict[str, Layout] = {
    "aws": Layout("aws", "lambda_function.py", "lambda_function.handler", "aws", ""),
    "gcp": Layout("gcp", "main.py", "handle", "gcp", None),
    "azure": Layout(
        "azure",
        "function_app.py",
        "function_app.app",
        "azure",
        ".python_packages/lib/site-packages",
    ),
}
