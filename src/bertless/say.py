"""`Say`: the one type of a status callback, shared by every build-time part of bertless.

Packaging, deploy, bench and export tell a person what they are doing now (a spinner's text in the
CLI, nothing in a library call). They take a `Say` and never depend on what it does with the line.
"""

from __future__ import annotations

from collections.abc import Callable

Say = Callable[[str], None]
"""Told one line of what is happening now; whatever it does, the work does not depend on it."""


def silent(_: str) -> None:
    """A `Say` for callers who want no progress shown."""
