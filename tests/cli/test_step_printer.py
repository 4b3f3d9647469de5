"""The stages train, distill and build-sentiment report are printed as written: rich read
"[distill]" in "pip install 'model2vec[distill]'" as a style tag and dropped it, so the static
student's hint to install its baseline named a package without the extra it needs."""

from __future__ import annotations

import io

from rich.console import Console

from bertless.cli.training import step_printer


def test_a_stage_with_square_brackets_is_printed_whole():
    out = io.StringIO()
    step = step_printer(Console(file=out, width=200, color_system=None))
    step("no model2vec baseline: pip install 'model2vec[distill]'")
    step("reading [bold]notes[/bold] from run[1]")
    assert out.getvalue().splitlines() == [
        "no model2vec baseline: pip install 'model2vec[distill]'…",
        "reading [bold]notes[/bold] from run[1]…",
    ]
