"""Infinity (`infinity-emb`), the peer of benchmarks/concurrency.py, served from local files.

Infinity cannot share this project's environment (0.0.78 pins numpy<2 and transformers<5), so it
runs from an interpreter of its own virtual environment, outside the repository. Its ONNX engine
(`--engine optimum`) wants an ONNX file holding `last_hidden_state` next to the checkpoint; this
module exports one from the built-in MiniLM's folder with that environment's optimum-cli (no hub:
HF_HUB_OFFLINE=1) and adds the checkpoint's pooling files. That engine's `--pooling-method auto`
means CLS pooling; MiniLM is mean-pooled, hence `--pooling-method mean` (without it the answers
were 0.5-0.9 cosine from bertless's; with it they are the same vectors, within 1.3e-7).
Infinity 0.0.78 hands optimum 2.1 the ONNX file's whole path where a bare name is compared, and
fails to load a model given by absolute path; started inside the folder with `--model-id .` the
path is the bare name, which is why the server's cwd is the folder.

For an int8 comparison, `quantized=True` adds the same export quantized by that environment's
`optimum-cli onnxruntime quantize --avx512_vnni` (dynamic int8, the recipe of sentence-transformers'
own qint8 exports) as `model_quantized.onnx`: on a CPU, Infinity's ONNX engine prefers a file whose
name holds "quantize" (its `--onnx-do-not-prefer-quantized` turns that off), and it logs which it
took.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bertless.local.server import ServerURL, free_port, stop

NAME = "minilm"
OFFLINE = {"HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
POOLING_FILES = (
    "1_Pooling",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def onnx_folder(python: Path, checkpoint: Path, folder: Path, quantized: bool = False) -> Path:
    """Export CHECKPOINT's encoder to FOLDER/model.onnx with Infinity's environment, plus the
    checkpoint's pooling files, and with QUANTIZED its int8 version beside it."""
    optimum = [str(python.parent / "optimum-cli")]
    env = {**os.environ, **OFFLINE, "HF_HOME": str(folder.parent / "hf")}
    subprocess.run(
        [
            *optimum,
            *("export", "onnx", "--model", str(checkpoint)),
            *("--task", "feature-extraction", "--library-name", "transformers", str(folder)),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    if quantized:
        out = folder.parent / "quantized"
        subprocess.run(
            [
                *optimum,
                *("onnxruntime", "quantize", "--avx512_vnni"),
                *("--onnx_model", str(folder), "-o", str(out)),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        shutil.move(out / "model_quantized.onnx", folder / "model_quantized.onnx")
    for name in POOLING_FILES:
        source = checkpoint / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            shutil.copy(source, folder / name)
    return folder


@contextmanager
def infinity_server(
    python: Path, checkpoint: Path, quantized: bool = False, timeout: float = 300
) -> Iterator[ServerURL]:
    """Infinity's server (ONNX engine, CPU) on a free 127.0.0.1 port until the block ends."""
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile() as log:
        folder = onnx_folder(python, checkpoint, Path(scratch) / "model", quantized)
        port = free_port()
        command = [
            str(python.parent / "infinity_emb"),
            *("v2", "--model-id", ".", "--served-model-name", NAME, "--engine", "optimum"),
            *("--pooling-method", "mean", "--device", "cpu"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ]
        process = subprocess.Popen(
            command,
            cwd=folder,
            env={**os.environ, **OFFLINE, "HF_HOME": str(Path(scratch) / "hf")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = ServerURL(f"http://127.0.0.1:{port}")
        url.pid = process.pid
        try:
            _wait_until_ready(port, process, log, timeout)
            yield url
        finally:
            stop(process)


def _wait_until_ready(port: int, process: subprocess.Popen, log, timeout: float) -> None:
    """Poll GET /models until Infinity answers; its log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/models")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(1)
    log.seek(0)
    tail = log.read().decode(errors="replace")[-3000:]
    raise SystemExit(f"Infinity did not start on port {port}:\n{tail}")
