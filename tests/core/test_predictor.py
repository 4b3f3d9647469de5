"""The Predictor against PyTorch: the reference is computed here, by PyTorch, never stored."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from parity_texts import SENTENCES

from bertless import Predictor
from bertless.core.errors import BundleError, InputError, InputTooLongError

PAIR = ("How do I deploy a model to AWS Lambda?", "Package the ONNX bundle as a zip.")


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


@pytest.fixture(scope="module")
def pair_reference(minilm_path) -> np.ndarray:
    """Mean-pooled, normalized embedding of a text pair, by transformers on PyTorch."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path).eval()
    batch = tokenizer(*PAIR, return_tensors="pt")
    with torch.inference_mode():
        states = model(**batch).last_hidden_state[0]
    vector = states.mean(0).numpy()
    return vector / np.linalg.norm(vector)


def test_fp32_embeddings_match_sentence_transformers(minilm_bundle, st_reference):
    vectors = Predictor.load(minilm_bundle).encode(SENTENCES, truncate=True)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    assert cos(vectors, st_reference).min() >= 0.9999


def test_fp32_pair_embedding_matches_pytorch(minilm_bundle, pair_reference):
    predictor = Predictor.load(minilm_bundle)
    (vector,) = predictor.embed([PAIR]).values
    assert cos(vector, pair_reference) >= 0.9999


def test_int8_embeddings_stay_close_to_sentence_transformers(minilm_int8_bundle, st_reference):
    vectors = Predictor.load(minilm_int8_bundle).encode(SENTENCES, truncate=True)
    similarity = cos(vectors, st_reference)
    assert similarity.min() >= 0.98
    assert similarity.mean() >= 0.99


def test_export_records_parity_and_precision(minilm_bundle, minilm_int8_bundle):
    fp32 = Predictor.load(minilm_bundle).manifest
    int8 = Predictor.load(minilm_int8_bundle).manifest
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    assert fp32.parity.min >= 0.9999
    assert int8.parity.min >= 0.98 and int8.parity.mean >= 0.99
    assert (minilm_int8_bundle / "model.onnx").stat().st_size < 0.4 * (
        minilm_bundle / "model.onnx"
    ).stat().st_size


def test_one_text_per_call_matches_sorted_micro_batches_and_pytorch(minilm_bundle, st_reference):
    """A call of one micro-batch skips sorting and restoring the order, and one text is
    tokenized in the calling thread: both paths give PyTorch's vectors, in input order."""
    predictor = Predictor.load(minilm_bundle)
    one_by_one = np.stack([predictor.encode([text], truncate=True)[0] for text in SENTENCES])
    sorted_runs = predictor.encode(SENTENCES, batch_size=2, truncate=True)
    assert cos(one_by_one, st_reference).min() >= 0.9999
    assert cos(sorted_runs, st_reference).min() >= 0.9999


def test_single_text_gives_one_vector_and_normalization_is_optional(minilm_bundle):
    predictor = Predictor.load(minilm_bundle)
    single = predictor.encode("hello world")
    assert single.shape == (384,)
    raw = predictor.encode(["hello world"], normalize_embeddings=False)[0]
    assert np.linalg.norm(single) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(raw) > 1.5  # mean-pooled MiniLM states are far from unit length
    assert cos(raw, single) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_order_of_outputs_equals_order_of_inputs(minilm_bundle, batch_size):
    predictor = Predictor.load(minilm_bundle)
    texts = [("word " * n).strip() for n in (5, 1, 40, 2, 17, 3, 60, 8)]
    one_by_one = np.stack([predictor.encode(t) for t in texts])
    batched = predictor.encode(texts, batch_size=batch_size)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_too_long_input_names_its_index_and_token_count(minilm_bundle):
    predictor = Predictor.load(minilm_bundle)
    long_text = "word " * 300  # 300 word tokens + [CLS] + [SEP]
    with pytest.raises(
        InputTooLongError, match=r"input 1 has 302 tokens, more than the maximum of 256"
    ):
        predictor.encode(["short", long_text])
    assert predictor.encode(["short", long_text], truncate=True).shape == (2, 384)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "inputs is an empty list"),
        (["fine", 3], "input 1 is a number, not a text"),
        (["fine", ""], "input 1 is the empty string"),
        ([None], "input 0 is null, not a text"),
        ([True], "input 0 is a boolean, not a text"),
        ([{"text": "hi"}], "input 0 is an object, not a text"),
        (b"bytes", "inputs must be a text or a list of texts"),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(minilm_bundle, inputs, message):
    with pytest.raises(ValueError, match=message) as caught:
        Predictor.load(minilm_bundle).encode(inputs)
    assert isinstance(caught.value, InputError)


