"""The built-in sentiment classifier's recipe, run end to end on a tiny encoder and small slices."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_train import LABELS, tiny_bert

from bertless.cli import quickstart
from bertless.cli.models import add_parsers
from bertless.core.service import Request, Service
from bertless.local.server import free_port
from bertless.models.labelled import Labelled
from bertless.models.sentiment import (
    BiLSTMRecipe,
    _silver,
    _split,
    build_sentiment,
    install,
    installed,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("sentiment")
    encoder = tiny_bert(root / "encoder", minilm_path, layers=2)
    result = build_sentiment(
        root / "work",
        encoder,
        student_layers=(1,),
        bilstm=BiLSTMRecipe(dim=8, hidden=8, epochs=2, learning_rate=1e-2),
        train_size=120,
        distill_size=80,
        eval_size=60,
        max_length=16,
        show_progress=False,
    )
    return root / "work", result


def test_the_recipe_reports_teacher_and_student_on_three_held_out_domains(built):
    work, result = built
    report = json.loads((work / "report.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == [
        "teacher (2 layers, fp32)",
        "teacher (2 layers, int8)",
        "student (1 layers, int8)",
        "BiLSTM student (8 dimensions, 8 units, int8)",
    ]
    for row in report["rows"]:
        for domain in ("movies", "tweets", "products"):
            assert 0 <= row["quality"][f"{domain} macro-F1"] <= 1
            assert 0 <= row["quality"][f"{domain} accuracy"] <= 1
    # 80 silver texts, an equal share of 20 from each of the four domains
    assert report["recipe"]["silver_texts"] == {
        "movies": 20,
        "tweets": 20,
        "products": 20,
        "news": 20,
    }
    assert "Hutto" in report["data"]["citation"]
    assert result.bundle == work / "student-1" / "bundle"
    student = json.loads((work / "student-1" / "model" / "config.json").read_text())
    assert student["num_hidden_layers"] == 1
    assert json.loads((work / "bilstm" / "bundle" / "bundle.json").read_text())["architecture"] == (
        "bilstm"
    )
    assert report["recipe"]["bilstm"]["hidden"] == 8


def test_the_installed_student_answers_predict_with_the_three_classes(built, tmp_path):
    _, result = built
    target = install(result.bundle, tmp_path / "bundles" / "sentiment")
    assert installed(target)
    service = Service.from_bundle(target)
    response = service.handle(
        Request("POST", "/predict", {"Content-Type": "application/json"}, b'{"inputs": "fine"}')
    )
    assert response.status == 200
    assert {score["label"] for score in json.loads(response.body)} == set(LABELS)


def test_installed_is_false_for_a_missing_damaged_or_embedding_bundle(
    built, tmp_path, minilm_bundle
):
    _, result = built
    target = tmp_path / "sentiment"
    assert not installed(target)
    install(result.bundle, target)
    with (target / "model.onnx").open("r+b") as model:
        model.truncate(100)
    assert not installed(target)
    install(result.bundle, target)  # a fresh copy replaces the damaged one
    assert installed(target)
    assert not installed(Path(minilm_bundle))


def _labelled(prefix: str, size: int) -> Labelled:
    return Labelled([f"{prefix} {i}" for i in range(size)], [i % 3 for i in range(size)], LABELS)


def test_silver_texts_take_equal_shares_and_never_a_held_out_text():
    pools, held = {}, {}
    for domain in ("movies", "tweets"):
        pools[domain], held[domain] = _split(_labelled(domain, 300), 30, seed=0)
    pools["news"] = _labelled("news", 10)  # smaller than its share: all of it is used
    silver = _silver(pools, 200, seed=1)
    assert {domain: len(texts) for domain, texts in silver.items()} == {
        "movies": 67,
        "tweets": 67,
        "news": 10,
    }
    used = {text for texts in silver.values() for text in texts}
    assert len(used) == 144
    for domain in ("movies", "tweets"):
        assert len(held[domain]) == 30
        assert sorted(held[domain].labels) == [0] * 10 + [1] * 10 + [2] * 10
        assert used.isdisjoint(held[domain].texts)


def test_build_sentiment_defaults_to_the_paths_serve_and_the_readme_use():
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(["build-sentiment"])
    assert (args.model, args.out, args.install) == (
        None,
        "build/sentiment",
        "build/bundles/sentiment",
    )
    assert args.student_layers == [3]


def test_quickstart_reuses_an_installed_classifier_and_asks_it(
    built, tmp_path, monkeypatch, capsys
):
    from rich.console import Console

    _, result = built
    monkeypatch.setattr(quickstart, "BUNDLE", install(result.bundle, tmp_path / "sentiment"))
    quickstart._sentiment(Console(width=300), free_port())
    shown = capsys.readouterr().out
    assert "(built earlier; reused)" in shown
    assert "POST /predict to the sentiment classifier" in shown and ": 200" in shown
    for text in quickstart.SENTIMENT_SAMPLES:
        assert text in shown
