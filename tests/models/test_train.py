"""Fine-tuning: data loading and its errors, balanced batches, and a tiny model that learns."""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bertless import Predictor
from bertless.cli.models import add_parsers
from bertless.core.errors import InputError
from bertless.models import vader
from bertless.models.batching import balanced_sample, length_batches
from bertless.models.checkpoint import describe
from bertless.models.data import load_labelled, load_texts
from bertless.models.train import train

GOOD = ["great", "wonderful", "loved", "brilliant", "superb", "delightful", "fun", "excellent"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "painful", "worst", "horrible"]
PLAIN = ["the", "film", "movie", "story", "actors", "plot", "it", "was", "and", "a"]
LABELS = ["negative", "neutral", "positive"]


def tiny_bert(
    folder: Path,
    vocab: Path,
    layers: int = 2,
    labels: list[str] | None = None,
    pooling: bool = False,
    seed: int = 0,
    problem_type: str = "single_label_classification",
) -> Path:
    """A random BERT (hidden size 32) with MiniLM's real vocabulary: a classifier if `labels`
    is given (of `problem_type`), else an encoder, with sentence-transformers' mean pooling files
    if `pooling`.

    At BERT's usual initialization (0.02) a random model says nearly the same for every text and
    learns little in a few dozen steps; a wider one (0.3) without dropout answers differently
    per text, so a student has something to match and training visibly lowers the loss."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        config.problem_type = problem_type
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(config)
    model.save_pretrained(folder)
    shutil.copyfile(vocab / "vocab.txt", folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true, "model_max_length": 64}')
    if pooling:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def review(rng: random.Random, label: str) -> str:
    """A short made-up review whose sentiment words give its label away."""
    words = rng.sample(PLAIN, 4)
    if label != "neutral":
        words += rng.sample(GOOD if label == "positive" else BAD, 2)
    rng.shuffle(words)
    return " ".join(words)


def reviews(counts: dict[str, int], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = [
        {"text": review(rng, label), "label": label}
        for label, n in counts.items()
        for _ in range(n)
    ]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, minilm_path) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny") / "encoder", minilm_path)


@pytest.fixture(scope="module")
def imbalanced_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    return write_csv(path, reviews({"negative": 60, "neutral": 12, "positive": 48}))


# -- data ------------------------------------------------------------------------------------


def test_load_labelled_reads_csv_jsonl_and_parquet_alike(tmp_path, imbalanced_csv):
    import pandas as pd

    frame = pd.read_csv(imbalanced_csv)
    frame.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "r.parquet")
    loaded = [
        load_labelled(p) for p in (imbalanced_csv, tmp_path / "r.jsonl", tmp_path / "r.parquet")
    ]
    assert all(d.texts == loaded[0].texts and d.labels == loaded[0].labels for d in loaded)
    assert loaded[0].names == LABELS
    assert Counter(loaded[0].labels) == {0: 60, 1: 12, 2: 48}


def test_load_labelled_reads_text_pairs(tmp_path):
    path = write_csv(tmp_path / "pairs.csv", [{"q": "a b", "p": "c d", "label": "yes"}] * 2)
    data = load_labelled(path, text_column="q", pair_column="p")
    assert data.texts == [("a b", "c d")] * 2


def test_missing_column_names_the_columns_and_the_flag(tmp_path):
    path = write_csv(tmp_path / "d.csv", [{"text": "fine", "sentiment": "positive"}])
    with pytest.raises(
        InputError, match=r"has no column 'label' \(it has text, sentiment\): set --label-column\."
    ):
        load_labelled(path)


def test_unknown_label_names_the_row_and_the_known_labels(tmp_path):
    path = write_csv(
        tmp_path / "d.csv", [{"text": "fine", "label": "positive"}, {"text": "eh", "label": "meh"}]
    )
    with pytest.raises(
        InputError,
        match=r"row 2 has label 'meh', which is not one of negative, neutral, positive\.",
    ):
        load_labelled(path, labels=LABELS)


def test_empty_file_and_file_without_rows_are_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match=r"empty\.csv is empty\."):
        load_labelled(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(InputError, match=r"header\.csv has no rows\."):
        load_labelled(tmp_path / "header.csv")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(InputError, match=r"has no texts\."):
        load_texts(tmp_path / "empty.txt")


def test_blank_text_and_blank_label_are_refused(tmp_path):
    path = write_csv(
        tmp_path / "d.csv", [{"text": "ok", "label": "a"}, {"text": " ", "label": "b"}]
    )
    with pytest.raises(InputError, match=r"row 2 has no text in column 'text'\."):
        load_labelled(path)
    path = write_csv(
        tmp_path / "e.csv", [{"text": "ok", "label": "a"}, {"text": "ok", "label": ""}]
    )
    with pytest.raises(InputError, match=r"row 2 has no label in column 'label'\."):
        load_labelled(path)


def test_unknown_file_type_is_refused(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"cannot tell how to read it\."):
        load_labelled(tmp_path / "d.xlsx")


def test_a_label_with_one_example_cannot_be_validated(tmp_path, encoder):
    data = load_labelled(write_csv(tmp_path / "d.csv", reviews({"positive": 10, "neutral": 1})))
    with pytest.raises(InputError, match=r"label 'neutral' has a single example"):
        train(data, tmp_path / "out", encoder, show_progress=False)


def test_single_label_data_is_refused(tmp_path, encoder):
    data = load_labelled(write_csv(tmp_path / "d.csv", reviews({"positive": 10})))
    with pytest.raises(InputError, match=r"single label: a classifier needs at least two\."):
        train(data, tmp_path / "out", encoder, show_progress=False)


# -- batches ---------------------------------------------------------------------------------


def test_balanced_sampling_draws_every_label_equally_from_imbalanced_data():
    labels = [0] * 900 + [1] * 90 + [2] * 10
    drawn = balanced_sample(labels, 1000, np.random.default_rng(0))
    counts = Counter(labels[i] for i in drawn)
    assert sorted(counts.values()) == [333, 333, 334]
    assert len({i for i in drawn if labels[i] == 0}) == counts[0]  # common: distinct examples
    rare = Counter(i for i in drawn if labels[i] == 2)
    assert max(rare.values()) - min(rare.values()) <= 1  # rare: each repeated equally


def test_length_batches_use_every_index_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=1000)
    batches = length_batches(range(1000), lengths, 16, rng)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 5


# -- training --------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_writes_a_folder_export_takes(
    tmp_path, encoder, imbalanced_csv
):
    from bertless.models.export import export

    data = load_labelled(imbalanced_csv)
    trained = train(
        data,
        tmp_path / "model",
        encoder,
        epochs=6,
        max_length=16,
        batch_size=8,
        learning_rate=1e-3,
        patience=100,
        show_progress=False,
    )
    losses = [c.train_loss for c in trained.fit.checks[1:]]
    assert losses[-1] < 0.7 * losses[0]
    assert trained.labels == LABELS
    assert describe(tmp_path / "model").task == "text-classification"
    export(tmp_path / "model", tmp_path / "bundle")
    best = Predictor.load(tmp_path / "bundle").predict("a superb and delightful film")
    assert {s["label"] for s in best} == set(LABELS)


def test_train_command_writes_model_bundle_and_report(
    tmp_path, encoder, imbalanced_csv, monkeypatch
):
    monkeypatch.setenv("BERTLESS_EPOCHS", "1")
    top = argparse.ArgumentParser()
    add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(
        [
            "train",
            str(encoder),
            str(imbalanced_csv),
            "--out",
            str(tmp_path / "out"),
            "--max-length",
            "16",
            "--quiet",
        ]
    )
    assert args.epochs == 1
    assert args.run(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (row,) = report["rows"]
    assert set(row["quality"]) == {"validation macro-F1", "validation accuracy"}
    assert row["fits"] and all(row["fits"].values())
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    assert Predictor.load(tmp_path / "out" / "bundle").manifest.labels == LABELS


# -- the offline sentiment dataset -----------------------------------------------------------


def test_vader_download_parses_every_domain():
    counts = {d: len(vader.load(d)) for d in vader.DOMAINS}
    assert counts == {"movies": 10_605, "tweets": 4_200, "products": 3_708, "news": 5_190}
    movies = vader.load("movies")
    assert movies.names == ["negative", "neutral", "positive"]
    assert Counter(movies.labels) == {0: 5061, 1: 562, 2: 4982}
    assert movies.texts[2] == "Effective but too tepid biopic"  # rated -0.6
    assert movies.labels[2] == 0
    assert load_texts("vader:tweets")[1] == "Yay. Another good phone interview."


def test_vader_thresholds_and_bad_domain():
    assert [vader.sentiment(s) for s in (-0.6, -0.5, 0.0, 0.5, 0.51)] == [
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
    ]
    with pytest.raises(InputError, match=r"vader:films is not a domain"):
        load_labelled("vader:films")
