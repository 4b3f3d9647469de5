"""Distillation: tiny teachers, students that move toward them, the report and its errors."""

from __future__ import annotations

import argparse
import json
import random

import pytest
from test_train import LABELS, review, tiny_bert

from bertless import Predictor
from bertless.core.errors import InputError
from bertless.models.commands import add_parsers
from bertless.models.distill import Teacher, distill, layers_to_keep
from bertless.models.report import measure, render, similarity_quality, to_json


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
    return distill(
        classifier_teacher,
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
    done = distill(
        embedding_teacher,
        texts,
        tmp_path,
        student_layers=1,
        epochs=4,
        max_length=16,
        batch_size=8,
        learning_rate=3e-3,
        held_out_fraction=0.25,
        patience=100,
        show_progress=False,
    )
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


def test_a_multi_label_teacher_is_refused(tmp_path, multilabel_bundle, texts):
    teacher = Teacher.prepare(multilabel_bundle, tmp_path / "unused")
    with pytest.raises(InputError, match=r"is a multi-label classifier: distill handles"):
        distill(teacher, texts, tmp_path / "out", show_progress=False)


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
    top = argparse.ArgumentParser()
    add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(
        [
            "distill",
            str(classifier_teacher.folder),
            str(tmp_path / "texts.txt"),
            "--out",
            str(tmp_path / "out"),
            "--student-layers",
            "1",
            "--epochs",
            "1",
            "--max-length",
            "16",
            "--quiet",
        ]
    )
    assert args.run(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [row["name"] for row in report["rows"]] == ["teacher", "student"]
    assert report["rows"][0]["quality"]["agreement macro-F1"] == pytest.approx(1.0)
    assert report["distance_after"] <= report["distance_before"]
