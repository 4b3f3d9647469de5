"""`bertless compare`: agreement figures checked against independent references (scikit-learn's
F1, numpy's cosine written out), real bundles and a served URL, and exits that gate CI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bertless.bench.compare import (
    BundleSide,
    Thresholds,
    UrlSide,
    compare,
    cosines,
    macro_f1,
    open_side,
)
from bertless.bench.latency import BenchError
from bertless.bench.texts import SENTENCES
from bertless.cli.main import main

TEXTS = list(SENTENCES[:20])


class Fixed:
    """A side that answers the given labels, in order: a classifier that disagrees on purpose."""

    task = "text-classification"

    def __init__(self, name: str, labels: list[str]):
        self.name, self.labels = name, labels

    def run(self, texts):
        answer, self.labels = self.labels[: len(texts)], self.labels[len(texts) :]
        return answer


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    old = list(rng.choice(["neg", "neu", "pos"], 200))
    new = [label if rng.random() < 0.8 else "pos" for label in old]
    assert macro_f1(old, new) == pytest.approx(f1_score(old, new, average="macro"))


def test_cosines_are_row_by_row():
    old = np.array([[1.0, 0.0], [3.0, 4.0]])
    new = np.array([[0.0, 2.0], [3.0, 4.0]])
    assert cosines(old, new) == pytest.approx([0.0, 1.0])


def test_fp32_against_int8_reports_cosines_below_one(minilm_bundle, minilm_int8_bundle):
    report = compare(BundleSide(minilm_bundle), BundleSide(minilm_int8_bundle), TEXTS)

    assert report.task == "feature-extraction" and report.texts == len(TEXTS)
    assert 0.9 < report.cosine_min <= report.cosine_mean < 0.99999
    assert report.old_ms is not None and report.new_ms is not None


def test_a_bundle_against_itself_served_over_http_agrees(minilm_bundle, embed_server):
    report = compare(BundleSide(minilm_bundle), UrlSide(embed_server), TEXTS, batch_size=8)

    assert report.cosine_min == pytest.approx(1.0, abs=1e-5)
    assert report.under_floor == 0.0 and report.passed


def test_a_classifier_bundle_against_itself_served_over_http_agrees(
    classifier_bundle, classify_server
):
    """A classifier bundle's side sent each text as a 1-tuple, which the Predictor refuses as
    not a pair: comparing any classifier bundle (a BiLSTM student with its teacher) stopped at
    'input 0 is not a pair of two texts'."""
    report = compare(BundleSide(classifier_bundle), UrlSide(classify_server), TEXTS, batch_size=8)

    assert report.task == "text-classification" and report.texts == len(TEXTS)
    assert report.agreement == 1.0 and report.macro_f1 == pytest.approx(1.0)
    assert report.passed


def test_classifier_disagreement_fails_its_thresholds():
    old = ["pos"] * 8 + ["neg"] * 2
    new = ["pos"] * 6 + ["neg"] * 4
    report = compare(Fixed("old", old), Fixed("new", new), ["t"] * 10, batch_size=3)

    assert report.agreement == pytest.approx(0.8)
    assert report.macro_f1 == pytest.approx(f1_score(old, new, average="macro"))
    assert [failure.split(" is ")[0] for failure in report.failures] == [
        "the top-label agreement",
        "the macro-F1 against the old model",
    ]
    lenient = Thresholds(min_agreement=0.8, min_macro_f1=0.7)
    assert compare(Fixed("old", old), Fixed("new", new), ["t"] * 10, lenient).passed


def test_the_cli_exits_1_below_a_threshold_and_0_above(
    minilm_bundle, minilm_int8_bundle, tmp_path, capsys
):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS))
    both = [str(minilm_bundle), str(minilm_int8_bundle), str(texts)]

    assert main(["compare", *both, "--min-cosine", "0.999999", "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["passed"] is False and report["cosine_min"] < 0.999999
    assert err.startswith("bertless compare: the lowest cosine is ")

    assert main(["compare", *both, "--min-cosine", "0.5", "--max-changed", "1"]) == 0
    out = capsys.readouterr().out
    assert "pass" in out and "…" not in out  # piped: every figure whole


def test_models_of_different_tasks_are_one_sentence(minilm_bundle, classifier_bundle):
    with pytest.raises(BenchError, match="cannot compare a feature-extraction model"):
        compare(BundleSide(minilm_bundle), BundleSide(classifier_bundle), TEXTS)


def test_a_side_that_is_neither_url_nor_bundle_is_one_sentence(tmp_path, capsys):
    with pytest.raises(BenchError, match="neither a URL nor a bundle directory"):
        open_side(str(tmp_path))
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
