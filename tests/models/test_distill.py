"""Distillation: tiny teachers, students that move toward them, the report and its errors."""

from __future__ import annotations

import argparse
import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
from test_train import LABELS, review, tiny_bert

from bertless import Predictor
from bertless.cli.models import add_parsers
from bertless.core.errors import InputError
from bertless.models.distill import Distilled, Teacher, distill, layers_to_keep
from bertless.models.report import label_agreement, measure, render, similarity_quality, to_json

TOPICS = ["sports", "politics", "tech", "food"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(1)
    return [review(rng, rng.choice(LABELS)) for _ in range(80)]


@pytest.fixture(scope="module")
def classifier_teacher(tmp_path_factory, minilm_path) -> Teacher:
    root = tmp_path_factory.mktemp("teacher")
    folder = tiny_bert(root / "model", minilm_path, layers=2, labels=LABELS)
    return Teacher.prepare(folder, root / "bundle")


@pytest.fixture(scope="module")
def embedding_teacher(tmp_path_factory, minilm_path) -> Teacher:
    root = tmp_path_factory.mktemp("embedder")
    folder = tiny_bert(root / "model", minilm_path, layers=2, pooling=True, seed=3)
    return Teacher.prepare(folder, root / "bundle")


@pytest.fixture(scope="module")
def distilled_classifier(tmp_path_factory, classifier_teacher, texts):
    out = tmp_path_factory.mktemp("student")
    return distill_quickly(classifier_teacher, texts, out)


@pytest.fixture(scope="module")
def multilabel_teacher(tmp_path_factory, minilm_path) -> Teacher:
    """Not conftest's multilabel_checkpoint: at BERT's usual initialization that one gives every
    text nearly the same scores, which a student matches before it has learned anything."""
    root = tmp_path_factory.mktemp("topics")
    problem = "multi_label_classification"
    folder = tiny_bert(root / "model", minilm_path, labels=TOPICS, seed=7, problem_type=problem)
    return Teacher.prepare(folder, root / "bundle")


def distill_quickly(teacher: Teacher, texts: list[str], out) -> Distilled:
    """A one-layer student in a few seconds, with a quarter of the texts held out to measure it."""
    return distill(
        teacher,
        texts,
        out,
        student_layers=1,
        epochs=4,
        max_length=16,
        batch_size=8,
        learning_rate=3e-3,
        held_out_fraction=0.25,
        patience=100,
        show_progress=False,
    )


def distill_command(*words: str) -> int:
    """`bertless distill WORDS…` as the command line runs it, with a one-layer student."""
    top = argparse.ArgumentParser()
    add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(
        ["distill", *words, "--student-layers", "1", "--epochs", "1", "--max-length", "16"]
    )
    return args.run(args)


def test_layers_to_keep_are_evenly_spaced_and_end_with_the_last():
    assert layers_to_keep(6, 3) == [1, 3, 5]
    assert layers_to_keep(6, 2) == [2, 5]
    assert layers_to_keep(12, 4) == [2, 5, 8, 11]
    assert layers_to_keep(4, 4) == [0, 1, 2, 3]
    with pytest.raises(InputError, match=r"between 1 and 6 layers, not 7\."):
        layers_to_keep(6, 7)


def test_classifier_student_moves_toward_its_teacher(distilled_classifier):
    assert distilled_classifier.distance_after < distilled_classifier.distance_before
    config = json.loads((distilled_classifier.folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    student = Predictor.load(distilled_classifier.bundle)
    assert student.manifest.labels == LABELS
    assert {s["label"] for s in student.predict("a dull and painful film")} == set(LABELS)


def test_embedding_student_moves_toward_its_teacher(tmp_path, embedding_teacher, texts):
    done = distill_quickly(embedding_teacher, texts, tmp_path)
    assert done.distance_after < done.distance_before
    manifest = Predictor.load(done.bundle).manifest
    assert (manifest.task, manifest.pooling, manifest.dimension) == (
        "feature-extraction",
        "mean",
        32,
    )
    teacher = Predictor.load(embedding_teacher.bundle)
    itself = similarity_quality(teacher, teacher, done.held_out)
    assert itself == {"held-out Spearman vs teacher": pytest.approx(1.0)}
    student = similarity_quality(Predictor.load(done.bundle), teacher, done.held_out)
    assert -1.0 <= student["held-out Spearman vs teacher"] <= 1.0


def test_a_bundle_teacher_needs_a_student_folder(tmp_path, classifier_teacher, texts):
    bundle_only = Teacher.prepare(classifier_teacher.bundle, tmp_path / "unused")
    assert bundle_only.folder is None
    with pytest.raises(InputError, match=r"is a bundle, which has no PyTorch weights to shrink"):
        distill(bundle_only, texts, tmp_path, show_progress=False)


def test_a_bundle_teacher_teaches_a_given_student(tmp_path, classifier_teacher, texts, minilm_path):
    student = tiny_bert(tmp_path / "small", minilm_path, layers=1, seed=5)
    bundle_only = Teacher.prepare(classifier_teacher.bundle, tmp_path / "unused")
    done = distill(
        bundle_only,
        texts[:30],
        tmp_path / "out",
        student=student,
        epochs=1,
        max_length=16,
        batch_size=8,
        show_progress=False,
    )
    assert Predictor.load(done.bundle).manifest.labels == LABELS


def test_multi_label_student_moves_toward_its_teacher_and_scores_labels_by_sigmoid(
    tmp_path, multilabel_teacher, texts
):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    done = distill_quickly(multilabel_teacher, texts, tmp_path)
    assert 0 <= done.distance_after < done.distance_before
    student = Predictor.load(done.bundle)
    assert student.manifest.problem_type == "multi_label_classification"
    assert student.manifest.labels == TOPICS
    scores = student.classify(done.held_out, truncate=True).values
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (np.abs(scores.sum(axis=1) - 1) > 0.05).mean() > 0.5  # not a softmax over labels

    text = done.held_out[0]
    model = AutoModelForSequenceClassification.from_pretrained(done.folder).eval()
    with torch.inference_mode():
        logits = model(**AutoTokenizer.from_pretrained(done.folder)(text, return_tensors="pt"))
    expected = torch.sigmoid(logits.logits)[0].numpy()
    np.testing.assert_allclose(student.classify([text]).values[0], expected, atol=1e-4)


def fixed_scores(scores: list[list[float]], labels: list[str] = TOPICS[:3]):
    """A stand-in Predictor that gives these probabilities whatever the texts."""
    values = np.array(scores)
    return SimpleNamespace(
        manifest=SimpleNamespace(labels=labels),
        classify=lambda texts, truncate: SimpleNamespace(values=values),
    )


def test_label_agreement_compares_decisions_per_label():
    teacher = fixed_scores([[0.9, 0.2, 0.7], [0.1, 0.6, 0.4], [0.3, 0.2, 0.1]])  # {0,2} {1} {}
    student = fixed_scores([[0.8, 0.6, 0.3], [0.2, 0.7, 0.1], [0.4, 0.1, 0.9]])  # {0,1} {1} {2}
    texts = ["a", "b", "c"]
    # 2 labels agreed on, 2 said by the student alone, 1 by the teacher alone: F1 = 4 / (4 + 3)
    assert label_agreement(student, teacher, texts) == {
        "agreement micro-F1": pytest.approx(4 / 7),
        "agreement exact match": pytest.approx(1 / 3),
    }
    assert label_agreement(teacher, teacher, texts, "held-out") == {
        "held-out micro-F1": 1.0,
        "held-out exact match": 1.0,
    }
    silent = fixed_scores([[0.1, 0.2, 0.3]])
    assert label_agreement(silent, silent, ["a"])["agreement micro-F1"] == 1.0
    with pytest.raises(InputError, match=r"labels \(a, b\) differ from the teacher's"):
        label_agreement(fixed_scores([[0.1, 0.2]], ["a", "b"]), teacher, texts)


def test_distill_command_reports_multi_label_agreement(tmp_path, multilabel_teacher, texts):
    (tmp_path / "texts.txt").write_text("\n".join(texts[:40]))
    folder, out = str(multilabel_teacher.folder), tmp_path / "out"
    assert distill_command(folder, str(tmp_path / "texts.txt"), "--out", str(out), "--quiet") == 0
    report = json.loads((out / "report.json").read_text())
    teacher, student = (row["quality"] for row in report["rows"])
    assert teacher == {"agreement micro-F1": 1.0, "agreement exact match": 1.0}
    assert set(student) == set(teacher)
    assert all(0 <= value <= 1 for value in student.values())
    assert Predictor.load(out / "bundle").manifest.problem_type == "multi_label_classification"


def test_distill_command_reads_no_eval_file_for_a_multi_label_teacher(tmp_path, multilabel_teacher):
    (tmp_path / "texts.txt").write_text("one text\nanother text\n")
    folder, out = str(multilabel_teacher.folder), str(tmp_path / "out")
    texts = str(tmp_path / "texts.txt")
    with pytest.raises(InputError, match=r"multi-label classifier, and --eval reads .* leave out"):
        distill_command(folder, texts, "--out", out, "--eval", texts)
    assert not (tmp_path / "out" / "model").exists()  # refused before any distilling


def test_an_embedding_teacher_with_three_texts_is_refused(tmp_path, embedding_teacher, texts):
    """Three held-out texts rank the student's similarities, and one must be left to learn."""
    with pytest.raises(InputError, match=r"needs at least 4 texts: 3 held out"):
        distill(embedding_teacher, texts[:3], tmp_path, show_progress=False)


def test_an_embedding_student_of_another_width_is_refused(tmp_path, embedding_teacher, texts):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(tmp_path / "narrow")
    with pytest.raises(
        InputError, match=r"hidden size 16 differs from the teacher's 32-dimensional"
    ):
        distill(
            embedding_teacher,
            texts,
            tmp_path / "out",
            student=tmp_path / "narrow",
            show_progress=False,
        )


def test_report_measures_size_speed_and_platform_fit(distilled_classifier, texts):
    row = measure("student", distilled_classifier.bundle, {"agreement": 1.0}, texts[:10])
    assert 0 < row.zipped_megabytes < row.megabytes
    assert row.ms_per_text > 0 and row.texts_per_second > 0
    assert row.fits == {"AWS Lambda zip upload ≤ 50 MB": True, "AWS Lambda unzipped ≤ 250 MB": True}
    report = to_json([row])
    assert {limit["source"] for limit in report["limits"]} == {
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
    }
    assert render([row], "t").row_count == 1


def test_distill_command_reports_teacher_and_student(tmp_path, classifier_teacher, texts):
    (tmp_path / "texts.txt").write_text("\n".join(texts[:40]))
    folder, out = str(classifier_teacher.folder), str(tmp_path / "out")
    assert distill_command(folder, str(tmp_path / "texts.txt"), "--out", out, "--quiet") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [row["name"] for row in report["rows"]] == ["teacher", "student"]
    assert report["rows"][0]["quality"]["agreement macro-F1"] == pytest.approx(1.0)
    assert report["distance_after"] <= report["distance_before"]