def test_predict_on_an_embedding_bundle_says_which_task_it_needs(minilm_bundle):
    with pytest.raises(InputError, match="predict\\(\\) needs a text-classification bundle"):
        Predictor.load(minilm_bundle).predict(["great!"])


def test_threads_share_one_predictor(minilm_bundle):
    predictor = Predictor.load(minilm_bundle)
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(24)]
    expected = predictor.encode(texts)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = predictor.encode(texts[k::4])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_allclose(results[k], expected[k::4], atol=1e-5)


@pytest.mark.parametrize(
    ("spin", "key", "value"),
    [
        (None, "session.intra_op.allow_spinning", "0"),  # never spin, as BERTLESS_SPIN=0
        ("0", "session.intra_op.allow_spinning", "0"),
        ("1", "session.intra_op.allow_spinning", "1"),
    ],
)
def test_bertless_spin_sets_how_idle_threads_wait(minilm_bundle, monkeypatch, spin, key, value):
    if spin is None:
        monkeypatch.delenv("BERTLESS_SPIN", raising=False)
    else:
        monkeypatch.setenv("BERTLESS_SPIN", spin)
    options = Predictor.load(minilm_bundle)._engine.session.get_session_options()
    assert options.get_session_config_entry(key) == value


def test_bad_bertless_spin_is_named(minilm_bundle, monkeypatch):
    monkeypatch.setenv("BERTLESS_SPIN", "fast")
    with pytest.raises(BundleError, match="BERTLESS_SPIN='fast' is not a yes or no"):
        Predictor.load(minilm_bundle)


# -- classification ---------------------------------------------------------------------------


def torch_probabilities(checkpoint, items, multi_label: bool = False) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    rows = []
    with torch.inference_mode():
        for item in items:
            args = item if isinstance(item, tuple) else (item,)
            logits = model(**tokenizer(*args, return_tensors="pt")).logits[0]
            rows.append((torch.sigmoid(logits) if multi_label else logits.softmax(-1)).numpy())
    return np.stack(rows)


CLASSIFY = ["great!", "this is awful and I want a refund", ("query", "a matching title"), "meh"]


def test_predict_matches_pytorch_softmax(classifier_bundle, classifier_checkpoint):
    predictor = Predictor.load(classifier_bundle)
    expected = torch_probabilities(classifier_checkpoint, CLASSIFY)
    results = predictor.predict(CLASSIFY)
    labels = ["negative", "neutral", "positive"]
    for result, row in zip(results, expected, strict=True):
        assert [r["label"] for r in result] == [labels[i] for i in np.argsort(-row)]
        got = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([got[label] for label in labels], row, atol=1e-4)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)


def test_multi_label_predict_uses_sigmoid(multilabel_bundle, multilabel_checkpoint):
    predictor = Predictor.load(multilabel_bundle)
    assert predictor.manifest.problem_type == "multi_label_classification"
    expected = torch_probabilities(multilabel_checkpoint, CLASSIFY, multi_label=True)
    labels = predictor.manifest.labels
    for result, row in zip(predictor.predict(CLASSIFY), expected, strict=True):
        got = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([got[label] for label in labels], row, atol=1e-4)


def test_single_pair_in_gives_single_result_out(classifier_bundle, classifier_checkpoint):
    result = Predictor.load(classifier_bundle).predict(("query", "a matching title"))
    assert [set(r) for r in result] == [{"label", "score"}] * 3
    expected = torch_probabilities(classifier_checkpoint, [("query", "a matching title")])[0]
    assert result[0]["score"] == pytest.approx(expected.max(), abs=1e-4)


def test_classifier_manifest_has_labels_and_no_pooling(classifier_bundle):
    manifest = Predictor.load(classifier_bundle).manifest
    assert manifest.task == "text-classification"
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert manifest.pooling is None
    assert manifest.parity.metric == "max_abs_diff" and manifest.parity.mean < 1e-4


def test_encode_on_a_classifier_says_which_task_it_needs(classifier_bundle):
    with pytest.raises(InputError, match="encode\\(\\) needs a feature-extraction bundle"):
        Predictor.load(classifier_bundle).encode(["text"])


def test_bad_pair_is_rejected(classifier_bundle):
    with pytest.raises(InputError, match="input 0 is not a pair of two texts"):
        Predictor.load(classifier_bundle).predict([("one", "two", "three")])
