"""Scoring a Spark DataFrame on the executors: `mapInPandas` over Arrow batches, no service hop;
or, with `url`, through a deployed endpoint from the executors.

The driver checks the bundle once. On a cluster it ships the bundle to every executor once, as
a zip archive that Spark unpacks there (`addArchive`, or `addArtifacts` on Spark Connect); on a
local master the executors share the driver's disk, so they read the folder in place. Each
Python worker loads the model once, on its first batch, and keeps it in a module-level cache for
every later batch and task (Spark reuses Python workers), so no batch ever pays for a load.

Each worker's onnxruntime session gets `spark.task.cpus` threads: Spark already runs one task
per core, and more threads per task would only contend.

With `url` instead of a bundle, each partition drives the endpoint with its own client
(`endpoint.BlockingClient`: kept-alive connections, adaptive concurrency, retries) within an
equal share of the concurrency budget, so the executors together never ask for more than it:
the seed paper's set-up, a Spark job calling a BERT service, with its client fixed.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bertless.batch.io import format_of
from bertless.batch.scoring import ERROR_COLUMN, Shape, Summary, result_schema, score_rows
from bertless.core.bundle import Bundle, load_bundle, read_manifest
from bertless.core.errors import InputError
from bertless.core.predictor import Predictor

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from bertless.batch.client import Options

# pyspark 4.x warns at every pandas conversion that pandas 3 is "not yet fully supported"; the
# conversions used here (strings, floats, float arrays) are tested against pandas 3.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

SPARK_FORMATS = {"parquet": "parquet", "jsonl": "json", "csv": "csv"}

_predictors: dict[tuple[str, int], Predictor] = {}  # on the executors: one per worker process


@dataclass(frozen=True)
class _Remote:
    """What every partition needs to drive the endpoint with its share of the concurrency."""

    url: str
    options: Options
    text_column: str
    pair_column: str | None
    truncate: bool | None


@dataclass(frozen=True)
class _Spec:
    """What every batch needs; pickled once into the task, so it stays small."""

    bundle: str
    shipped: bool
    text_column: str
    pair_column: str | None
    batch_size: int
    truncate: bool | None


def score(
    df: DataFrame,
    bundle: str | Path | None = None,
    text_col: str = "text",
    pair_col: str | None = None,
    batch_size: int = 32,
    truncate: bool | None = None,
    ship: bool | None = None,
    *,
    url: str | None = None,
    options: Options | None = None,
) -> DataFrame:
    """`df` with the result columns added: `embedding`, or `label`, `score`, `scores`; `error`.

    A row that cannot be scored (null, not a string, empty, too long) gets `error` and nulls,
    and the rows beside it are scored. `ship` sends the bundle to the executors as an archive;
    by default it does unless the master is local. With `url` (and no bundle) the endpoint
    there scores, driven as `options` say, their concurrency shared among the partitions.
    """
    from pyspark.sql.types import StructType

    if (bundle is None) == (url is None):
        raise InputError("score needs a bundle or an endpoint url: give exactly one of them.")
    _check_columns(df, text_col, pair_col)
    if url is not None:
        return _score_remotely(df, url, options or _default_options(), text_col, pair_col, truncate)
    checked = load_bundle(bundle)
    added = _spark_fields(checked.manifest)
    clash = [field.name for field in added if field.name in df.columns]
    if clash:
        raise InputError(
            f"the DataFrame already has column(s) {', '.join(clash)} that scoring adds: rename "
            "or drop them first."
        )
    spark = df.sparkSession
    if ship is None:
        ship = not _local_master(spark)
    spec = _Spec(
        bundle=_ship(spark, checked) if ship else str(checked.path.resolve()),
        shipped=ship,
        text_column=text_col,
        pair_column=pair_col,
        batch_size=batch_size,
        truncate=truncate,
    )
    schema = StructType([*df.schema.fields, *added])
    return df.mapInPandas(functools.partial(_score_batches, spec), schema)


def _check_columns(df: DataFrame, text_col: str, pair_col: str | None) -> None:
    for param, column in (("text_col", text_col), ("pair_col", pair_col)):
        if column is not None and column not in df.columns:
            flag = "--" + param.replace("_col", "-column")
            raise InputError(
                f"the DataFrame has no column {column!r} (it has {', '.join(df.columns)}): "
                f"pass the right name as {param} ({flag} on the command line)."
            )


def _score_remotely(
    df: DataFrame,
    url: str,
    options: Options,
    text_col: str,
    pair_col: str | None,
    truncate: bool | None,
) -> DataFrame:
    """`score` through an endpoint: its /info read once here, then one client per partition."""
    import dataclasses

    from pyspark.sql.types import StructType

    from bertless.batch.endpoint import BlockingClient

    probe = BlockingClient(url, options)
    try:
        info = probe.info
    finally:
        probe.close()
    try:
        partitions = df.rdd.getNumPartitions()
    except Exception:  # Spark Connect has no RDDs; one share then is the whole budget
        partitions = 1
    budget = options.concurrency or options.max_concurrency
    share = max(1, budget // partitions)
    if options.concurrency:
        options = dataclasses.replace(options, concurrency=share, max_concurrency=share)
    else:
        options = dataclasses.replace(options, max_concurrency=share)
    remote = _Remote(url, options, text_col, pair_col, truncate)
    schema = StructType([*df.schema.fields, *_spark_fields(info)])
    return df.mapInPandas(functools.partial(_score_remote_batches, remote), schema)


def _default_options() -> Options:
    from bertless.batch.client import Options

    return Options()


def session(master: str = "local[*]") -> SparkSession:
    """A SparkSession for the CLI; on a local master, executors run this very interpreter."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName("bertless batch")
    # The CLI shows its own status line; Spark's stage bar would draw over it.
    return builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()


