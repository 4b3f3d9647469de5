"""`bertless package --concurrency N`: an instance's memory measured for N requests at once."""

from __future__ import annotations

import pytest

from bertless.packaging.package import package
from bertless.packaging.proof import measure_peak_memory
from bertless.packaging.report import PackagingError


def test_the_peak_of_concurrent_worst_requests_is_measured_and_bounded(minilm_bundle, monkeypatch):
    # Small worst requests keep the test short; the child reads the limit from the environment.
    monkeypatch.setenv("BERTLESS_MAX_BATCH_SIZE", "4")
    alone = measure_peak_memory(minilm_bundle, threads=1)
    together = measure_peak_memory(minilm_bundle, threads=1, concurrency=6)
    # The child answers every request (or fails the measurement); the model runs one batch at
    # a time, so six requests cost far less than six times one.
    assert alone > 0
    assert together < 2 * alone, (alone, together)


def test_lambda_takes_one_request_at_a_time(minilm_bundle, tmp_path):
    with pytest.raises(PackagingError, match="Lambda instance takes one request at a time"):
        package("aws", minilm_bundle, tmp_path, concurrency=4)


def test_a_concurrency_below_one_is_refused(minilm_bundle, tmp_path):
    with pytest.raises(PackagingError, match="1 or more, not 0"):
        package("gcp", minilm_bundle, tmp_path, concurrency=0)
