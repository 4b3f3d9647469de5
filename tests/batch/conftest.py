"""A tiny embedding bundle for the batch tests that score the issue's 20,000 rows.

MiniLM takes minutes of a shared CPU for 20,000 rows; a random 2-layer BERT of hidden size 32
with MiniLM's real vocabulary and tokenizer takes seconds, and goes through the same server,
routes, client, proxy and files. It is exported as sentence-transformers' mean pooling without a
Normalize module, so its vectors are not normalized: a client that let /embed normalize (TEI's
default) would not give the Predictor's results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertless.models.export import export


@pytest.fixture(scope="session")
def tiny_encoder_bundle(tmp_path_factory, minilm_path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("checkpoints") / "tiny-encoder"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.3,  # wide enough that texts get different vectors
    )
    BertModel(config).save_pretrained(folder)
    shutil.copyfile(minilm_path / "vocab.txt", folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true, "model_max_length": 64}')
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    kinds = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
    paths = ["", "1_Pooling"]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": kind}
        for i, (path, kind) in enumerate(zip(paths, kinds, strict=True))
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    out = tmp_path_factory.mktemp("bundles") / "tiny-encoder"
    export(folder, out)
    return out
