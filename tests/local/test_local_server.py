"""The child-process server that the quick start, the bench sweep and these tests start."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import requests

from bertless.local.server import LocalServerError, local_server


def test_a_server_that_cannot_start_is_reported_with_its_own_words(minilm_bundle):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(LocalServerError, match=r"exited before answering: .*in use"),
            local_server(minilm_bundle, port=port, timeout=60),
        ):
            pass


def test_the_server_is_gone_when_the_block_ends(minilm_bundle):
    with local_server(minilm_bundle) as url:
        assert requests.get(url + "/health").json()["status"] == "ok"
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=5)


def test_a_path_that_is_no_bundle_is_refused_before_serving(tmp_path):
    # The model folder a user may confuse with a bundle: files, but no bundle.json.
    (tmp_path / "config.json").write_text("{}")
    for path in (tmp_path / "typo", tmp_path):
        done = subprocess.run(
            [sys.executable, "-m", "bertless", "serve", str(path), "--port", "1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"bertless serve: {path / 'bundle.json'} is missing: point at a directory made by "
            "`bertless export`."
        )
