"""Every flag can be set by an environment variable named in its `--help` ("(env: BERTLESS_PORT)"),
as functions-framework does (`--target` / `FUNCTION_TARGET`), so one command works in a shell, a
CI job and a container alike.

One variable means one thing in every command that reads it: `BERTLESS_PORT` is the local port
for `serve` and `quickstart` alike, while `--out`, a bundle folder for `export` and an artifact
folder for `package`, reads `BERTLESS_EXPORT_DIR` in one and `BERTLESS_ARTIFACT_DIR` in the other.

A variable is only read as text while the parser is built; it is converted when the arguments are
parsed, with the flag's own type and choices, so a bad value never breaks `--help` or another
command. A value that does not fit is a `ConfigError` naming the variable and the value, which the
CLI prints as one sentence. What is typed on the command line stays argparse's to check.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from typing import Any

from bertless.core.config import ConfigError, parse_bool

_KINDS = {int: "a whole number", float: "a number"}


class EnvValue(str):
    """A flag's default read from the environment: text that remembers its variable, so the
    flag's converter can tell it from text typed on the command line and name the variable."""

    variable: str

    def __new__(cls, text: str, variable: str) -> EnvValue:
        value = super().__new__(cls, text)
        value.variable = variable
        return value


def add(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *names: str,
    env: str,
    required: bool = False,
    separator: str | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """`parser.add_argument(*names, **kwargs)` whose default comes from the variable `env` when it
    is set (and not blank).

    `required` means "on the command line or in the variable": a positional becomes optional
    when the variable is set. A flag of several values reads the variable split at `separator`
    (default: commas or spaces).
    """
    raw = os.environ.get(env, "").strip()
    positional = not names[0].startswith("-")
    multiple = kwargs.get("nargs") in ("+", "*") or kwargs.get("action") == "append"
    if positional:
        if raw and kwargs.get("nargs") in (None, "+"):
            kwargs["nargs"] = "*" if multiple else "?"
        elif not required and kwargs.get("nargs") is None:
            kwargs["nargs"] = "?"
    elif required and not raw:
        kwargs["required"] = True
    action = parser.add_argument(*names, **kwargs)
    action.help = f"{action.help} (env: {env})" if action.help else f"(env: {env})"
    if not raw:
        return action
    if multiple and action.type is None:
        action.default = _split(raw, separator)  # text only: nothing to convert, nothing to fail
    else:
        action.default = EnvValue(raw, env)
        action.type = _converter(action, separator)
    return action


def _split(text: str, separator: str | None) -> list[str]:
    pieces = text.split(separator) if separator else re.split(r"[,\s]+", text)
    return [piece.strip() for piece in pieces if piece.strip()]


def _converter(action: argparse.Action, separator: str | None) -> Callable[[str], Any]:
    """The flag's own type for text from the command line; for a default from the environment,
    the same type and choices with an error that names the variable."""
    convert: Callable[[str], Any] = action.type or str
    flag = action.option_strings[0] if action.option_strings else action.dest.upper()

    def one(text: EnvValue, piece: str) -> Any:
        """`piece` (all of `text`, or one of its values) converted; errors quote all of it."""
        variable = text.variable
        try:
            value = convert(piece)
        except argparse.ArgumentTypeError as error:
            raise ConfigError(f"{variable}={text!r} does not fit {flag}: {error}") from None
        except (TypeError, ValueError):
            kind = _KINDS.get(convert, f"a value {flag} takes")
            raise ConfigError(f"{variable}={text!r} is not {kind} (it sets {flag}).") from None
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise ConfigError(f"{variable}={text!r} is not one of {choices} (it sets {flag}).")
        return value

    def from_text(text: str) -> Any:
        if not isinstance(text, EnvValue):
            return convert(text)
        if action.nargs == 0:  # a switch: store_true, store_false or --x/--no-x
            value = parse_bool(text, text.variable)
            return not value if action.const is False else value
        if action.nargs in ("+", "*"):
            return [one(text, piece) for piece in _split(text, separator)]
        return one(text, text)

    return from_text
