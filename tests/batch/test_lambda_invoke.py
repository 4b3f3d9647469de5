"""`--aws-function`: the endpoint engine invoking a function through the Lambda API (boto3), against
the local Invoke API stand-in (`local/invoke_api.py`) in front of execution environments that run
bertless's AWS adapter under the real runtime client, with a concurrency cap that throttles as
Lambda's reserved concurrency does.

The environments run this checkout's `bertless.adapters.aws` on the tiny encoder (conftest.py)
with this interpreter and its site-packages as /var/runtime, so no artifact has to be packaged;
the packaging tests prove the artifacts themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_endpoint import short_texts

from bertless import Predictor
from bertless.batch.client import EndpointError, Options
from bertless.batch.endpoint import score_endpoint
from bertless.local.execution_environment import Launch
from bertless.local.invoke_api import InvokeApi

CAP = 3  # environments: the function's reserved concurrency
MEMORY_MB = 1769
SRC = Path(__file__).parents[2] / "src"
HANDLER = f"""import sys
sys.path.insert(0, {str(SRC)!r})  # this checkout's bertless, which an artifact would carry
from bertless.adapters.aws import handler
"""


@pytest.fixture(scope="module")
def invoke_api(tiny_encoder_bundle, tmp_path_factory):
    task = tmp_path_factory.mktemp("task")
    (task / "lambda_function.py").write_text(HANDLER)
    launch = Launch(
        task_root=task,
        runtime_root=Path(sysconfig.get_paths()["purelib"]),
        interpreter=sys.executable,
        handler="lambda_function.handler",
        python="3.11",
        memory_mb=MEMORY_MB,
        environment={"BERTLESS_BUNDLE": str(tiny_encoder_bundle)},
    )
    with InvokeApi(launch, concurrency=CAP) as api:
        yield api


@pytest.fixture
def aws(monkeypatch, invoke_api):
    """boto3 pointed at the stand-in the way a user points it anywhere: AWS_ENDPOINT_URL_LAMBDA."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", invoke_api.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return invoke_api


def rows(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    texts = short_texts(n, seed=9)
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(n)), "text": texts}), path)
    return path, texts


def test_direct_invocation_scores_as_the_predictor_under_a_throttling_cap(
    aws, tiny_encoder_bundle, tmp_path
):
    data, texts = rows(tmp_path, 640)
    output = tmp_path / "out.parquet"
    before = len(aws.billed_ms)
    options = Options(texts_per_request=8, backoff_base=0.01, backoff_cap=0.2, seed=0)
    summary = score_endpoint("lambda:function", data, output, options=options)

    result = pq.read_table(output).to_pydict()
    assert result["id"] == list(range(640)) and result["error"] == [None] * 640
    reference = Predictor.load(tiny_encoder_bundle).encode(texts)
    np.testing.assert_allclose(np.asarray(result["embedding"]), reference, atol=1e-5)
    # The adaptive limiter climbs past the cap: Lambda's 429s come back and are retried.
    assert summary.retries["throttled (429)"] == aws.throttled > 0
    assert aws.peak_busy <= CAP
    # Priced from the REPORT lines: every invocation that ran (/info and 80 of 8 texts), none
    # of the throttled ones, at 1,769 MB and the published us-east-1 x86_64 prices.
    billed = aws.billed_ms[before:]
    assert summary.bill.invocations == len(billed) == summary.requests - aws.throttled + 1
    assert summary.bill.billed_ms == sum(billed)
    gb_seconds = sum(billed) / 1000 * MEMORY_MB / 1024
    assert summary.bill.gb_seconds == pytest.approx(gb_seconds)
    usd = gb_seconds * 0.0000166667 + len(billed) * 0.20 / 1e6
    assert summary.bill.usd() == pytest.approx(usd)


def test_the_cli_invokes_by_name_and_prints_the_runs_cost(aws, tmp_path):
    data, _ = rows(tmp_path, 64)
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "bertless", "batch", "--engine", "endpoint"]
    command += ["--aws-function", "function", "--endpoint-url", aws.url, str(data), str(output)]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_LAMBDA"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = output.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(64))
    assert "AWS cost" in done.stderr and "GB-s" in done.stderr


def test_an_unknown_function_is_one_sentence(aws, tmp_path):
    data, _ = rows(tmp_path, 4)
    with pytest.raises(EndpointError, match="ResourceNotFoundException: Function not found"):
        score_endpoint("lambda:nope", data, tmp_path / "out.parquet")
