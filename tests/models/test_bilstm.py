"""The BiLSTM student: it moves toward its teacher, its bundle answers as its PyTorch module
does, and options it cannot take are refused in a sentence."""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
import pytest
import torch
from test_train import LABELS, review, tiny_bert

from bertless import Predictor
from bertless.cli.models import add_parsers
from bertless.core.errors import InputError
from bertless.models.bilstm import (
    build,
    distill_bilstm,
    load,
    reduce_table,
    reverse_within,
    teacher_table,
)
from bertless.models.bilstm_export import reference
from bertless.models.distill import Distilled, Teacher

DIM, HIDDEN = 16, 16


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(2)
    return [review(rng, rng.choice(LABELS)) for _ in range(120)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, minilm_path) -> Teacher:
    root = tmp_path_factory.mktemp("teacher")
    folder = tiny_bert(root / "model", minilm_path, layers=2, labels=LABELS, seed=11)
    return Teacher.prepare(folder, root / "bundle")


def distill_small(teacher: Teacher, texts: list[str], out, **options) -> Distilled:
    """A BiLSTM of 16 dimensions and 16 units each way, in a few seconds."""
    settings = {
        "dim": DIM,
        "hidden": HIDDEN,
        "epochs": 6,
        "max_length": 16,
        "batch_size": 8,
        "learning_rate": 1e-2,
        "held_out_fraction": 0.25,
        "patience": 100,
        "show_progress": False,
    }
    return distill_bilstm(teacher, texts, out, **(settings | options))


@pytest.fixture(scope="module")
def student(tmp_path_factory, teacher, texts) -> Distilled:
    return distill_small(teacher, texts, tmp_path_factory.mktemp("bilstm"))


def agreement(labels: np.ndarray, teacher: Teacher, texts: list[str]) -> float:
    said = Predictor.load(teacher.bundle).classify(texts, truncate=True).values.argmax(axis=1)
    return float((labels == said).mean())


def test_training_brings_the_students_labels_toward_the_teachers(student, teacher, texts):
    torch.manual_seed(0)  # as distill_bilstm does: the same untrained student
    untrained = build(teacher, DIM, HIDDEN, dropout=0.1).eval()
    before = reference(untrained, teacher, texts, 16).argmax(axis=1)
    after = Predictor.load(student.bundle).classify(texts, truncate=True).values.argmax(axis=1)
    assert agreement(after, teacher, texts) > agreement(before, teacher, texts) + 0.2
    assert student.distance_after < student.distance_before / 2
    # the table stays the teacher's, reduced: only the LSTM and the head learned
    table = load(student.folder).embed.weight.detach().numpy()
    np.testing.assert_array_equal(table, reduce_table(teacher_table(teacher), DIM))


def test_the_bundle_is_an_ordinary_classifier_bundle_that_says_bilstm(student, teacher):
    predictor = Predictor.load(student.bundle)
    manifest = predictor.manifest
    assert (manifest.architecture, manifest.task, manifest.labels) == (
        "bilstm",
        "text-classification",
        LABELS,
    )
    assert (manifest.inputs, manifest.output) == (["input_ids", "attention_mask"], "logits")
    assert (manifest.parity.metric, manifest.parity.sentences) == ("max_abs_diff", 11)
    assert manifest.parity.mean < 1e-4  # padded batches in the bundle, one text at a time in torch
    ranked = predictor.predict("a dull and painful film")
    assert {s["label"] for s in ranked} == set(LABELS)
    assert sum(s["score"] for s in ranked) == pytest.approx(1.0, abs=1e-5)


def test_the_service_serves_a_bilstm_bundle_as_the_predictor_answers(student):
    from bertless.core.service import Request, Service

    body = json.dumps({"inputs": "a dull and painful film"}).encode()
    response = Service.from_bundle(student.bundle).handle(
        Request("POST", "/predict", {"Content-Type": "application/json"}, body)
    )
    assert response.status == 200
    served = json.loads(response.body)
    expected = Predictor.load(student.bundle).predict("a dull and painful film")
    assert [s["label"] for s in served] == [s["label"] for s in expected]
    assert [s["score"] for s in served] == pytest.approx([s["score"] for s in expected], abs=1e-6)


