"""Clients people already use, unchanged, against the real server: huggingface_hub's
InferenceClient, the OpenAI SDK and LangChain's OpenAIEmbeddings. Each answer is compared with the
Predictor in this process (itself checked against PyTorch in test_predictor.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import numpy as np
import openai
import pytest
import tiktoken
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from langchain_openai import OpenAIEmbeddings
from tokenizers import Tokenizer

from bertless import Predictor
from bertless.core.bundle import MANIFEST_NAME
from bertless.local.server import local_server

TRAINED_SIZES = [64, 128]


@pytest.fixture(scope="module")
def minilm(minilm_bundle) -> Predictor:
    return Predictor.load(minilm_bundle)


@pytest.fixture(scope="module")
def classifier(classifier_bundle) -> Predictor:
    return Predictor.load(classifier_bundle)


@pytest.fixture(scope="module")
def matryoshka_server(minilm_bundle, tmp_path_factory) -> Iterator[str]:
    """The default bundle with a manifest that says it may be cut to 64 and 128 values.

    MiniLM was not trained for it, so the vectors mean little; what is tested is that the server
    cuts and renormalizes exactly as OpenAI's Matryoshka models do when the bundle says so.
    """
    bundle = tmp_path_factory.mktemp("bundles") / "matryoshka"
    shutil.copytree(minilm_bundle, bundle)
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["matryoshka_dimensions"] = TRAINED_SIZES
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))  # not among the hashed files
    with local_server(bundle) as url:
        yield url


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def cut(vectors: np.ndarray, size: int) -> np.ndarray:
    """OpenAI's documented way to shorten an embedding: the first values, renormalized."""
    head = vectors[:, :size]
    return head / np.linalg.norm(head, axis=1, keepdims=True)


# -- huggingface_hub's InferenceClient -----------------------------------------------------------


def test_inference_client_text_classification_gives_every_label(classify_server, classifier):
    got = InferenceClient(base_url=classify_server).text_classification("I love this movie")
    expected = classifier.predict("I love this movie")
    assert [e.label for e in got] == [e["label"] for e in expected]  # best first
    assert [e.score for e in got] == pytest.approx([e["score"] for e in expected])


def test_inference_client_text_classification_top_k(classify_server, classifier):
    client = InferenceClient(base_url=classify_server)
    got = client.text_classification("I love this movie", top_k=1)
    best = classifier.predict("I love this movie")[0]
    assert [e.label for e in got] == [best["label"]]
    assert got[0].score == pytest.approx(best["score"])


def test_inference_client_function_to_apply_none_gives_logits(classify_server, classifier):
    client = InferenceClient(base_url=classify_server)
    got = client.text_classification("fine", function_to_apply="none")
    logits = classifier.predict("fine", raw_scores=True)
    assert {e.label: e.score for e in got} == pytest.approx(
        {e["label"]: e["score"] for e in logits}
    )


def test_inference_client_feature_extraction(embed_server, minilm):
    vectors = InferenceClient(base_url=embed_server).feature_extraction("hello world")
    np.testing.assert_allclose(vectors, minilm.encode(["hello world"]), atol=1e-6)


def test_inference_client_sentence_similarity(embed_server, minilm):
    sentences = ["a cat sits", "the stock market fell"]
    got = InferenceClient(base_url=embed_server).sentence_similarity("a cat sat", sentences)
    source, *others = minilm.encode(["a cat sat", *sentences])
    np.testing.assert_allclose(got, np.array(others) @ source, atol=1e-5)


def test_inference_client_dimensions_are_refused_for_a_model_not_trained_for_them(embed_server):
    client = InferenceClient(base_url=embed_server)
    with pytest.raises(HfHubHTTPError) as raised:
        client.feature_extraction("hello", dimensions=128)
    assert raised.value.response.status_code == 422
    assert "not trained to be cut to 128" in raised.value.response.json()["error"]


@pytest.mark.parametrize(
    ("option", "words"),
    [({"prompt_name": "query"}, "no named prompts"), ({"truncation_direction": "Left"}, "(Right)")],
)
def test_inference_client_options_a_bundle_cannot_follow_are_refused(embed_server, option, words):
    with pytest.raises(HfHubHTTPError) as raised:
        InferenceClient(base_url=embed_server).feature_extraction("hello", **option)
    assert raised.value.response.status_code == 422
    assert words in str(raised.value)  # what the user reads


def test_inference_client_right_truncation_is_the_default(embed_server, minilm):
    long = "word " * 400
    client = InferenceClient(base_url=embed_server)
    vectors = client.feature_extraction(long, truncate=True, truncation_direction="Right")
    np.testing.assert_allclose(vectors, minilm.encode([long], truncate=True), atol=1e-6)


# -- the OpenAI SDK ------------------------------------------------------------------------------


def test_openai_embeddings(embed_server, minilm, minilm_bundle):
    texts = ["hello world", "a second, longer text about something else"]
    answer = openai_client(embed_server).embeddings.create(model="minilm", input=texts)
    got = np.array([item.embedding for item in answer.data])
    np.testing.assert_allclose(got, minilm.encode(texts), atol=1e-6)
    tokenizer = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    assert answer.usage.prompt_tokens == sum(len(tokenizer.encode(t).ids) for t in texts)


def refusal(raised: pytest.ExceptionInfo) -> str:
    """What the user reads: the SDK's exception, which quotes the server's sentence."""
    return str(raised.value)


def test_openai_dimensions_are_refused_for_a_model_not_trained_for_them(embed_server):
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        openai_client(embed_server).embeddings.create(model="m", input="hi", dimensions=128)
    assert "not trained to be cut to 128" in refusal(raised)


def test_openai_dimensions_cut_and_renormalize_when_the_bundle_says_so(matryoshka_server, minilm):
    texts = ["hello world", "another text"]
    client = openai_client(matryoshka_server)
    answer = client.embeddings.create(model="m", input=texts, dimensions=128)
    got = np.array([item.embedding for item in answer.data])
    np.testing.assert_allclose(got, cut(minilm.encode(texts), 128), atol=1e-6)
    full = client.embeddings.create(model="m", input=texts, dimensions=384)
    np.testing.assert_allclose(
        [item.embedding for item in full.data], minilm.encode(texts), atol=1e-6
    )
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.embeddings.create(model="m", input=texts, dimensions=100)
    assert "sizes it was: 64, 128" in refusal(raised)


# -- LangChain -----------------------------------------------------------------------------------


def test_langchain_openai_embeddings_with_texts(embed_server, minilm):
    embeddings = OpenAIEmbeddings(
        model="minilm",
        base_url=embed_server + "/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    texts = ["hello world", "goodbye"]
    np.testing.assert_allclose(embeddings.embed_documents(texts), minilm.encode(texts), atol=1e-6)
    np.testing.assert_allclose(embeddings.embed_query("hello"), minilm.encode("hello"), atol=1e-6)


def test_langchain_defaults_send_token_ids_and_are_told_what_to_set(embed_server, monkeypatch):
    """By default LangChain tokenizes with tiktoken and sends token ids. tiktoken would download
    OpenAI's vocabulary, which this machine cannot, so a byte-level encoding stands in for it:
    what reaches the server is the same kind of body, lists of integers."""
    bytes_only = tiktoken.Encoding(
        name="stand-in: one token per byte",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens={},
    )
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda name: bytes_only)
    embeddings = OpenAIEmbeddings(
        model="minilm", base_url=embed_server + "/v1", api_key="unused", max_retries=0
    )
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        embeddings.embed_documents(["hello world"])
    assert "check_embedding_ctx_length=False" in refusal(raised)
