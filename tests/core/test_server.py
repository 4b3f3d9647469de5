"""The HTTP contract, end to end: the real functions-framework server, spoken to over HTTP."""

from __future__ import annotations

import base64
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest
import requests

from bertless import Predictor
from bertless.core.batcher import QUIET_S
from bertless.local.server import local_server

JSON = {"Content-Type": "application/json"}


def post(url: str, path: str, body: object, headers: dict | None = None) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + path, data=data, headers={**JSON, **(headers or {})}, timeout=60)


def assert_error(response: requests.Response, status: int, error_type: str, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "error_type"}
    assert body["error_type"] == error_type
    assert words in body["error"]
    assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def minilm(minilm_bundle) -> Predictor:
    return Predictor.load(minilm_bundle)


# -- routes ------------------------------------------------------------------------------------


def test_embed_a_single_string_gives_one_vector(embed_server, minilm):
    response = post(embed_server, "/embed", {"inputs": "hello world"})
    assert response.status_code == 200
    vectors = np.array(response.json())
    assert vectors.shape == (1, 384)  # TEI answers a list of vectors even for one string
    np.testing.assert_allclose(vectors[0], minilm.encode("hello world"), atol=1e-6)


def test_embed_keeps_the_order_of_a_batch(embed_server, minilm):
    texts = ["a " * 50, "b", "a much longer text " * 10, "c d", "e"]
    vectors = np.array(post(embed_server, "/embed", {"inputs": texts}).json())
    np.testing.assert_allclose(vectors, minilm.encode(texts), atol=1e-6)


def test_embed_without_normalization(embed_server, minilm):
    body = {"inputs": ["hello"], "normalize": False}
    vector = np.array(post(embed_server, "/embed", body).json()[0])
    np.testing.assert_allclose(
        vector, minilm.encode("hello", normalize_embeddings=False), atol=1e-5
    )
    assert np.linalg.norm(vector) > 1.5


def test_similarity_is_the_cosine_of_embeddings(embed_server, minilm):
    body = {"inputs": {"source_sentence": "a cat", "sentences": ["a kitten", "stock markets"]}}
    scores = post(embed_server, "/similarity", body).json()
    source, *others = minilm.encode(["a cat", "a kitten", "stock markets"])
    np.testing.assert_allclose(scores, [float(source @ o) for o in others], atol=1e-6)
    assert scores[0] > scores[1]


def test_rerank_sorts_best_first_and_can_return_text(embed_server):
    body = {
        "query": "capital of France",
        "texts": ["bananas", "Paris is in France"],
        "return_text": True,
    }
    ranks = post(embed_server, "/rerank", body).json()
    assert [r["index"] for r in ranks] == [1, 0]
    assert ranks[0]["text"] == "Paris is in France"
    assert ranks[0]["score"] > ranks[1]["score"]


def test_openai_route_shape_and_token_usage(embed_server, minilm):
    response = post(embed_server, "/v1/embeddings", {"input": ["hello world", "hi"], "model": "m"})
    body = response.json()
    assert body["object"] == "list" and body["model"] == "m"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in body["data"])
    # [CLS] hello world [SEP] + [CLS] hi [SEP]: 4 + 3 tokens
    assert body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    np.testing.assert_allclose(
        [d["embedding"] for d in body["data"]], minilm.encode(["hello world", "hi"]), atol=1e-6
    )


