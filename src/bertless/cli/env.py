"""Every CLI flag's default is the environment variable of the same name (`--port` /
`BERTLESS_PORT`), as functions-framework does, so one command works in a shell, a CI job and a
container alike."""

from __future__ import annotations

import os


def env(flag: str, default: object = None) -> object:
    """The default of `--flag`: `BERTLESS_FLAG` when set, else `default`."""
    return os.environ.get("BERTLESS_" + flag.upper().replace("-", "_"), default)


def env_flag(flag: str) -> bool:
    """The default of a switch `--flag`: true when `BERTLESS_FLAG` is 1, true, yes or on."""
    return str(env(flag, "")).strip().lower() in ("1", "true", "yes", "on")
