"""The static student: a tiny teacher's table, trained in seconds, ranks pairs more like its
teacher than the untrained table does (Spearman through the Predictor, not the training loss);
bad options are refused in one sentence."""

from __future__ import annotations

import argparse
import json
import random
import re

import numpy as np
import pytest
from test_train import LABELS, review, tiny_bert

from bertless import Predictor
from bertless.cli.models import add_parsers
from bertless.core.bundle import load_bundle
from bertless.core.errors import InputError
from bertless.models import static
from bertless.models.distill import Teacher
from bertless.models.report import similarity_quality
from bertless.models.static import (
    StaticTable,
    check_student,
    distill_static,
    initial_table,
    principal_directions,
    quantize_rows,
    sif_weights,
    teacher_pass,
)

SPEARMAN = "held-out Spearman vs teacher"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(2)
    return [review(rng, rng.choice(LABELS)) for _ in range(400)]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, minilm_path) -> Teacher:
    root = tmp_path_factory.mktemp("embedder")
    folder = tiny_bert(root / "model", minilm_path, layers=2, pooling=True, seed=3)
    return Teacher.prepare(folder, root / "bundle")


@pytest.fixture(scope="module")
def targets(teacher, texts) -> np.ndarray:
    return teacher.label(texts)


def distill_small(teacher, texts, targets, out, learning_rate: float):
    """A 16-dimension table, a quarter of the texts held out; learning rate 0 keeps the
    untrained table (the same split, the same start)."""
    return distill_static(
        teacher,
        texts,
        out,
        dim=16,
        targets=targets,
        epochs=4,
        batch_size=32,
        learning_rate=learning_rate,
        held_out_fraction=0.25,
        show_progress=False,
    )


def test_training_brings_the_tables_similarities_toward_the_teachers(
    tmp_path, teacher, texts, targets
):
    before = distill_small(teacher, texts, targets, tmp_path / "before", learning_rate=0.0)
    after = distill_small(teacher, texts, targets, tmp_path / "after", learning_rate=0.05)
    assert before.held_out == after.held_out
    assert after.distance_after < after.distance_before
    theirs = Predictor.load(teacher.bundle)
    untrained = similarity_quality(Predictor.load(before.bundle), theirs, before.held_out)
    trained = similarity_quality(Predictor.load(after.bundle), theirs, after.held_out)
    assert trained[SPEARMAN] > untrained[SPEARMAN] + 0.1
    manifest = Predictor.load(after.bundle).manifest
    assert (manifest.architecture, manifest.dimension, manifest.task) == (
        "static",
        16,
        "feature-extraction",
    )


def test_a_classifier_teacher_is_refused(tmp_path, minilm_path):
    folder = tiny_bert(tmp_path / "model", minilm_path, layers=1, labels=LABELS)
    classifier = Teacher.prepare(folder, tmp_path / "bundle")
    with pytest.raises(InputError, match=r"is a classifier.*--student bilstm"):
        check_student(classifier, 16)


@pytest.mark.parametrize("dim", [0, -3, 33])
def test_a_width_outside_the_teachers_is_refused(teacher, dim):
    with pytest.raises(InputError, match=f"--dim must be between 1 and .* 32, not {dim}"):
        check_student(teacher, dim)


def test_principal_directions_keep_cosines_when_nothing_is_cut():
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    projected = vectors @ principal_directions(vectors, 8).T

    def cosines(v: np.ndarray) -> np.ndarray:
        unit = v / np.linalg.norm(v, axis=1, keepdims=True)
        return unit @ unit.T

    np.testing.assert_allclose(cosines(projected), cosines(vectors), atol=1e-5)


