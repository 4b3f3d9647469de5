"""The project's errors, each carrying the HTTP status and TEI error type it maps to.

Errors are raised where a problem is found and turned into a response in exactly one place
(`Service.handle`), so the library and every adapter agree on what a failure means.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class BertlessError(Exception):
    """Base of every error bertless raises on purpose."""

    status: int = 500
    error_type: str = "Backend"
    # Headers the error's response carries, such as Retry-After.
    headers: Mapping[str, str] = MappingProxyType({})


class BundleError(BertlessError):
    """A bundle that cannot be served: a missing file, a wrong checksum, a graph that disagrees."""

    error_type = "Unhealthy"
    status = 503


class InputError(BertlessError, ValueError):
    """Input that breaks the rules: empty, not text, or unfit for the bundle's task.

    A `ValueError` too, so callers of the library can catch what they already expect.
    """

    status = 422
    error_type = "Validation"


class InputTooLongError(InputError):
    """A text longer than the model accepts while truncation is off (TEI answers 413)."""

    status = 413


class TooManyInputsError(InputError):
    """More inputs than the configured maximum batch size (TEI answers 413)."""

    status = 413


class BackendError(BertlessError):
    """The model produced something that cannot be returned, such as NaN."""

    status = 500
    error_type = "Backend"
