"""The endpoint engine: through a faulty proxy in front of `bertless serve`, every row comes back
exactly once with the Predictor's result; a killed run resumes; a row that always fails ends with
its last error; the limiter moves the way AIMD says.

The issue's 20,000 rows at the issue's fault rates, on the tiny encoder of conftest.py (a random
2-layer BERT with MiniLM's tokenizer), which scores them in seconds where MiniLM would take
minutes of two shared cores; the server, routes, client, proxy and files are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fault_proxy import Faults, StandIn, fault_proxy

from bertless import Predictor
from bertless.batch.adaptive import DECREASE, Limiter, backoff
from bertless.batch.client import Options
from bertless.batch.endpoint import score_endpoint
from bertless.batch.local import parts_dir, score_file
from bertless.local.server import local_server

N = 20_000
WORDS = (
    "the a model serves text on functions and answers quickly while costs stay low for every "
    "request from users café naïve Zürich data cloud lambda 42 ! ?"
).split()
ISSUE_FAULTS = Faults(throttle=0.10, unavailable=0.02, reset=0.01, slow=0.05, slow_seconds=0.2)
# 32 texts a request makes 625 requests of 20,000 rows, enough for each fault to happen. The fates
# the proxy draws come from its seeded generator in order, so the counts are the same every run.
FAST_RETRIES = Options(backoff_base=0.01, backoff_cap=0.5, seed=0)


def short_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def server(tiny_encoder_bundle):
    """`bertless serve` with two workers, as a function scales to several instances."""
    with local_server(tiny_encoder_bundle, workers=2) as url:
        yield url


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return short_texts(N)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, texts) -> Path:
    path = tmp_path_factory.mktemp("endpoint") / "texts.parquet"
    pq.write_table(pa.table({"id": list(range(N)), "text": texts}), path)
    return path


@pytest.fixture(scope="module")
def reference(tiny_encoder_bundle, texts) -> np.ndarray:
    """What the library gives in one process, the independent reference."""
    return Predictor.load(tiny_encoder_bundle).encode(texts)


def assert_exactly(result: dict, reference: np.ndarray) -> None:
    assert result["id"] == list(range(len(reference)))  # in order, none twice, none missing
    assert result["error"] == [None] * len(reference)
    np.testing.assert_allclose(np.asarray(result["embedding"]), reference, atol=1e-5)


def test_the_issues_faults_lose_and_repeat_no_row(server, corpus, reference, tmp_path):
    output = tmp_path / "out.parquet"
    with fault_proxy(server, ISSUE_FAULTS) as (url, proxy):
        summary = score_endpoint(url, corpus, output, options=FAST_RETRIES)

    assert_exactly(pq.read_table(output).to_pydict(), reference)
    assert httpx.get(server + "/info").json()["normalize"] is False  # /embed had to be told
    assert proxy.counts["throttle"] and proxy.counts["unavailable"] and proxy.counts["reset"]
    assert summary.requests == sum(proxy.counts.values()) - 1  # every POST, not the GET /info
    assert summary.retries == {
        "throttled (429)": proxy.counts["throttle"],
        "unavailable (503)": proxy.counts["unavailable"],
        "connection": proxy.counts["reset"],
    }
    assert (summary.rows, summary.errors, summary.scored) == (N, 0, N)
    assert 1 <= summary.mean_concurrency <= summary.peak_concurrency


def test_a_killed_run_resumes_and_scores_each_row_once(server, corpus, reference, tmp_path):
    n, chunk = N, 1000
    data = corpus
    output = tmp_path / "out.jsonl"
    parts = parts_dir(output)
    with fault_proxy(server, ISSUE_FAULTS) as (url, _), (tmp_path / "run.log").open("w") as log:
        command = [sys.executable, "-m", "bertless", "batch", "--engine", "endpoint"]
        run = subprocess.Popen(
            [*command, "--url", url, "--chunk-rows", str(chunk), str(data), str(output)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while len(list(parts.glob("part-*.parquet"))) < n // chunk // 2:  # killed halfway
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "no parts written in time"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        kept = len(list(parts.glob("part-*.parquet")))
        assert not output.exists() and n // chunk // 2 <= kept < n // chunk
        summary = score_endpoint(url, data, output, chunk_rows=chunk, options=FAST_RETRIES)

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    result = {key: [row[key] for row in rows] for key in rows[0]}
    assert_exactly(result, reference[:n])
    assert summary.rows == n and summary.scored == n - kept * chunk
    assert not parts.exists()


BAD_ROWS = [
    ({"id": 1, "text": "a fine first sentence"}, None),
    ({"id": 2, "text": None}, "text is null"),
    ({"id": 3, "text": 42}, "text is a number, not a string"),
    ({"id": 4, "text": ""}, "text is the empty string"),
    ({"id": 5, "text": "this one is POISON to the endpoint"}, "proxy stand-in: this input always"),
    ({"id": 6, "text": "word " * 100}, "102 tokens, more than the maximum of 64"),
    ({"id": 7, "text": "   "}, None),
    ({"id": 8, "text": "another fine sentence"}, None),
]


def test_a_row_that_always_fails_ends_with_its_last_error(server, tiny_encoder_bundle, tmp_path):
    data = tmp_path / "mixed.jsonl"
    rows = [row for row, _ in BAD_ROWS] * 3  # several requests, each with every kind of row
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    options = Options(retries=3, backoff_base=0.001, texts_per_request=6, seed=0)
    with fault_proxy(server, Faults(poison="POISON")) as (url, proxy):
        summary = score_endpoint(url, data, output, truncate=False, options=options)

    result = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    expected = [error for _, error in BAD_ROWS] * 3
    for row, error in zip(result, expected, strict=True):
        if error is None:
            assert row["error"] is None and len(row["embedding"]) == 32
        else:
            assert error in row["error"] and row["embedding"] is None
    poisoned = [row["error"] for row in result if row["id"] == 5]
    assert all("answered 500" in e and "still failing after 1 retry" in e for e in poisoned)
    assert summary.retries["server error (500)"] >= 3  # the whole request's, then its halves'
    assert proxy.counts["pass"] > 0
    assert summary.errors == 5 * 3
    fine = [row["text"] for row, error in BAD_ROWS if not error]
    reference = Predictor.load(tiny_encoder_bundle).encode(fine)
    scored = [row["embedding"] for row in result[: len(BAD_ROWS)] if row["error"] is None]
    np.testing.assert_allclose(np.asarray(scored), reference, atol=1e-5)


def test_retry_after_is_waited_for(server, corpus, tmp_path):
    data = tmp_path / "few.parquet"
    pq.write_table(pq.read_table(corpus).slice(0, 64), data)
    faults = Faults(throttle=0.3, retry_after="1", seed=3)
    options = Options(texts_per_request=8, backoff_base=0.001, seed=0)
    with fault_proxy(server, faults) as (url, proxy):
        summary = score_endpoint(url, data, tmp_path / "out.parquet", options=options)
    assert proxy.counts["throttle"] > 0
    assert summary.retry_after_seconds == pytest.approx(1.0 * proxy.counts["throttle"])


def test_classifier_endpoint_agrees_with_the_local_engine(
    classify_server, classifier_bundle, tmp_path
):
    texts = short_texts(300, seed=5)
    data = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"id": list(range(300)), "text": texts, "pair": texts[::-1]}), data)
    local, remote = tmp_path / "local.parquet", tmp_path / "remote.parquet"
    score_file(classifier_bundle, data, local, pair_column="pair", workers=1)
    with fault_proxy(classify_server, ISSUE_FAULTS) as (url, _):
        score_endpoint(url, data, remote, pair_column="pair", options=FAST_RETRIES)
    expected, actual = pq.read_table(local).to_pydict(), pq.read_table(remote).to_pydict()
    assert actual["id"] == expected["id"] and actual["label"] == expected["label"]
    np.testing.assert_allclose(actual["scores"], expected["scores"], atol=1e-5)
    np.testing.assert_allclose(actual["score"], expected["score"], atol=1e-5)


# -- the limiter and the backoff, on their own -----------------------------------------------


def drive(limiter: Limiter, outcomes: list[tuple[float | None, bool]]) -> list[float]:
    """The limit after each outcome, with the limiter kept full (as a busy run keeps it)."""

    async def run() -> list[float]:
        limits = []
        for latency, overloaded in outcomes:
            while limiter.in_flight < int(limiter.limit):
                await limiter.acquire()
            await limiter.release(latency, overloaded=overloaded)
            limits.append(limiter.limit)
        return limits

    return asyncio.run(run())


def test_the_limit_doubles_until_overload_then_cuts_climbs_back_holds_and_probes():
    limiter = Limiter(4, 1000)
    limits = drive(limiter, [(0.1, False)] * (4 + 8 + 16))
    assert limits[-1] == 32  # three full windows of steady latency: 4 → 8 → 16 → 32
    limiter._last_cut = -1e9  # the last cut is a round trip ago
    cut = drive(limiter, [(None, True)])[-1]
    assert cut == pytest.approx(32 * DECREASE)  # 22.4
    # Halfway back to 32 while more than one below it (22.4 + 4.8, + 2.4, + 1.2, + 0.6), three
    # windows there, then past it by 1, 2, 4.
    for limit in [27.2, 29.6, 30.8, 31.4, 31.4, 31.4, 31.4, 32.4, 34.4, 38.4]:
        window = drive(limiter, [(0.1, False)] * int(limiter.limit))
        assert window[-1] == pytest.approx(limit)


def test_the_limit_eases_when_latency_climbs_and_holds_when_fixed():
    limiter = Limiter(8, 1000)
    drive(limiter, [(0.1, False)] * 8)  # best median 0.1 s; limit 16
    assert drive(limiter, [(0.5, False)] * 16)[-1] == pytest.approx(16 * 0.9)
    fixed = Limiter(8, 8, fixed=True)
    assert set(drive(fixed, [(0.1, False)] * 20 + [(None, True)] * 5)) == {8}


def test_backoff_is_jittered_under_its_cap():
    rng = random.Random(0)
    waits = [backoff(attempt, 0.1, 2.0, rng) for attempt in range(1, 12) for _ in range(50)]
    assert all(0 <= w <= 2.0 for w in waits)
    assert len(set(waits)) == len(waits)  # no two clients wait alike
    firsts = [backoff(1, 0.1, 2.0, rng) for _ in range(100)]
    assert max(firsts) <= 0.1


def test_adaptive_concurrency_settles_under_a_throttling_cap(tmp_path):
    """Against a stand-in that scales but throttles above 16 in flight (as Lambda's reserved
    concurrency does), the limiter climbs to the cap, backs off on the 429s, and loses no row."""
    info = {"task": "feature-extraction", "dimension": 4, "labels": [], "bundle_sha256": "x"}
    data = tmp_path / "many.parquet"
    pq.write_table(pa.table({"id": list(range(3000)), "text": short_texts(3000)}), data)
    output = tmp_path / "out.parquet"
    options = Options(texts_per_request=8, backoff_base=0.01, backoff_cap=0.2, seed=0)
    with fault_proxy(StandIn(info, 0.05), Faults(cap=16)) as (url, proxy):
        summary = score_endpoint(url, data, output, options=options)
    result = pq.read_table(output).to_pydict()
    assert result["id"] == list(range(3000)) and result["error"] == [None] * 3000
    assert proxy.counts["over cap"] == summary.retries["throttled (429)"] > 0
    assert summary.mean_concurrency >= 8 and summary.peak_concurrency >= 16


def test_sigv4_signs_every_request_for_lambda(server, corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    data = tmp_path / "few.parquet"
    pq.write_table(pq.read_table(corpus).slice(0, 10), data)
    with fault_proxy(server, Faults()) as (url, proxy):
        options = Options(sigv4_region="eu-west-1")
        summary = score_endpoint(url, data, tmp_path / "out.parquet", options=options)
    assert summary.errors == 0
    signed = proxy.last_headers["authorization"]
    assert signed.startswith("AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/")
    assert "/eu-west-1/lambda/aws4_request" in signed and "x-amz-date" in proxy.last_headers


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_spark_partitions_share_the_concurrency_budget(server, corpus, reference):
    from bertless.batch.spark import score, session

    spark = session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    n = 300
    frame = spark.read.parquet(str(corpus)).limit(n).repartition(3)
    with fault_proxy(server, ISSUE_FAULTS) as (url, proxy):
        budget = Options(concurrency=3, backoff_base=0.01, backoff_cap=0.5)
        rows = score(frame, url=url, options=budget).orderBy("id").collect()
    assert [row["id"] for row in rows] == list(range(n))
    assert [row["error"] for row in rows] == [None] * n
    np.testing.assert_allclose([row["embedding"] for row in rows], reference[:n], atol=1e-5)
    assert 1 <= proxy.peak_in_flight <= 3  # one each; unshared, each partition could send 3


def test_requests_fit_lambdas_six_megabytes_each_way():
    from bertless.batch.client import Client, Info
    from bertless.batch.endpoint import _groups

    client = Client("http://unused", Options(texts_per_request=100_000), http=None)
    client.info = Info("feature-extraction", [], 384, 100_000, 100 * 2**20, "x", False)
    # An answer of 384 floats a text, 24 bytes a float at most, within 3/4 of 6 MiB: 512 texts.
    assert client.texts_per_request() == 6 * 2**20 * 3 // 4 // (384 * 24) == 512
    texts = ["x" * 100_000] * 100  # 100 KB each: 47 fit in 3/4 of 6 MiB
    groups = list(_groups(texts, 512, client.payload_limit()))
    assert [b - a for a, b in groups] == [47, 47, 6]


def test_a_burst_of_throttles_within_a_round_trip_cuts_once():
    limiter = Limiter(8, 1000)
    drive(limiter, [(0.5, False)] * 8)  # a round trip is 0.5 s; limit 16
    limiter._last_cut = -1e9
    limits = drive(limiter, [(None, True)] * 10)  # ten 429s answered together
    assert limits == [pytest.approx(16 * DECREASE)] * 10
