"""Export's int8 settings: each name quantizes what it says, records it, and stays near PyTorch.

The reference is sentence-transformers on PyTorch, computed here; the graphs are read with onnx.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from parity_texts import SENTENCES

from bertless import Predictor
from bertless.cli.export import QUANTIZE_NAMES
from bertless.models.export import QUANTIZE, export


@pytest.fixture(scope="module")
def int8_fast_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "minilm-int8-fast"
    export(None, out, quantize="int8-fast")
    return out


def ops(bundle: Path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node)


def cosine_to(bundle: Path, reference: np.ndarray) -> np.ndarray:
    vectors = Predictor.load(bundle).encode(SENTENCES, truncate=True)
    return (vectors * reference).sum(1)


def test_the_command_line_offers_every_setting():
    assert list(QUANTIZE) == QUANTIZE_NAMES


def test_int8_keeps_the_attention_in_fp32_and_stays_close(minilm_int8_bundle, st_reference):
    graph = ops(minilm_int8_bundle)
    assert graph["Attention"] == 6 and graph["QAttention"] == 0  # one per layer of MiniLM-L6
    manifest = Predictor.load(minilm_int8_bundle).manifest
    assert manifest.precision == "int8"
    assert manifest.built_with["int8"] == (
        "dynamic, per-channel, MatMul+EmbedLayerNormalization+Gather"
    )
    assert manifest.parity.min >= 0.98 and manifest.parity.mean >= 0.99
    scores = cosine_to(minilm_int8_bundle, st_reference)
    assert scores.min() >= 0.98 and scores.mean() >= 0.99


def test_int8_fast_quantizes_every_projection_at_some_parity(
    int8_fast_bundle, minilm_int8_bundle, st_reference
):
    graph = ops(int8_fast_bundle)
    assert graph["QAttention"] == 6 and graph["Attention"] == 0
    manifest = Predictor.load(int8_fast_bundle).manifest
    assert manifest.precision == "int8"
    assert manifest.built_with["int8"] == (
        "dynamic, per-channel, MatMul+EmbedLayerNormalization+Gather+Attention, reduce_range"
    )
    # Measured 0.966 min ("ok") / 0.983 mean: short texts drift most (README, export).
    scores = cosine_to(int8_fast_bundle, st_reference)
    assert scores.min() >= 0.96 and scores.mean() >= 0.98
    assert scores.mean() < cosine_to(minilm_int8_bundle, st_reference).mean()
    size = (int8_fast_bundle / "model.onnx").stat().st_size
    assert size < 0.8 * (minilm_int8_bundle / "model.onnx").stat().st_size


def test_an_unknown_setting_is_named():
    with pytest.raises(ValueError, match="--quantize takes int8 or int8-fast, not 'int4'"):
        export(None, "unused", quantize="int4")
