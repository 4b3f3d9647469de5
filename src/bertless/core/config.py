"""Serving configuration, read once from the environment and the manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bertless.core.bundle import Manifest
from bertless.core.errors import BundleError

# TEI's default payload limit (--payload-limit 2000000).
DEFAULT_MAX_BODY_BYTES = 2_000_000
# TEI's default --max-concurrent-requests.
DEFAULT_MAX_CONCURRENT_REQUESTS = 512


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class ConfigError(BundleError):
    """A setting in the environment that cannot be used.

    A `BundleError` because a service cannot start with it; never a `ValueError`, so argparse
    (which turns a `ValueError` into its own message about a flag) lets it reach the CLI, which
    prints it as the one sentence it is.
    """


def parse_bool(text: str, name: str) -> bool:
    """The yes or no that `name` (a variable's name, for the message) says; any other word is an
    error, because reading "maybe" or a typo as "no" silently turns a setting off."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(
        f"{name}={text!r} is not a yes or no: use one of {', '.join(TRUE_WORDS)} "
        f"or {', '.join(FALSE_WORDS)}."
    )


def env_bool(name: str) -> bool | None:
    """The boolean environment variable `name`, or None when it is unset or empty."""
    value = os.environ.get(name, "")
    return parse_bool(value, name) if value.strip() else None


def _positive(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BundleError(f"{name}={value!r} must be a positive whole number.")
    return int(value)


@dataclass(frozen=True)
class Config:
    max_batch_size: int
    max_body_bytes: int
    auto_truncate: bool
    api_key: str | None
    cors_origins: tuple[str, ...]
    # Requests the model may hold at once, running or waiting (TEI's --max-concurrent-requests);
    # one more gets a 503.
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    # Whether concurrent requests share model runs (see core.batcher).
    batching: bool = True
    # GET /metrics (Prometheus); `bertless serve` turns it on, functions only when asked.
    metrics: bool = False

    @classmethod
    def from_env(cls, manifest: Manifest | None) -> Config:
        """BERTLESS_MAX_BATCH_SIZE, BERTLESS_MAX_BODY_BYTES, BERTLESS_AUTO_TRUNCATE override the
        manifest; BERTLESS_API_KEY turns on auth; BERTLESS_CORS_ORIGINS (comma-separated) CORS;
        BERTLESS_MAX_CONCURRENT_REQUESTS bounds the requests running or waiting,
        BERTLESS_BATCHING=0 stops merging; BERTLESS_METRICS=1 serves GET /metrics."""
        auto = env_bool("BERTLESS_AUTO_TRUNCATE")
        batching = env_bool("BERTLESS_BATCHING")
        origins = os.environ.get("BERTLESS_CORS_ORIGINS", "")
        return cls(
            max_batch_size=_positive("BERTLESS_MAX_BATCH_SIZE")
            or (manifest.max_batch_size if manifest else 32),
            max_body_bytes=_positive("BERTLESS_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES,
            auto_truncate=auto if auto is not None else bool(manifest and manifest.auto_truncate),
            api_key=os.environ.get("BERTLESS_API_KEY") or None,
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            max_concurrent_requests=_positive("BERTLESS_MAX_CONCURRENT_REQUESTS")
            or DEFAULT_MAX_CONCURRENT_REQUESTS,
            batching=True if batching is None else batching,
            metrics=bool(env_bool("BERTLESS_METRICS")),
        )


def bundle_location() -> Path:
    """`BERTLESS_BUNDLE`, else `bundle/` in the working directory.

    Every artifact puts the bundle beside its entry file, and Lambda (/var/task), Cloud Functions
    (/workspace) and Azure Functions (/home/site/wwwroot) all start in the code's root, so the
    default finds it there; the artifacts' entry files also set the variable from their own path.
    """
    return Path(os.environ.get("BERTLESS_BUNDLE") or Path.cwd() / "bundle")
