"""The flags train, distill and build-sentiment share are checked as the command line is read,
before a teacher is exported or a model trained: a file where the work folder must go was a
NotADirectoryError traceback after the teacher's export (or after fine-tuning), and counts or
rates of 0 or less were tracebacks from random.sample, torch or tokenizers, NaN distances, or
silently ignored. `export`'s and `quickstart`'s --out, a bundle folder, is checked the same way."""

from __future__ import annotations

import pytest

from bertless.cli.main import main


@pytest.mark.parametrize(
    "command",
    [["distill", "TEXTS"], ["train", "TEXTS"], ["build-sentiment"], ["export"], ["quickstart"]],
)
@pytest.mark.parametrize("below", [False, True])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, command, below):
    texts = tmp_path / "texts.txt"
    texts.write_text("one text\nanother text\n")
    file = tmp_path / "taken"
    file.write_text("")
    words = [str(texts) if word == "TEXTS" else word for word in command]
    with pytest.raises(SystemExit) as stopped:
        main([*words, "--out", str(file / "run" if below else file)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert f"argument --out: {file} is a file, not a folder to write into" in error
    assert "Traceback" not in error


def test_an_out_variable_that_names_a_file_is_refused(tmp_path, capsys, monkeypatch):
    file = tmp_path / "taken"
    file.write_text("")
    monkeypatch.setenv("BERTLESS_WORK_DIR", str(file))
    assert main(["distill", str(file)]) == 2
    assert f"{file} is a file, not a folder to write into" in capsys.readouterr().err


COUNT = "is not a whole number of 1 or more"
RATE = "is not a number above 0"
BAD = [
    ("--epochs", "0", COUNT),
    ("--max-length", "-4", COUNT),
    ("--max-length", "0", COUNT),
]
LEARNING = [  # train and distill only: build-sentiment has neither flag
    ("--limit", "-3", COUNT),
    ("--limit", "0", COUNT),
    ("--limit", "many", COUNT),
    ("--learning-rate", "-1", RATE),
    ("--learning-rate", "0", RATE),
    ("--learning-rate", "nan", RATE),
]


@pytest.mark.parametrize(
    ("command", "flag", "value", "why"),
    [(["build-sentiment"], *bad) for bad in BAD]
    + [([name, "TEXTS"], *bad) for name in ("distill", "train") for bad in BAD + LEARNING],
)
def test_counts_and_rates_below_one_or_zero_are_refused(
    tmp_path, capsys, command, flag, value, why
):
    words = [str(tmp_path / "texts.txt") if word == "TEXTS" else word for word in command]
    with pytest.raises(SystemExit) as stopped:
        main([*words, "--out", str(tmp_path / "out"), f"{flag}={value}"])
    assert stopped.value.code == 2
    assert f"argument {flag}: {value!r} {why}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-1", "inf"])
def test_a_temperature_of_zero_or_less_is_refused(tmp_path, capsys, value):
    """0 gave NaN distances and a student written anyway; -1 taught the student the teacher's
    labels upside down."""
    with pytest.raises(SystemExit) as stopped:
        main(["distill", "texts.txt", "--out", str(tmp_path), f"--temperature={value}"])
    assert stopped.value.code == 2
    assert f"argument --temperature: {value!r} is not a number above 0" in capsys.readouterr().err
