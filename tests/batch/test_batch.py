"""Batch scoring: the local engine, Spark and the Predictor agree row for row; runs resume; bad
rows are reported, not fatal; every format goes in and out."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from bertless import Predictor
from bertless.batch.local import BatchError, parts_dir, score_file
from bertless.cli import batch as command
from bertless.core.errors import InputError

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

N = 5000
WORDS = (
    "the a model serves text on functions and answers quickly while costs stay low for every "
    "request from users who want sentiment labels embeddings similarity search over documents "
    "reviews news product questions answers café naïve Zürich data cloud lambda azure google "
    "latency memory cold start batch spark parquet 42 3.14 2024 ! ? , ."
).split()


def varied_texts(n: int, seed: int = 0) -> list[str]:
    """Deterministic texts from 1 to 48 words, most of them short."""
    rng = random.Random(seed)
    lengths = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 32, 40, 48]
    return [" ".join(rng.choices(WORDS, k=rng.choice(lengths))) for _ in range(n)]


def doc_ids(n: int) -> list[str]:
    return [f"doc-{i:05d}" for i in range(n)]


def write_input(path: Path, ids: list, texts: list, **extra: list) -> Path:
    """`ids` and `texts` (and any extra columns) in the format `path`'s extension names."""
    if path.suffix == ".jsonl":
        rows = [
            {"id": i, "text": t, **{k: v[n] for k, v in extra.items()}}
            for n, (i, t) in enumerate(zip(ids, texts, strict=True))
        ]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    table = pa.table({"id": ids, "text": texts, **extra})
    (pq.write_table if path.suffix == ".parquet" else pacsv.write_csv)(table, path)
    return path