def test_openai_route_answers_base64_float32(embed_server, minilm):
    body = post(embed_server, "/v1/embeddings", {"input": "hi", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, minilm.encode("hi"), atol=1e-7)


def test_root_answers_as_the_task_route(embed_server):
    assert (
        post(embed_server, "/", {"inputs": "x"}).json()
        == post(embed_server, "/embed", {"inputs": "x"}).json()
    )
    body = {"inputs": {"source_sentence": "a", "sentences": ["a"]}}
    assert post(embed_server, "/", body).json() == pytest.approx([1.0], abs=1e-5)


def test_health_info_and_openapi(embed_server, minilm_bundle):
    assert requests.get(embed_server + "/health").json() == {"status": "ok"}
    info = requests.get(embed_server + "/info").json()
    manifest = Predictor.load(minilm_bundle).manifest
    assert info["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["architecture"] == "transformer"
    assert (info["task"], info["dimension"], info["max_input_length"]) == (
        "feature-extraction",
        384,
        manifest.max_length,
    )
    assert info["max_client_batch_size"] == 32 and info["auth"] is False
    assert len(info["bundle_sha256"]) == 64
    spec = requests.get(embed_server + "/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = set(spec["paths"])
    assert paths == {
        "/embed",
        "/similarity",
        "/rerank",
        "/v1/embeddings",
        "/",
        "/health",
        "/info",
        "/openapi.json",
    }  # only what an embedding bundle serves
    embed_schema = spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]
    assert embed_schema["schema"]["$ref"] == "#/components/schemas/EmbedRequest"
    assert "inputs" in spec["components"]["schemas"]["EmbedRequest"]["required"]


def test_predict_single_pair_and_batch(classify_server, classifier_bundle):
    classifier = Predictor.load(classifier_bundle)
    single = post(classify_server, "/predict", {"inputs": "great!"}).json()
    assert single == classifier.predict("great!")
    pair = post(classify_server, "/predict", {"inputs": ["query", "a title"]}).json()
    assert pair == classifier.predict(("query", "a title"))
    batch = post(classify_server, "/predict", {"inputs": [["one"], ["two", "pair"]]}).json()
    assert batch == classifier.predict(["one", ("two", "pair")])
    three = post(classify_server, "/predict", {"inputs": ["a", "b", "c"]}).json()
    assert len(three) == 3 and all(len(r) == 3 for r in three)


def test_predict_raw_scores_are_logits(classify_server):
    probabilities = post(classify_server, "/predict", {"inputs": "ok"}).json()
    logits = post(classify_server, "/predict", {"inputs": "ok", "raw_scores": True}).json()
    values = np.array([r["score"] for r in logits])
    softmax = np.exp(values - values.max()) / np.exp(values - values.max()).sum()
    np.testing.assert_allclose(softmax, [r["score"] for r in probabilities], atol=1e-5)


def test_classifier_root_answers_one_list_per_input_as_the_inference_api(classify_server):
    """TEI's /predict answers a single text with a flat list; the Inference API, which posts
    to the root, answers a list per input even for one (huggingface_hub takes the first)."""
    assert post(classify_server, "/", {"inputs": "x"}).json() == [
        post(classify_server, "/predict", {"inputs": "x"}).json()
    ]
    batch = {"inputs": ["x", "y", "z"]}
    assert (
        post(classify_server, "/", batch).json() == post(classify_server, "/predict", batch).json()
    )


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "error_type", "words"),
    [
        ("/embed", b"\xff\xfe not utf-8", 400, "Validation", "not UTF-8"),
        ("/embed", b"{not json", 400, "Validation", "not valid JSON"),
        ("/embed", b"[1, 2]", 400, "Validation", "must be a JSON object, not a JSON list"),
        ("/embed", {"text": "x"}, 422, "Validation", "inputs: Field required"),
        ("/embed", {"inputs": 3}, 422, "Validation", "inputs"),
        ("/embed", {"inputs": []}, 422, "Validation", "inputs"),
        ("/embed", {"inputs": ""}, 422, "Validation", "inputs"),
        (
            "/embed",
            {"inputs": ["ok", ""]},
            422,
            "Validation",
            "inputs.1: String should have at least 1 character",
        ),
        (
            "/embed",
            {"inputs": ["x"] * 33},
            413,
            "Validation",
            "33 inputs are more than the maximum",
        ),
        (
            "/embed",
            {"inputs": "word " * 400},
            413,
            "Validation",
            "402 tokens, more than the maximum of 256",
        ),
        ("/predict", {"inputs": "x"}, 424, "Validation", "/predict needs a text-classification"),
    ],
)
def test_contract_errors(embed_server, path, body, status, error_type, words):
    assert_error(post(embed_server, path, body), status, error_type, words)


def test_openai_route_errors_take_teis_openai_shape(embed_server):
    """TEI answers its OpenAI route's errors as {"message", "code", "type"}, which the OpenAI SDK
    quotes in its exception (test_clients.py shows it)."""
    response = post(embed_server, "/v1/embeddings", {"input": "x", "encoding_format": "int8"})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"message", "code", "type"}
    assert (body["code"], body["type"]) == (422, "Validation")
    assert "encoding_format" in body["message"]


def test_truncate_true_cuts_instead_of_failing(embed_server):
    assert post(embed_server, "/embed", {"inputs": "word " * 400, "truncate": True}).ok


def test_unknown_route_wrong_method_and_media_type(embed_server):
    assert_error(requests.get(embed_server + "/nowhere"), 404, "Validation", "no route /nowhere")
    response = requests.get(embed_server + "/embed")
    assert_error(response, 405, "Validation", "/embed takes POST, not GET")
    assert response.headers["Allow"] == "POST"
    response = requests.post(embed_server + "/embed", data="inputs=x")
    assert_error(response, 415, "Validation", "application/json")


def test_head_answers_like_get_without_a_body(embed_server):
    """RFC 9110 §9.3.2: HEAD is GET without the content; load balancers probe with it."""
    got, head = requests.get(embed_server + "/health"), requests.head(embed_server + "/health")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Type"] == got.headers["Content-Type"] == "application/json"
    response = requests.head(embed_server + "/embed")
    assert (response.status_code, response.content) == (405, b"")
    assert response.headers["Allow"] == "POST"
    response = requests.post(embed_server + "/health", json={})
    assert_error(response, 405, "Validation", "/health takes GET, HEAD, not POST")
    assert response.headers["Allow"] == "GET, HEAD"