def test_frequent_tokens_weigh_less():
    weights = sif_weights([[1, 1, 1, 1, 2]], size=4, a=0.1)
    # p = (count + 1) / (5 + 4): token 1 seen 4 times, 2 once, 0 and 3 never
    expected = 0.1 / (0.1 + np.array([1, 5, 2, 1]) / 9)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_the_folded_table_gives_what_was_trained():
    """The bundle stores `table()`; its plain mean of rows must be the trained forward pass."""
    import torch

    rng = np.random.default_rng(2)
    net = StaticTable(rng.normal(size=(12, 5)).astype(np.float32), rank=3)
    with torch.no_grad():  # move every part off its start, so that each one is checked
        for part in (net.scale, net.a, net.b, net.map):
            part.add_(torch.from_numpy(rng.normal(size=part.shape).astype(np.float32)))
    ids = torch.tensor([[1, 4, 4, 0], [7, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    with torch.no_grad():
        trained = net(ids, mask).numpy()
    table = net.table()
    expected = np.stack([table[[1, 4, 4]].mean(axis=0), table[[7, 2]].mean(axis=0)])
    np.testing.assert_allclose(trained, expected, rtol=1e-5, atol=1e-6)


def test_the_contextual_start_is_the_mean_of_the_teachers_token_states(teacher, texts):
    """Bommasani et al.'s reduction by hand: a token seen in the texts starts from the mean,
    over its occurrences, of the teacher's last-layer states (PyTorch here, one text at a time;
    the teacher's ONNX bundle in padded batches there)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    few = texts[:6]
    tokenizer = Tokenizer.from_file(str(teacher.bundle / "tokenizer.json"))
    model = BertModel.from_pretrained(teacher.folder).eval()
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for text in few:
        ids = tokenizer.encode(text).ids
        with torch.no_grad():
            states = model(torch.tensor([ids])).last_hidden_state[0].numpy()
        for token, state in zip(ids, states, strict=True):
            sums[token] = sums.get(token, 0) + state
            counts[token] = counts.get(token, 0) + 1
    seen = sorted(counts)

    context = teacher_pass(load_bundle(teacher.bundle), few)
    assert np.flatnonzero(context.counts).tolist() == seen
    assert context.counts[seen].tolist() == [counts[t] for t in seen]
    directions = np.eye(32, dtype=np.float32)[:16]  # the first 16 coordinates, for a plain check
    ids = [tokenizer.encode(text).ids for text in few]
    rows = initial_table(teacher, tokenizer, ids, directions, context)
    expected = np.stack([sums[t] / counts[t] for t in seen])[:, :16]
    np.testing.assert_allclose(rows[seen], expected, rtol=1e-4, atol=1e-4)


def test_held_out_texts_never_reach_the_teacher_with_the_training_ones(
    tmp_path, teacher, monkeypatch
):
    """The token states and the recombinations come from the texts learnt from only: no word of
    a held-out text is in what the teacher is run over for them."""
    texts = [f"w{i}a w{i}b w{i}c w{i}d" for i in range(40)]
    passed: list[str] = []

    def spy(bundle, given):
        passed.extend(given)
        return teacher_pass(bundle, given)

    monkeypatch.setattr(static, "teacher_pass", spy)
    distilled = distill_static(
        teacher, texts, tmp_path, dim=8, epochs=1, recombine=2, show_progress=False
    )
    held_words = {word for text in distilled.held_out for word in text.split()}
    learnt = [text for text in texts if text not in distilled.held_out]
    # the texts, two rounds of recombinations, then one round of rare-word copies
    assert len(passed) == 4 * len(learnt)
    assert set(passed[: len(learnt)]) == set(learnt)
    assert not held_words & {word for text in passed for word in text.split()}


def test_int8_rows_round_trip_within_half_a_step():
    table = np.random.default_rng(1).normal(size=(20, 6)).astype(np.float32)
    table[3] = 0  # a row of zeros keeps a usable scale
    rows, scales = quantize_rows(table)
    assert rows.dtype == np.int8 and np.isfinite(scales).all()
    np.testing.assert_allclose(rows * scales[:, None], table, atol=float(scales.max()) / 2 + 1e-7)


def static_command(*words: str) -> int:
    """`bertless distill WORDS… --student static` as the command line runs it."""
    top = argparse.ArgumentParser()
    add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(["distill", *words, "--student", "static", "--quiet"])
    return args.run(args)


def test_the_distill_command_reports_the_static_student(tmp_path, teacher, texts):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts[:120]))
    out = tmp_path / "out"
    assert static_command(str(teacher.bundle), str(data), "--dim", "8", "--out", str(out)) == 0
    report = json.loads((out / "report.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names[:2] == ["teacher", "student"]  # a bundle teacher: no model2vec baseline
    assert report["rows"][1]["quality"][SPEARMAN] <= 1.0
    assert Predictor.load(out / "bundle").manifest.dimension == 8


def test_ten_texts_hold_three_out_and_three_are_refused_before_any_work(tmp_path, teacher, texts):
    """The report ranks held-out pairs' similarities, which needs three texts: a tenth of 10 is
    one, so three are held out; with 3 texts none would be left to learn from."""
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts[:3]))
    with pytest.raises(InputError, match=r"needs at least 4 texts: 3 held out"):
        static_command(str(teacher.bundle), str(data), "--dim", "8", "--out", str(tmp_path / "a"))
    data.write_text("\n".join(texts[:10]))
    words = ["--dim", "8", "--epochs", "1", "--out", str(tmp_path / "b")]
    assert static_command(str(teacher.bundle), str(data), *words) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert -1.0 <= report["rows"][1]["quality"][SPEARMAN] <= 1.0


def test_the_default_width_is_the_teachers_when_it_is_narrower(tmp_path, teacher, texts):
    """256 dimensions by default, but this teacher's embeddings have 32: no --dim error unasked."""
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts[:60]))
    out = tmp_path / "out"
    assert static_command(str(teacher.bundle), str(data), "--epochs", "1", "--out", str(out)) == 0
    assert Predictor.load(out / "bundle").manifest.dimension == 32


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--dim", "0"], "--dim must be between 1 and the teacher's embedding width 32, not 0"),
        (["--dim", "33"], "--dim must be between 1 and the teacher's embedding width 32, not 33"),
        (["--hidden", "8"], "--hidden is for --student bilstm, not --student static"),
        (["--student-layers", "1"], "--student-layers is for --student layers, not --student"),
        (["--dim", "8", "--recombine", "-1"], "--recombine must be 0 or more, not -1"),
        (["--dim", "8", "--rare-words", "-1"], "--rare-words must be 0 or more, not -1"),
        (["--eval", "labelled.csv"], "is an embedding model, and --eval reads a labelled file"),
    ],
)
def test_bad_options_get_one_sentence(tmp_path, teacher, texts, words, message):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts[:20]))
    with pytest.raises(InputError, match=re.escape(message)):
        static_command(str(teacher.bundle), str(data), *words, "--out", str(tmp_path / "out"))


def test_a_saved_model2vec_model_becomes_a_static_bundle(tmp_path, teacher):
    """A folder laid out as model2vec saves one: float16 table, config, its own tokenizer."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer

    from bertless.models.static_baseline import import_model2vec

    saved = tmp_path / "saved"
    saved.mkdir()
    tokenizer = Tokenizer.from_file(str(teacher.bundle / "tokenizer.json"))
    size = tokenizer.get_vocab_size(True)
    table = np.random.default_rng(4).normal(size=(size, 12)).astype(np.float16)
    save_file({"embeddings": table}, str(saved / "model.safetensors"))
    (saved / "config.json").write_text(json.dumps({"normalize": False}))
    (saved / "tokenizer.json").write_text((teacher.bundle / "tokenizer.json").read_text())
    bundle = import_model2vec(saved, tmp_path / "bundle", max_length=64)
    got = Predictor.load(bundle).encode(["a fine film", "dull"])
    expected = [
        table[tokenizer.encode(t).ids].astype(np.float32).mean(axis=0)
        for t in ("a fine film", "dull")
    ]
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)
    with pytest.raises(InputError, match="is not a saved model2vec model"):
        import_model2vec(tmp_path / "bundle", tmp_path / "again")
