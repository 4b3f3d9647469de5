"""Tables in a pipe or a CI log: the CLI tells rich how wide to draw them, unless the user did."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bertless.cli.tables import LOG_COLUMNS, widen_for_logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_log_columns_and_a_terminal_or_a_users_columns_stay():
    piped: dict[str, str] = {}
    widen_for_logs(piped, io.StringIO())
    assert piped == {"COLUMNS": str(LOG_COLUMNS)}

    terminal: dict[str, str] = {}
    widen_for_logs(terminal, Terminal())
    assert terminal == {}

    chosen = {"COLUMNS": "100"}
    widen_for_logs(chosen, io.StringIO())
    assert chosen == {"COLUMNS": "100"}


def test_the_cost_table_piped_keeps_every_figure_whole():
    """`bertless cost` drawn 80 wide cuts its figures ("$3.07 (t4g.n…"); piped it must not."""
    bertless = Path(sys.executable).parent / "bertless"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run(
        [bertless, "cost", "--duration-ms", "37"], capture_output=True, text=True, env=env
    )
    narrow = subprocess.run(
        [bertless, "cost", "--duration-ms", "37"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "80"},
    )
    assert piped.returncode == 0 and "…" not in piped.stdout
    assert "…" in narrow.stdout  # the check can fail: at 80 columns rich cuts