def test_wrong_task_routes_on_a_classifier(classify_server):
    assert_error(
        post(classify_server, "/embed", {"inputs": "x"}),
        424,
        "Validation",
        "needs a feature-extraction",
    )
    body = {"query": "q", "texts": ["a"]}
    assert_error(post(classify_server, "/rerank", body), 424, "Validation", "3 labels")


def test_hostile_bodies_get_4xx_and_the_server_keeps_answering(embed_server):
    cases = [
        (json.dumps({"inputs": "a" * 10_000_000}).encode(), 413),
        (json.dumps({"inputs": ["x"] * 100_000}).encode(), 413),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"inputs":' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400),
        (b"\x00\x01\x02", 400),
    ]
    for body, status in cases:
        response = post(embed_server, "/embed", body)
        assert response.status_code == status, response.text[:200]
        assert "Traceback" not in response.text
        assert requests.get(embed_server + "/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/embed", '"inputs": "a"'),
        ("/v1/embeddings", '"input": "a"'),
        ("/similarity", '"inputs": {"source_sentence": "a", "sentences": ["b"]}'),
        ("/rerank", '"query": "a", "texts": ["b"]'),
        ("/", '"inputs": "a"'),
    ],
)
def test_a_field_nested_too_deeply_is_a_400_even_where_the_schema_ignores_it(
    embed_server, path, fields
):
    """Unknown fields are skipped (as TEI does), but skipping still descends into them: a deep
    one ran msgspec out of recursion, a 500, where the same depth in `inputs` was a 400."""
    for deep in ("[" * 50_000 + "]" * 50_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        response = post(embed_server, path, f'{{{fields}, "extra": {deep}}}'.encode())
        assert response.status_code == 400, response.text[:200]
        assert "nested too deeply" in response.text


def test_api_key_guards_every_route_but_health(minilm_bundle):
    with local_server(minilm_bundle, env={"BERTLESS_API_KEY": "s3cret"}) as url:
        assert requests.get(url + "/health").status_code == 200
        response = post(url, "/embed", {"inputs": "x"})
        assert_error(response, 401, "Validation", "missing or wrong API key")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_error(
            requests.get(url + "/info", headers={"Authorization": "Bearer nope"}),
            401,
            "Validation",
            "API key",
        )
        assert post(url, "/embed", {"inputs": "x"}, {"Authorization": "Bearer s3cret"}).ok
        assert requests.get(url + "/info", headers={"Authorization": "Bearer s3cret"}).json()[
            "auth"
        ]


def test_a_bundle_that_fails_to_load_answers_503_not_a_crash(minilm_bundle, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(minilm_bundle, broken)
    (broken / "model.onnx").unlink()
    with local_server(broken) as url:
        assert_error(requests.get(url + "/health"), 503, "Unhealthy", "model.onnx is missing")
        assert_error(post(url, "/embed", {"inputs": "x"}), 503, "Unhealthy", "failed to load")


# -- clients people already use --------------------------------------------------------------------


def test_openai_client_works_unchanged(embed_server, minilm):
    import openai

    client = openai.OpenAI(base_url=embed_server + "/v1", api_key="unused")
    result = client.embeddings.create(input=["hello world", "second text"], model="minilm")
    vectors = np.array([d.embedding for d in result.data])
    np.testing.assert_allclose(vectors, minilm.encode(["hello world", "second text"]), atol=1e-6)
    assert result.usage.prompt_tokens == 8


def test_huggingface_inference_client_works_unchanged(embed_server, minilm):
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=embed_server)
    vector = client.feature_extraction("hello world")
    np.testing.assert_allclose(np.asarray(vector)[0], minilm.encode("hello world"), atol=1e-6)
    scores = client.sentence_similarity("a cat", other_sentences=["a kitten", "taxes"])
    assert scores[0] > scores[1]


# -- concurrency ---------------------------------------------------------------------------------


def rss_of_tree(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def test_eight_threads_get_the_sequential_answers_and_memory_stays_flat(embed_server):
    texts = [f"request {i}: " + "some words " * (i % 13) for i in range(40)]
    expected = {t: post(embed_server, "/embed", {"inputs": t}).json() for t in texts}
    session_per_thread: dict[int, requests.Session] = {}

    def call(k: int) -> bool:
        import threading

        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        text = texts[k % len(texts)]
        response = session.post(embed_server + "/embed", json={"inputs": text}, timeout=60)
        return response.status_code == 200 and response.json() == expected[text]

    # Memory is compared once each burst is over and malloc's free pages have gone back
    # (core.batcher: after QUIET_S idle); polled for up to 30 s, the size is what is asserted.
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(call, range(100)))
        time.sleep(2 * QUIET_S)
        baseline = rss_of_tree(embed_server.pid)
        results = list(pool.map(call, range(8 * 200)))
    assert all(results), f"{results.count(False)} of {len(results)} requests failed or differed"
    for _ in range(300):
        after = rss_of_tree(embed_server.pid)
        if after <= baseline * 1.10:
            break
        time.sleep(0.1)
    assert after <= baseline * 1.10, f"RSS grew from {baseline} to {after} bytes"