def score_files(
    spark: SparkSession,
    bundle: str | Path,
    input: str,
    output: str,
    *,
    text_column: str = "text",
    pair_column: str | None = None,
    id_column: str = "id",
    batch_size: int = 32,
    truncate: bool | None = None,
) -> Summary:
    """Read `input`, score it on Spark, write `output` as Spark does: a folder of part files.

    Both are in the format their extension names and may be any URI Spark reads (s3://,
    gs://, abfss://, dbfs:/). Spark does not keep a global row order, so the id column is
    required: join the results back on it.
    """
    from pyspark.sql import functions as F

    started = time.perf_counter()
    out_format = format_of(output)
    read = spark.read.option("header", True)  # CSV only; the other formats ignore it
    df = read.format(SPARK_FORMATS[format_of(input)]).load(input)
    if id_column not in df.columns:
        raise InputError(
            f"{input} has no id column {id_column!r} (it has {', '.join(df.columns)}): Spark "
            "keeps no row order, so give each row an id and name it with --id-column."
        )
    # A small file is one partition, hence one task: spread it over every core first.
    cores = spark.sparkContext.defaultParallelism
    if df.rdd.getNumPartitions() < cores:
        df = df.repartition(cores)
    scored = score(df, bundle, text_column, pair_column, batch_size, truncate)
    columns = [id_column, *(field.name for field in _spark_fields(read_manifest(bundle)))]
    if out_format == "csv":  # CSV has no arrays: vectors go there as JSON text, as locally
        columns = [F.to_json(c).alias(c) if c in ("embedding", "scores") else c for c in columns]
    writer = scored.select(*columns).write.mode("overwrite").format(SPARK_FORMATS[out_format])
    # CSV wants its header; JSON would otherwise drop `"error": null`, unlike the local engine.
    writer.option("header", True).option("ignoreNullFields", False).save(output)
    written = read.format(SPARK_FORMATS[out_format]).load(output)
    rows = written.count()
    errors = written.where(F.col(ERROR_COLUMN).isNotNull()).count()
    return Summary(rows, errors, rows, time.perf_counter() - started)


# -- on the executors ------------------------------------------------------------------------


def _score_batches(spec: _Spec, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    predictor = _predictor(spec)
    for batch in batches:
        texts = _values(batch[spec.text_column])
        pairs = _values(batch[spec.pair_column]) if spec.pair_column else None
        results = score_rows(predictor, texts, pairs, spec.batch_size, spec.truncate)
        scored = results.to_pandas()
        scored.index = batch.index
        yield batch.assign(**{name: scored[name] for name in results.column_names})


def _score_remote_batches(
    remote: _Remote, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    from bertless.batch.endpoint import BlockingClient

    client = BlockingClient(remote.url, remote.options, remote.truncate)
    try:
        for batch in batches:
            texts = _values(batch[remote.text_column])
            pairs = _values(batch[remote.pair_column]) if remote.pair_column else None
            scored = client.score(texts, pairs).to_pandas()
            scored.index = batch.index
            yield batch.assign(**{name: scored[name] for name in scored.columns})
    finally:
        client.close()


def _predictor(spec: _Spec) -> Predictor:
    """The worker's one Predictor for this bundle, loaded on its first batch."""
    from pyspark import SparkFiles, TaskContext

    context = TaskContext.get()
    threads = context.cpus() if context is not None else 1
    key = (spec.bundle, threads)
    if key not in _predictors:
        path = SparkFiles.get(spec.bundle) if spec.shipped else spec.bundle
        _predictors[key] = Predictor.load(path, threads=threads)
    return _predictors[key]


def _values(column: pd.Series) -> list[object]:
    """Python values with None for missing: pandas 3 reads a null string as NaN."""
    return column.astype(object).where(column.notna(), None).tolist()


# -- on the driver ---------------------------------------------------------------------------


def _spark_fields(manifest: Shape) -> list:
    """The result columns as Spark types: Arrow's fixed-size lists become arrays."""
    from pyspark.sql.types import ArrayType, FloatType, StringType, StructField

    types = {"embedding": ArrayType(FloatType()), "scores": ArrayType(FloatType())}
    types |= {"label": StringType(), "score": FloatType(), ERROR_COLUMN: StringType()}
    return [StructField(field.name, types[field.name]) for field in result_schema(manifest)]


def _local_master(spark: SparkSession) -> bool:
    """Whether executors share this machine's disk; Spark Connect may not reveal its master."""
    from pyspark.errors import PySparkException

    try:
        return str(spark.conf.get("spark.master", "")).startswith("local")
    except PySparkException:
        return False


def _ship(spark: SparkSession, bundle: Bundle) -> str:
    """Add the bundle to the session as a zip archive; its name on the executors.

    The zip is cached in the temp folder under the bundle's checksum, and Spark ignores an
    archive it already has, so scoring with the same bundle again ships nothing new. Spark
    Connect sessions (Databricks serverless and shared clusters) have no SparkContext and take
    artifacts instead; both unpack the archive where `SparkFiles.get` finds it.
    """
    name = f"bertless-bundle-{bundle.checksum[:16]}.zip"
    archive = Path(tempfile.gettempdir()) / name
    if not archive.is_file():
        made = shutil.make_archive(f"{archive}.{os.getpid()}", "zip", bundle.path)
        os.replace(made, archive)
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        spark.addArtifacts(str(archive), archive=True)
    else:
        spark.sparkContext.addArchive(str(archive))
    return name
