"""An artifact packaged for N requests at once is deployed with memory that holds their peak.

`bertless package --concurrency N` measures the peak memory of N worst requests at once and
records both in the report; the deploy refuses a memory below that peak, or an instance
concurrency above N, before any request.
"""

from __future__ import annotations

import pytest
from test_deploy_gcp import deployer, google_env, target  # noqa: F401 (google_env: fixture)

from bertless.deploy import gcp
from bertless.deploy.plan import Apply, PreflightError
from bertless.deploy.plan import deploy as run_deploy
from bertless.deploy.preflight import check_artifact
from bertless.packaging.package import package, read_artifact


def deploy_gcp(artifact, server, memory_mb=None, **options):
    made = gcp.GcpDeployer(gcp.GcpOptions(project="p", **options), deployer().credentials)
    return run_deploy(made, artifact, target(server, "peaked", memory_mb=memory_mb), Apply())


def test_the_report_carries_the_concurrent_peak_to_the_deploy(minilm_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTLESS_MAX_BATCH_SIZE", "4")  # small worst requests: a short test
    built = package("gcp", minilm_bundle, tmp_path, concurrency=3, prove=False)
    artifact = read_artifact(built.path)
    assert artifact.concurrency == 3
    assert artifact.peak_memory_mb == built.peak_memory_mb > 0
    assert artifact.memory_mb >= artifact.peak_memory_mb  # the default memory holds it
    assert check_artifact(artifact, "gcp", None, concurrency=3) == artifact.memory_mb
    with pytest.raises(PreflightError, match="more than the 3 requests at once"):
        check_artifact(artifact, "gcp", None, concurrency=4)


def test_memory_below_the_peak_is_one_sentence_before_any_request(artifacts, recorder, google_env):  # noqa: F811
    artifact = artifacts("gcp", memory_mb=1024, peak_memory_mb=700.4, concurrency=8)
    words = r"512 MB is below the 700 MB gcp-\S+\.zip peaked at with 8 requests at once"
    with pytest.raises(PreflightError, match=words + r".*at least 701 MB"):
        deploy_gcp(artifact, recorder, memory_mb=512, concurrency=8, cpu="1")
    assert recorder.calls == []


def test_more_requests_at_once_than_measured_is_one_sentence_before_any_request(
    artifacts,
    recorder,
    google_env,  # noqa: F811
):
    artifact = artifacts("gcp", memory_mb=1024, peak_memory_mb=700.0, concurrency=4)
    with pytest.raises(PreflightError, match="package it again with --concurrency 8"):
        deploy_gcp(artifact, recorder, concurrency=8, cpu="1")
    assert recorder.calls == []


def test_the_measured_memory_and_fewer_requests_pass(artifacts):
    artifact = artifacts("gcp", memory_mb=1024, peak_memory_mb=700.0, concurrency=8)
    assert check_artifact(artifact, "gcp", None, concurrency=8) == 1024
    assert check_artifact(artifact, "gcp", 768, concurrency=2) == 768
    azure = artifacts("azure", memory_mb=2048, peak_memory_mb=900.0, concurrency=8)
    with pytest.raises(PreflightError, match="512 MB is below the 900 MB"):
        check_artifact(azure, "azure", 512, concurrency=8)
