"""model2vec's untrained static table as a bertless bundle: the baseline a static student beats.

model2vec's `distill` (Tulkens & van Dongen 2024) makes a static model of a sentence transformer
with no training: every token through the model, PCA, Zipf-weighted SIF. Turned into a bundle,
its table is measured exactly as the trained student is: the same Predictor, engine, held-out
pairs and speed loop. model2vec is optional (`pip install 'model2vec[distill]'`): its distill
extra pins transformers below 5.4, which the export stack does not, so bertless does not install
it; without it the report leaves the baseline out and says why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bertless.core.bundle import (
    EMBEDDINGS_NAME,
    TOKENIZER_NAME,
    Manifest,
    sha256_file,
    write_manifest,
)
from bertless.core.errors import InputError
from bertless.core.predictor import Predictor
from bertless.say import Say, silent

if TYPE_CHECKING:
    from bertless.models.distill import Distilled, Teacher
    from bertless.models.report import Row


def model2vec_missing() -> str | None:
    """Why the baseline cannot be made here, or None when model2vec's distill imports."""
    try:
        from model2vec.distill import distill  # noqa: F401
    except ImportError as error:
        return f"model2vec's distill does not import ({error}): pip install 'model2vec[distill]'"
    return None


def distill_model2vec(folder: Path, out: Path, dim: int, max_length: int) -> Path:
    """model2vec's own `distill` of the checkpoint `folder` to `dim` dimensions, as a bundle."""
    from model2vec.distill import distill

    model = distill(model_name=str(folder), pca_dims=dim)
    saved = out.with_name(out.name + "-model2vec")
    model.save_pretrained(str(saved))
    return import_model2vec(saved, out, max_length)


def import_model2vec(folder: Path, out: Path, max_length: int = 512) -> Path:
    """A saved model2vec model (`model.safetensors`, `tokenizer.json`, `config.json`) as a static
    bundle: its table in float32 and its own tokenizer, which adds no special tokens."""
    from safetensors.numpy import load_file

    folder, out = Path(folder), Path(out)
    try:
        config = json.loads((folder / "config.json").read_text())
        table = load_file(folder / "model.safetensors")["embeddings"].astype(np.float32)
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{folder} is not a saved model2vec model ({error}).") from None
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / EMBEDDINGS_NAME, table)
    shutil.copyfile(folder / TOKENIZER_NAME, out / TOKENIZER_NAME)
    manifest = Manifest(
        model_id=f"model2vec-{folder.name}",
        architecture="static",
        task="feature-extraction",
        pooling="mean",
        normalize=bool(config.get("normalize", True)),
        dimension=table.shape[1],
        max_length=max_length,
        inputs=["input_ids", "attention_mask"],
        output="sentence_embedding",
        files={name: sha256_file(out / name) for name in (EMBEDDINGS_NAME, TOKENIZER_NAME)},
        built_with={"model2vec": _version("model2vec")},
    )
    write_manifest(out, manifest)
    return out


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def baseline_rows(
    teacher: Teacher, distilled: Distilled, theirs: Predictor, step: Say = silent
) -> list[Row]:
    """The report's row for model2vec's untrained table of the same teacher at the student's
    width, on the student's held-out texts; none, with the reason said, when it cannot be made."""
    from bertless.models.report import measure, similarity_quality

    missing = model2vec_missing()
    if missing is None and teacher.folder is None:
        missing = "model2vec distills a checkpoint folder, and the teacher was given as a bundle"
    if missing:
        step(f"no model2vec baseline: {missing}")
        return []
    step("distilling model2vec's untrained table, the baseline")
    dimension = Predictor.load(distilled.bundle).manifest.dimension
    out = distilled.bundle.parent / "model2vec"
    bundle = distill_model2vec(teacher.folder, out, dimension, teacher.manifest.max_length)
    quality = similarity_quality(Predictor.load(bundle), theirs, distilled.held_out)
    return [measure("model2vec, untrained", bundle, quality, distilled.held_out)]
