"""The static engine: a table's vectors equal a hand-computed numpy mean of its rows, through the
Predictor, with no onnxruntime imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tokenizers import Tokenizer

from bertless import Predictor
from bertless.core.bundle import (
    EMBEDDINGS_NAME,
    MANIFEST_NAME,
    SCALES_NAME,
    load_bundle,
    read_manifest,
)
from bertless.core.errors import BundleError
from bertless.models.distill import Teacher
from bertless.models.static import write_bundle

TEXTS = ["a cat sat on the mat", "Static tables answer in microseconds.", "ok", "   "]
DIM = 24


@pytest.fixture(scope="module")
def teacher(minilm_bundle) -> Teacher:
    """Only the teacher's tokenizer and manifest are read: no model runs."""
    return Teacher(minilm_bundle, None, read_manifest(minilm_bundle))


@pytest.fixture(scope="module")
def table(teacher) -> np.ndarray:
    size = Tokenizer.from_file(str(teacher.bundle / "tokenizer.json")).get_vocab_size(True)
    return np.random.default_rng(0).normal(size=(size, DIM)).astype(np.float32)


def by_hand(tokenizer_path, table: np.ndarray, normalize: bool) -> np.ndarray:
    """Each text's token rows averaged in plain numpy, one text at a time."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    rows = np.stack([table[tokenizer.encode(t).ids].mean(axis=0) for t in TEXTS])
    if normalize:
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_vectors_are_the_mean_of_the_table_rows(tmp_path, teacher, table, quantize):
    manifest = write_bundle(table, teacher, tmp_path, quantize)
    assert (manifest.architecture, manifest.dimension, manifest.precision) == (
        "static",
        DIM,
        quantize or "fp32",
    )
    predictor = Predictor.load(tmp_path)
    got = predictor.encode(TEXTS, batch_size=3)  # padded batches of mixed lengths
    if quantize:  # each row rounded to 1/127 of its largest magnitude
        scale = np.abs(table).max(axis=1, keepdims=True) / 127
        table = np.rint(table / scale) * scale
    expected = by_hand(tmp_path / "tokenizer.json", table, teacher.manifest.normalize)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    raw = predictor.encode(TEXTS[0], normalize_embeddings=False)
    np.testing.assert_allclose(raw, by_hand(tmp_path / "tokenizer.json", table, False)[0], 1e-5)


def test_info_says_a_static_bundle_is_a_table(tmp_path, teacher, table):
    from bertless.core.service import Request, Service

    write_bundle(table, teacher, tmp_path)
    info = Service.from_bundle(tmp_path).handle(Request("GET", "/info", {}, b"")).json()
    assert (info["architecture"], info["dimension"]) == ("static", DIM)


def test_a_static_bundle_never_imports_onnxruntime(tmp_path, teacher, table):
    write_bundle(table, teacher, tmp_path)
    code = (
        "import sys, json; from bertless import Predictor; "
        f"p = Predictor.load({str(tmp_path)!r}); v = p.encode('hello there'); "
        "print(json.dumps([v.shape[0], 'onnxruntime' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [DIM, False]


def test_a_table_of_another_width_than_the_manifest_says_is_refused(tmp_path, teacher, table):
    write_bundle(table, teacher, tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["dimension"] = DIM + 1
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="different exports"):
        Predictor.load(tmp_path)


def test_a_static_manifest_must_list_its_table(tmp_path, teacher, table):
    write_bundle(table, teacher, tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    del manifest["files"][EMBEDDINGS_NAME]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"no checksum for {EMBEDDINGS_NAME}"):
        load_bundle(tmp_path)


def resave(bundle, table: np.ndarray) -> None:
    """Replace a bundle's table after export (loaded with verify=False, past the checksums)."""
    (bundle / SCALES_NAME).unlink(missing_ok=True)
    np.save(bundle / EMBEDDINGS_NAME, table)


@pytest.mark.parametrize("rows", [0, 1000])
def test_a_table_shorter_than_the_vocabulary_is_refused_at_load(tmp_path, teacher, table, rows):
    """A token id past the table's end was an IndexError at the first request (a 500 under
    serve, with /health saying ok); the tokenizer's vocabulary is known at load."""
    write_bundle(table, teacher, tmp_path)
    resave(tmp_path, table[:rows])
    with pytest.raises(BundleError, match=f"has {rows:,} rows but the bundle's tokenizer has "):
        Predictor.load(tmp_path, verify=False)


@pytest.mark.parametrize("dtype", ["<U3", np.complex64, np.int32, np.bool_])
def test_a_table_of_anything_but_floats_or_int8_is_refused(tmp_path, teacher, table, dtype):
    """A table of strings was a ValueError that killed the server's worker; complex numbers and
    other integers were cast to float32 without a word."""
    write_bundle(table, teacher, tmp_path)
    resave(tmp_path, table.astype(dtype))
    with pytest.raises(BundleError, match=r"holds \S+ values, not float or int8 ones"):
        Predictor.load(tmp_path, verify=False)


def test_a_flat_int8_table_is_named_by_its_shape_not_its_scales(tmp_path, teacher, table):
    write_bundle(table, teacher, tmp_path, "int8")
    np.save(tmp_path / EMBEDDINGS_NAME, np.load(tmp_path / EMBEDDINGS_NAME).reshape(-1))
    with pytest.raises(BundleError, match=rf"has shape \({table.size},\), not \(vocabulary, 24\)"):
        Predictor.load(tmp_path, verify=False)


def test_a_static_manifest_of_another_task_is_named_by_its_task(tmp_path, teacher, table):
    """It was named by a shape '(vocabulary, None)' that no table can have."""
    write_bundle(table, teacher, tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest.update(task="text-classification", labels=["no", "yes"], dimension=None)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="says its task is text-classification, but a static"):
        Predictor.load(tmp_path)
