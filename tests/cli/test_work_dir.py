"""--out of train, distill and build-sentiment: a file where the work folder must go is refused as
the command line is read, before a teacher is exported or a model trained (it was a
NotADirectoryError traceback after the teacher's export, or after fine-tuning)."""

from __future__ import annotations

import pytest

from bertless.cli.main import main


@pytest.mark.parametrize("command", [["distill", "TEXTS"], ["train", "TEXTS"], ["build-sentiment"]])
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
