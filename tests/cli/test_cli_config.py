"""The command line's configuration: one environment variable per meaning, read when a command
runs, a bad value reported as one sentence; one boolean parser; a missing extra named."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bertless.cli.main import main, parser
from bertless.core.config import FALSE_WORDS, TRUE_WORDS, Config, ConfigError, env_bool, parse_bool
from bertless.core.errors import BundleError

BERTLESS = Path(sys.executable).with_name("bertless")
DEPLOY = ["deploy", "aws", "a.zip"]


@pytest.fixture(autouse=True)
def no_bertless_variables(monkeypatch):
    """Start every test from an environment without the CLI's variables."""
    for name in os.environ:
        if name.startswith("BERTLESS_"):
            monkeypatch.delenv(name)


def run(argv: list[str], **variables: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTLESS_")} | variables
    return subprocess.run([str(BERTLESS), *argv], env=env, capture_output=True, text=True)


def test_a_bad_variable_of_another_command_does_not_break_help():
    done = run(["serve", "--help"], BERTLESS_TIMEOUT="abc")
    assert done.returncode == 0 and "usage: bertless serve" in done.stdout
    assert "(env: BERTLESS_PORT)" in done.stdout  # each flag names its variable


@pytest.mark.parametrize(
    ("variable", "value", "argv", "says"),
    [
        ("BERTLESS_TIMEOUT", "abc", ["deploy", "aws", "a.zip"], "is not a whole number"),
        ("BERTLESS_PORT", "80x", ["serve"], "is not a whole number"),
        ("BERTLESS_DURATION_MS", "fast", ["cost"], "is not a number"),
        ("BERTLESS_PUBLIC", "maybe", ["deploy", "aws", "a.zip"], "is not a yes or no"),
        ("BERTLESS_TRUNCATE", "perhaps", ["batch", "b", "in.csv", "out.csv"], "is not a yes or no"),
        ("BERTLESS_ARCH", "sparc", ["package", "aws", "bundle"], "is not one of x86_64, arm64"),
        ("BERTLESS_BENCH_MEMORY", "512,lots", ["bench", "http://x"], "--memory takes sizes"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_the_variable(variable, value, argv, says):
    done = run(argv, **{variable: value})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"bertless: {variable}={value!r} ") and says in line


def parse(argv: list[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "variable", "value", "typed"),
    [
        (["serve"], "BERTLESS_PORT", "9000", ["--port", "9000"]),
        (["cost"], "BERTLESS_DURATION_MS", "12.5", ["--duration-ms", "12.5"]),
        (DEPLOY, "BERTLESS_PUBLIC", "Yes", ["--public"]),
        (DEPLOY, "BERTLESS_NO_SMOKE", "on", ["--no-smoke"]),
        (DEPLOY, "BERTLESS_ENV", "A=1,B=x y", ["--env", "A=1", "--env", "B=x y"]),
        (["batch", "b", "i.csv", "o.csv"], "BERTLESS_TRUNCATE", "0", ["--no-truncate"]),
        (["build-sentiment"], "BERTLESS_SENTIMENT_STUDENT_LAYERS", "3, 2", ["--student-layers", "3", "2"]),  # noqa: E501
        (["bench"], "BERTLESS_TARGET", "http://a http://b", ["http://a", "http://b"]),
        (["package", "aws"], "BERTLESS_BUNDLE", "some/bundle", ["some/bundle"]),
    ],
)  # fmt: skip
def test_a_variable_means_what_the_same_text_on_the_command_line_means(
    argv, variable, value, typed, monkeypatch
):
    expected = vars(parse(argv + typed))
    monkeypatch.setenv(variable, value)
    assert vars(parse(argv)) == expected


def test_the_command_line_wins_over_the_variable(monkeypatch):
    monkeypatch.setenv("BERTLESS_PORT", "not even a number")
    assert parse(["serve", "--port", "9001"]).port == 9001


def test_a_blank_variable_is_unset(monkeypatch):
    monkeypatch.setenv("BERTLESS_TIMEOUT", " ")
    assert parse(["deploy", "aws", "a.zip"]).timeout == 30


def flags() -> list[tuple[str, argparse.Action, str | None]]:
    """(command, action, its variable) for every argument of every real subcommand."""
    (commands,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    found = []
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                named = re.search(r"\(env: (\w+)\)$", action.help or "")
                found.append((command, action, named and named.group(1)))
    return found


def test_every_option_names_its_variable():
    missing = [(c, a.option_strings) for c, a, v in flags() if a.option_strings and v is None]
    assert missing == []
    assert len({v for _, _, v in flags() if v}) > 60


def test_one_variable_has_one_meaning_in_every_command():
    meanings: dict[str, set[tuple]] = {}
    for _, action, variable in flags():
        if variable:
            several = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
            kind = (action.dest, action.type, several, action.const)
            meanings.setdefault(variable, set()).add(kind)
    assert {v: k for v, k in meanings.items() if len(k) > 1} == {}
    # the collisions the issue found: --out, --memory, --batch-size, --json, --max-length
    by_flag = {(c, a.option_strings[0]): v for c, a, v in flags() if a.option_strings}
    assert by_flag["export", "--out"] == by_flag["quickstart", "--out"] == "BERTLESS_EXPORT_DIR"
    assert by_flag["package", "--out"] == by_flag["deploy", "--out"] == "BERTLESS_ARTIFACT_DIR"
    assert by_flag["train", "--out"] == by_flag["build-sentiment", "--out"] == "BERTLESS_WORK_DIR"
    assert len({by_flag[c, "--memory"] for c in ("package", "bench", "cost")}) == 3
    assert len({by_flag[c, "--batch-size"] for c in ("batch", "bench", "train")}) == 3
    assert by_flag["bench", "--json"] != by_flag["cost", "--json"]
    assert by_flag["export", "--max-length"] != by_flag["train", "--max-length"]


@pytest.mark.parametrize("word", [*TRUE_WORDS, "TRUE", " Yes ", "On"])
def test_the_boolean_parser_accepts_the_usual_yes(word):
    assert parse_bool(word, "BERTLESS_X") is True


@pytest.mark.parametrize("word", [*FALSE_WORDS, "FALSE", " no "])
def test_the_boolean_parser_accepts_the_usual_no(word):
    assert parse_bool(word, "BERTLESS_X") is False


@pytest.mark.parametrize("word", ["maybe", "2", "y", "", "truee"])
def test_the_boolean_parser_refuses_other_words(word):
    with pytest.raises(ConfigError, match=rf"^BERTLESS_X={word!r} is not a yes or no"):
        parse_bool(word, "BERTLESS_X")


def test_the_server_reads_its_switches_with_the_same_parser(monkeypatch):
    assert env_bool("BERTLESS_AUTO_TRUNCATE") is None
    monkeypatch.setenv("BERTLESS_AUTO_TRUNCATE", "off")
    assert Config.from_env(None).auto_truncate is False
    monkeypatch.setenv("BERTLESS_AUTO_TRUNCATE", "maybe")
    with pytest.raises(BundleError, match="BERTLESS_AUTO_TRUNCATE='maybe'"):
        Config.from_env(None)


def without(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`bertless ARGV` in a fresh interpreter where `module` cannot be imported."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from bertless.cli.main import main\n"
        f"sys.exit(main({argv!r}))"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_missing_optional_dependency_names_the_extra_to_install(tmp_path):
    done = without("rich", ["package", "aws", str(tmp_path)])
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "bertless package needs the 'deploy' extra (rich is not installed): "
        "pip install 'bertless[deploy]'\n"
    )
    done = without("rich", ["cost", "--duration-ms", "20"])
    assert done.stderr.endswith("pip install 'bertless[cli]'\n")
    assert without("rich", ["--help"]).returncode == 0  # the parsers import no extra


def test_a_missing_module_that_no_extra_brings_is_a_bug_and_keeps_its_traceback(monkeypatch):
    def broken(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'bertless_typo'", name="bertless_typo")

    monkeypatch.setattr("bertless.cli.serve.run", broken)
    with pytest.raises(ModuleNotFoundError, match="bertless_typo"):
        main(["serve"])