def test_the_onnx_graph_gives_the_pytorch_modules_logits_for_the_same_ids(student, texts):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    module = load(student.folder)
    tokenizer = Tokenizer.from_file(str(student.bundle / "tokenizer.json"))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch([texts[0], "bad.", texts[1] + " " + texts[2]])
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    assert len(set(mask.sum(axis=1))) == 3  # three lengths: two rows carry padding

    session = ort.InferenceSession(str(student.bundle / "model.onnx"))
    (ours,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
    with torch.inference_mode():
        expected = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # Padding changes nothing: each text alone gives what it gave in the padded batch.
    for row, encoding in enumerate(encodings):
        n = sum(encoding.attention_mask)
        alone = torch.tensor([encoding.ids[:n]]), torch.ones((1, n), dtype=torch.long)
        with torch.inference_mode():
            np.testing.assert_allclose(module(*alone)[0].numpy(), expected[row], atol=1e-5)


def test_reverse_within_reverses_each_row_up_to_its_length_and_leaves_padding():
    values = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]).unsqueeze(-1)
    reversed_ = reverse_within(values, torch.tensor([3, 2])).squeeze(-1)
    assert reversed_.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_reduce_table_is_principal_component_analysis():
    from sklearn.decomposition import PCA

    table = np.random.default_rng(0).normal(size=(200, 12)) @ np.diag(np.arange(12, 0, -1))
    ours = reduce_table(table, 4)
    theirs = PCA(n_components=4, svd_solver="full").fit_transform(table)
    signs = np.sign((ours * theirs).sum(axis=0))  # each component is defined up to its sign
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-4)


def test_an_int8_bundle_is_smaller_and_mostly_agrees(tmp_path, teacher, texts, student):
    small = distill_small(teacher, texts, tmp_path, quantize="int8")
    sizes = [(d.bundle / "model.onnx").stat().st_size for d in (student, small)]
    assert sizes[1] < sizes[0] / 2
    fp32, int8 = (
        Predictor.load(d.bundle).classify(texts, truncate=True).values.argmax(axis=1)
        for d in (student, small)
    )
    assert (fp32 == int8).mean() > 0.9


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dim": 0}, r"--dim must be between 1 and the teacher's embedding width 32, not 0\."),
        ({"dim": 33}, r"--dim must be between 1 and the teacher's embedding width 32, not 33\."),
        ({"hidden": 0}, r"--hidden must be at least 1, not 0\."),
        ({"epochs": 0}, r"epochs must be at least 1, not 0\."),
    ],
)
def test_bad_sizes_are_refused(tmp_path, teacher, texts, options, message):
    with pytest.raises(InputError, match=message):
        distill_small(teacher, texts, tmp_path, **options)


def test_the_default_width_is_the_teachers_when_it_is_narrower(tmp_path, teacher, texts):
    """128 dimensions by default, but this teacher's table has 32: no --dim error unasked."""
    distill_small(teacher, texts[:60], tmp_path, dim=None, epochs=1)
    assert json.loads((tmp_path / "model" / "bilstm.json").read_text())["dim"] == 32


def test_an_embedding_teacher_is_refused(tmp_path, minilm_path, texts):
    folder = tiny_bert(tmp_path / "encoder", minilm_path, pooling=True)
    embedder = Teacher.prepare(folder, tmp_path / "bundle")
    with pytest.raises(InputError, match=r"embedding model, and the BiLSTM student is for class"):
        distill_small(embedder, texts, tmp_path / "out")


def test_a_bundle_teacher_is_refused(tmp_path, teacher, texts):
    bundle_only = Teacher.prepare(teacher.bundle, tmp_path / "unused")
    with pytest.raises(InputError, match=r"is a bundle, which has no PyTorch embedding table"):
        distill_small(bundle_only, texts, tmp_path / "out")


def distill_command(*words: str) -> int:
    top = argparse.ArgumentParser()
    add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(["distill", *words, "--max-length", "16", "--quiet"])
    return args.run(args)


def test_distill_command_builds_and_reports_a_bilstm_student(tmp_path, teacher, texts):
    (tmp_path / "texts.txt").write_text("\n".join(texts[:60]))
    out = tmp_path / "out"
    words = ["--student", "bilstm", "--dim", "8", "--hidden", "8", "--epochs", "2"]
    assert (
        distill_command(str(teacher.folder), str(tmp_path / "texts.txt"), "--out", str(out), *words)
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert [row["name"] for row in report["rows"]] == ["teacher", "student"]
    assert 0 <= report["rows"][1]["quality"]["agreement macro-F1"] <= 1
    assert json.loads((out / "model" / "bilstm.json").read_text())["hidden"] == 8
    assert Predictor.load(out / "bundle").manifest.architecture == "bilstm"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (
            ["--student", "bilstm", "--student-layers", "2"],
            r"--student-layers is for --student layers, not --student bilstm\.",
        ),
        (["--dim", "64"], r"--dim is for --student bilstm.*, not --student layers\."),
        (
            ["--student", "bilstm", "--dim", "0"],
            r"--dim must be between 1 and the teacher's embedding width 32, not 0\.",
        ),
    ],
)
def test_distill_command_refuses_flags_of_another_student(tmp_path, teacher, words, message):
    (tmp_path / "texts.txt").write_text("one text\nanother text\n")
    with pytest.raises(InputError, match=message):
        distill_command(
            str(teacher.folder), str(tmp_path / "texts.txt"), "--out", str(tmp_path / "out"), *words
        )
    assert not (tmp_path / "out" / "model").exists()