def read_output(path: Path) -> dict[str, list]:
    """Any output file as columns of Python values, vectors as lists of floats."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pydict()
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return {key: [row[key] for row in rows] for key in rows[0]}
    nulls = pacsv.ConvertOptions(strings_can_be_null=True)  # an empty field is a null
    columns = pacsv.read_csv(path, convert_options=nulls).to_pydict()
    for key in ("embedding", "scores"):
        if key in columns:
            columns[key] = [None if v is None else json.loads(v) for v in columns[key]]
    return columns


def assert_vectors(actual: list, expected: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float32), expected, atol=1e-5)


# -- shared, expensive things ----------------------------------------------------------------


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return varied_texts(N)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, texts) -> Path:
    return write_input(tmp_path_factory.mktemp("batch") / "texts.parquet", doc_ids(N), texts)


@pytest.fixture(scope="module")
def reference(minilm_bundle, texts) -> np.ndarray:
    """What users get from the library directly, in one process."""
    return Predictor.load(minilm_bundle).encode(texts)


@pytest.fixture(scope="module")
def local_scored(minilm_bundle, corpus) -> dict[str, list]:
    """The 5,000 texts through the local engine with its defaults (one process per core)."""
    output = corpus.with_name("local.parquet")
    summary = score_file(minilm_bundle, corpus, output, chunk_rows=500)
    assert (summary.rows, summary.errors, summary.scored) == (N, 0, N)
    return read_output(output)


@pytest.fixture(scope="session")
def spark():
    from bertless.batch.spark import session

    active = session("local[2]")
    active.sparkContext.setLogLevel("ERROR")
    yield active
    active.stop()


# -- the engines agree -----------------------------------------------------------------------


def test_local_engine_matches_predictor_row_for_row(local_scored, reference):
    assert local_scored["id"] == doc_ids(N)
    assert local_scored["error"] == [None] * N
    assert_vectors(local_scored["embedding"], reference)


def test_spark_engine_matches_predictor_row_for_row(spark, minilm_bundle, corpus, reference):
    from bertless.batch.spark import score

    frame = spark.read.parquet(str(corpus)).repartition(2)
    scored = score(frame, minilm_bundle).toArrow().to_pydict()
    order = np.argsort(scored["id"])
    assert [scored["id"][i] for i in order] == doc_ids(N)
    assert [scored["error"][i] for i in order] == [None] * N
    assert_vectors([scored["embedding"][i] for i in order], reference)


def test_classifier_engines_agree_with_predictor(spark, classifier_bundle, tmp_path):
    from bertless.batch.spark import score

    texts = varied_texts(600, seed=1)
    data = write_input(tmp_path / "reviews.parquet", doc_ids(600), texts)
    predictor = Predictor.load(classifier_bundle)
    probabilities = predictor.classify(texts).values
    labels = [predictor.manifest.labels[i] for i in probabilities.argmax(axis=1)]

    score_file(classifier_bundle, data, tmp_path / "out.parquet", workers=1, chunk_rows=256)
    local = read_output(tmp_path / "out.parquet")
    # ship=True sends the bundle as an archive, as on a cluster.
    frame = spark.read.parquet(str(data)).repartition(2)
    remote = score(frame, classifier_bundle, ship=True).toArrow().to_pydict()
    order = np.argsort(remote["id"])
    remote = {key: [values[i] for i in order] for key, values in remote.items()}

    for result in (local, remote):
        assert result["id"] == doc_ids(600)
        assert result["label"] == labels
        assert_vectors(result["scores"], probabilities)
        assert_vectors(result["score"], probabilities.max(axis=1))
        assert result["error"] == [None] * 600


def test_pairs_are_scored_as_pairs(classifier_bundle, tmp_path):
    questions, passages = varied_texts(40, seed=2), varied_texts(40, seed=3)
    data = write_input(tmp_path / "pairs.jsonl", list(range(40)), questions, passage=passages)

    score_file(classifier_bundle, data, tmp_path / "out.parquet", pair_column="passage", workers=1)

    expected = (
        Predictor.load(classifier_bundle)
        .classify(list(zip(questions, passages, strict=True)))
        .values
    )
    assert_vectors(read_output(tmp_path / "out.parquet")["scores"], expected)


# -- resuming --------------------------------------------------------------------------------


def test_a_killed_run_resumes_without_losing_or_repeating_a_row(
    minilm_bundle, corpus, local_scored, tmp_path
):
    n, chunk = 2000, 200
    data = tmp_path / "texts.parquet"
    pq.write_table(pq.read_table(corpus).slice(0, n), data)
    output = tmp_path / "out.parquet"
    parts = parts_dir(output)
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bertless",
                "batch",
                str(minilm_bundle),
                str(data),
                str(output),
                "--chunk-rows",
                str(chunk),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its worker processes die with it
        )
        deadline = time.monotonic() + 240
        while len(list(parts.glob("part-*.parquet"))) < 3:
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "no parts written in time"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

    kept = len(list(parts.glob("part-*.parquet")))
    assert not output.exists() and 3 <= kept < n // chunk
    summary = score_file(minilm_bundle, data, output, chunk_rows=chunk)

    result = read_output(output)
    assert result["id"] == doc_ids(n)  # in order, none twice, none missing
    assert summary.rows == n and summary.scored == n - kept * chunk
    assert_vectors(result["embedding"], np.asarray(local_scored["embedding"][:n]))
    assert not parts.exists()


def test_parts_of_another_run_are_not_mixed_in(minilm_bundle, corpus, tmp_path):
    output = tmp_path / "out.parquet"

    def stop_after_first_part(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(
            minilm_bundle, corpus, output, workers=1, chunk_rows=10, progress=stop_after_first_part
        )
    with pytest.raises(BatchError, match=r"chunk_rows differ.*delete that folder"):
        score_file(minilm_bundle, corpus, output, workers=1, chunk_rows=20)


# -- bad rows --------------------------------------------------------------------------------

BAD_ROWS = [
    ({"id": 1, "text": "a fine first sentence"}, None),
    ({"id": 2, "text": None}, "text is null"),
    ({"id": 3, "text": 42}, "text is a number, not a string"),
    ({"id": 4, "text": ""}, "text is the empty string"),
    ({"id": 5}, "text is null"),
    ({"id": 6, "text": "word " * 300}, "text has 302 tokens, more than the maximum of 256"),
    ({"id": 7, "text": "   "}, None),  # blank text is text, as in TEI
    ({"id": 8, "text": "another fine sentence"}, None),
    ({"id": 9, "text": "and the last one"}, None),
]


def test_bad_rows_get_an_error_and_the_rows_around_them_are_scored(minilm_bundle, tmp_path):
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row, _ in BAD_ROWS), encoding="utf-8")
    output = tmp_path / "out.jsonl"

    # Chunks of 3: the middle chunk has no good row at all.
    summary = score_file(minilm_bundle, data, output, workers=1, chunk_rows=3)

    result = read_output(output)
    assert summary.errors == 5 and summary.rows == len(BAD_ROWS)
    assert result["id"] == list(range(1, 10))
    for error, (_, expected) in zip(result["error"], BAD_ROWS, strict=True):
        assert (error is None) if expected is None else error.startswith(expected)
    good = [i for i, (_, expected) in enumerate(BAD_ROWS) if expected is None]
    vectors = Predictor.load(minilm_bundle).encode([BAD_ROWS[i][0]["text"] for i in good])
    assert_vectors([result["embedding"][i] for i in good], vectors)
    assert all(result["embedding"][i] is None for i in range(len(BAD_ROWS)) if i not in good)


def test_a_blank_row_is_scored_as_the_predictor_scores_a_blank_text(minilm_bundle, tmp_path):
    """One rule of what a text is: `POST /embed {"inputs": "   "}` answers 200, so a blank row
    is scored too, and "" gets the predictor's own refusal, not a rule of batch's own."""
    data = write_input(tmp_path / "blank.jsonl", [1, 2], ["   ", ""])

    summary = score_file(minilm_bundle, data, tmp_path / "out.jsonl", workers=1)

    result = read_output(tmp_path / "out.jsonl")
    predictor = Predictor.load(minilm_bundle)
    assert summary.errors == 1
    assert_vectors([result["embedding"][0]], predictor.encode(["   "]))
    with pytest.raises(InputError) as refused:
        predictor.encode("")
    assert str(refused.value) == "input 0 is the empty string."
    assert result["error"] == [None, "text is the empty string"]
    assert result["embedding"][1] is None


def test_truncation_scores_over_long_texts_instead(minilm_bundle, tmp_path):
    long = "word " * 300
    data = write_input(tmp_path / "long.parquet", [1, 2], [long, "short"])

    summary = score_file(minilm_bundle, data, tmp_path / "out.parquet", workers=1, truncate=True)

    assert summary.errors == 0
    expected = Predictor.load(minilm_bundle).encode([long, "short"], truncate=True)
    assert_vectors(read_output(tmp_path / "out.parquet")["embedding"], expected)


def test_spark_reports_bad_rows_and_scores_the_rest(spark, minilm_bundle):
    from bertless.batch.spark import score

    rows = [(1, "a fine first sentence"), (2, None), (3, ""), (4, "word " * 300), (5, "fine")]
    frame = spark.createDataFrame(rows, "id long, text string").repartition(2)

    result = sorted(score(frame, minilm_bundle).collect(), key=lambda row: row.id)

    errors = [row.error for row in result]
    assert errors[0] is None and errors[4] is None
    assert errors[1:4] == [
        "text is null",
        "text is the empty string",
        "text has 302 tokens, more than the maximum of 256: shorten it or turn truncation on",
    ]
    assert [row.embedding for row in result[1:4]] == [None, None, None]
    expected = Predictor.load(minilm_bundle).encode([rows[0][1], rows[4][1]])
    assert_vectors([result[0].embedding, result[4].embedding], expected)


# -- formats and mistakes --------------------------------------------------------------------

FORMATS = [".parquet", ".jsonl", ".csv"]


@pytest.fixture(scope="module")
def few(minilm_bundle) -> tuple[list[str], np.ndarray]:
    texts = varied_texts(30, seed=4)
    return texts, Predictor.load(minilm_bundle).encode(texts)


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_every_format_goes_in_and_out(minilm_bundle, few, tmp_path, source, target):
    texts, expected = few
    data = write_input(tmp_path / f"in{source}", doc_ids(30), texts)

    score_file(minilm_bundle, data, tmp_path / f"out{target}", workers=1, chunk_rows=7)

    result = read_output(tmp_path / f"out{target}")
    assert result["id"] == doc_ids(30)
    assert_vectors(result["embedding"], expected)


@pytest.mark.parametrize(
    ("source", "target"), [(".csv", ".jsonl"), (".jsonl", ".parquet"), (".parquet", ".csv")]
)
def test_spark_reads_and_writes_every_format(spark, minilm_bundle, few, tmp_path, source, target):
    from bertless.batch.spark import score_files

    texts, expected = few
    data = write_input(tmp_path / f"in{source}", doc_ids(30), texts)
    output = tmp_path / f"out{target}"

    summary = score_files(spark, minilm_bundle, str(data), str(output))

    assert (summary.rows, summary.errors) == (30, 0)
    kind = {".parquet": "parquet", ".jsonl": "json", ".csv": "csv"}[target]
    read = spark.read.format(kind).option("header", True).load(str(output))
    rows = sorted(read.collect(), key=lambda row: row.id)
    assert [row.id for row in rows] == doc_ids(30)
    vectors = [json.loads(r.embedding) if target == ".csv" else r.embedding for r in rows]
    assert_vectors(vectors, expected)


def test_a_missing_text_column_names_the_flag(minilm_bundle, tmp_path):
    data = write_input(tmp_path / "in.csv", [1], ["hello"])
    with pytest.raises(InputError, match=r"no column 'body' \(it has id, text\).*--text-column"):
        score_file(minilm_bundle, data, tmp_path / "out.parquet", text_column="body")


def test_spark_names_a_missing_column(spark, minilm_bundle):
    from bertless.batch.spark import score

    frame = spark.createDataFrame([(1, "hello")], "id long, body string")
    with pytest.raises(InputError, match=r"no column 'text'.*text_col"):
        score(frame, minilm_bundle)


@pytest.mark.parametrize(("source", "target"), [("in.txt", "out.parquet"), ("in.csv", "out")])
def test_an_unknown_extension_says_which_work(minilm_bundle, tmp_path, source, target):
    data = tmp_path / source
    data.write_text("id,text\n1,hello\n")
    with pytest.raises(InputError, match=r"extension .*\.parquet, \.pq, \.jsonl, \.ndjson, \.csv"):
        score_file(minilm_bundle, data, tmp_path / target)


# -- the command -----------------------------------------------------------------------------


def test_command_reads_flags_from_the_environment_and_prints_a_summary(
    minilm_bundle, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("BERTLESS_TEXT_COLUMN", "body")
    monkeypatch.setenv("BERTLESS_WORKERS", "1")
    top = argparse.ArgumentParser(prog="bertless")
    command.add_parser(top.add_subparsers(dest="command"))
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "a", "body": "hello"}\n{"id": "b", "body": ""}\n')
    args = top.parse_args(["batch", str(minilm_bundle), str(data), str(tmp_path / "out.csv")])

    assert (args.text_column, args.workers, args.batch_size) == ("body", 1, 32)
    assert args.run(args) == 0
    printed = capsys.readouterr().err
    assert "rows" in printed and "1 rows were not scored" in printed
    assert read_output(tmp_path / "out.csv")["error"] == [None, "text is the empty string"]


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ({"pair_column": "text"}, "--text-column and --pair-column"),
        ({"id_column": "text"}, "--id-column and --text-column"),
        ({"id_column": "passage", "pair_column": "passage"}, "--id-column and --pair-column"),
    ],
)
def test_one_column_in_two_roles_is_refused(classifier_bundle, tmp_path, columns, named):
    """It was pyarrow's KeyError 'Field "text" exists 2 times in schema', as a traceback."""
    data = write_input(tmp_path / "in.csv", [1], ["hello"], passage=["world"])
    with pytest.raises(InputError, match=rf"'\w+' is named by both {named}: give each its own"):
        score_file(classifier_bundle, data, tmp_path / "out.parquet", **columns)


def test_pairs_for_an_embedding_model_are_refused(minilm_bundle, tmp_path):
    """As the endpoint engine, /embed and Predictor.encode refuse them: the local engine embedded
    a pair as one text joined by [SEP], which no embedding model was trained on."""
    data = write_input(tmp_path / "in.csv", [1], ["hello"], passage=["world"])
    with pytest.raises(InputError, match=r"an embedding model scores single texts: drop --pair"):
        score_file(minilm_bundle, data, tmp_path / "out.parquet", pair_column="passage")
    assert not (tmp_path / "out.parquet").exists()
