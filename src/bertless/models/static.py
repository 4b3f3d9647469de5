"""The static student: one vector per vocabulary token, a text's embedding the mean of its rows.

Built the model2vec way (Tulkens & van Dongen 2024), then trained the tokenlearn way:
1. every token of the teacher's vocabulary goes through the teacher alone (`[CLS] token [SEP]`),
   and its pooled output is the token's vector;
2. those vectors are projected onto the `dim` principal directions of the teacher's sentence
   embeddings, so that the student's space is (nearly) the teacher's, only smaller;
3. each row is weighted by how rare its token is in the texts (SIF, Arora et al. 2017:
   a / (a + p(token))), so that "the" and "," count for little in a mean; a token the texts
   contain starts instead from the mean of the teacher's output states for it there (Bommasani
   et al. 2020), so that a text's mean of rows starts near the teacher's mean pooling;
4. the table then learns (each row through a per-token weight, a low-rank per-token correction
   and one shared map: `StaticTable`), on the unlabelled texts, recombinations of them and copies
   with a rare vocabulary word put in (`models/augment.py`), to make each text's mean of rows
   point where the teacher's embedding (projected the same way) points: the cosine distance is
   what is trained, since cosine similarities are what embeddings are used and judged by.
An untrained table (model2vec's own `distill`) ranks the similarities of held-out pairs with a
Spearman of 0.265 against MiniLM's (vader:all, 256 dims); the contextual start alone 0.546, and
the training brings it to 0.795.

The bundle holds the table as `embeddings.npy` (int8 with a scale per row when quantized) beside
the teacher's tokenizer, and `core/engine_static.py` serves it in numpy: no onnxruntime.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from bertless.core.bundle import (
    EMBEDDINGS_NAME,
    SCALES_NAME,
    TOKENIZER_NAME,
    Bundle,
    Manifest,
    load_bundle,
    sha256_file,
    write_manifest,
)
from bertless.core.errors import InputError
from bertless.core.predictor import open_engine
from bertless.models.augment import rare_word_texts, recombinations
from bertless.models.batching import Encoded, length_batches
from bertless.models.distill import (
    Distilled,
    Teacher,
    held_out_distance,
    split,
    too_few_texts,
)
from bertless.models.loop import fit
from bertless.models.report import SIMILARITY_MIN_TEXTS
from bertless.say import Say, silent

SIF_COEFFICIENT = (
    1e-3  # Arora et al.'s a: a token of probability a weighs half as much as a rare one
)
VOCABULARY_BATCH = 512


def check_student(teacher: Teacher, dim: int) -> None:
    """Refuse, in one sentence, a teacher or width a static student cannot be made of."""
    manifest = teacher.manifest
    if manifest.task != "feature-extraction":
        raise InputError(
            f"{manifest.model_id} is a classifier, and a static student is a table of embeddings: "
            "use --student static with an embedding model, or --student bilstm for a classifier."
        )
    width = manifest.dimension or 0
    if not 1 <= dim <= width:
        raise InputError(
            f"--dim must be between 1 and the teacher's embedding width {width}, not {dim}."
        )


def vocabulary_vectors(bundle: Bundle, tokenizer: Tokenizer) -> np.ndarray:
    """The teacher's pooled output for each vocabulary token alone, between its special tokens."""
    manifest = bundle.manifest
    around = tokenizer.encode("").ids  # [CLS] [SEP] for BERT: the token goes after the first
    engine = open_engine(bundle)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    rows = []
    for start in range(0, size, VOCABULARY_BATCH):
        tokens = np.arange(start, min(size, start + VOCABULARY_BATCH))[:, None]
        ids = np.hstack(
            [np.full((len(tokens), 1), around[0]), tokens]
            + ([np.tile(around[1:], (len(tokens), 1))] if len(around) > 1 else [])
        ).astype(np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        out = engine.run(feeds)
        if out.ndim == 3:
            out = out[:, 0] if manifest.pooling == "cls" else out.mean(axis=1)
        rows.append(out.astype(np.float32))
    return np.concatenate(rows)


@dataclass(frozen=True)
class InContext:
    """What the teacher said of the texts: each text's vector, as `Teacher.label` gives it, and
    for each vocabulary token the sum and count of its output states wherever it occurred."""

    vectors: np.ndarray
    sums: np.ndarray
    counts: np.ndarray


def teacher_pass(bundle: Bundle, texts: Sequence[str]) -> InContext:
    """Run the teacher once over the texts, keeping its token states as well as its vectors.

    The Predictor tokenizes, truncates and orders the texts exactly as `Teacher.label` does; its
    runner is swapped for one that adds up each token's states before pooling them. A bundle
    whose graph pools itself has no token states: its counts stay zero.
    """
    from bertless.core.predictor import Predictor

    predictor = Predictor(bundle)
    engine = open_engine(bundle)
    size = predictor._tokenizer.get_vocab_size(with_added_tokens=True)
    sums = np.zeros((size, bundle.manifest.dimension or 0), dtype=np.float64)
    counts = np.zeros(size, dtype=np.int64)

    def run(encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), bundle.manifest.pad_token_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)], mask[row, : len(encoding.ids)] = encoding.ids, 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out = engine.run(feeds)
        if out.ndim == 2:
            return out
        real = mask.astype(bool)
        np.add.at(sums, ids[real], out[real])
        np.add.at(counts, ids[real], 1)
        if bundle.manifest.pooling == "cls":
            return out[:, 0]
        return (out * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)

    predictor.runner = run
    vectors = predictor.embed(list(texts), truncate=True).values
    return InContext(vectors, sums.astype(np.float32), counts)


def principal_directions(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The `dim` directions (rows) along which `vectors` vary most, about the origin.

    Not centred: projecting onto them keeps cosine similarities, the mean direction included, as
    a centred PCA would not.
    """
    _, _, directions = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    if len(directions) < dim:  # fewer texts than dimensions: complete with any orthonormal rest
        rest = np.linalg.qr(np.vstack([directions, np.eye(vectors.shape[1])]).T)[0].T
        directions = rest[:dim]
    return directions[:dim].astype(np.float32)


def sif_weights(ids: Sequence[Sequence[int]], size: int, a: float = SIF_COEFFICIENT) -> np.ndarray:
    """a / (a + p(token)), p counted in the texts with one added to every token (so that tokens
    the texts never use get the rare weight, near 1)."""
    counts = np.bincount(np.concatenate([np.asarray(row) for row in ids]), minlength=size)
    probability = (counts[:size] + 1) / (counts[:size].sum() + size)
    return (a / (a + probability)).astype(np.float32)


def initial_table(
    teacher: Teacher,
    tokenizer: Tokenizer,
    ids: Sequence[Sequence[int]],
    directions: np.ndarray,
    context: InContext | None = None,
) -> np.ndarray:
    """The untrained table: vocabulary vectors weighted by rarity (model2vec), projected.

    A token the teacher was seen to use in the texts starts instead from the mean of its output
    states there (Bommasani et al. 2020's static reduction), unweighted: a text's mean of those
    rows is then close to the teacher's own mean pooling, which is what the training refines.
    """
    vectors = vocabulary_vectors(load_bundle(teacher.bundle), tokenizer)
    vectors *= sif_weights(ids, len(vectors))[:, None]
    if context is not None:
        seen = context.counts > 0
        vectors[seen] = context.sums[seen] / context.counts[seen, None]
    return vectors @ directions.T


def distill_static(
    teacher: Teacher,
    texts: Sequence[str],
    out: str | Path,
    *,
    dim: int = 256,
    targets: np.ndarray | None = None,
    epochs: int = 20,
    max_length: int = 128,
    batch_size: int = 64,
    learning_rate: float = 0.001,
    rank: int = 64,
    recombine: int = 1,
    rare_words: int = 1,
    held_out_fraction: float = 0.1,
    patience: int = 2,
    quantize: str | None = None,
    seed: int = 0,
    show_progress: bool = True,
    step: Say = silent,
) -> Distilled:
    """Make a static student of `teacher` and train it on `texts`; writes `out/model` (the fp32
    table and tokenizer) and `out/bundle`.

    A `held_out_fraction` of the texts is kept for early stopping and the report, as for the
    other students. `rank` is how many dimensions each token's row may move in on its own (see
    `StaticTable`); on MiniLM and vader:all, 64 did best of those tried, and a rate of 0.001 over
    20 planned epochs (early stopping ends it near 7) did better than 0.003 over 10.
    `recombine` is how many times the texts learnt from are recombined into more texts for the
    teacher to label, and `rare_words` how many times they are copied with a rare vocabulary
    word in (see `models/augment.py`); texts given with their `targets` are neither, since the
    teacher is not run then.
    """
    check_student(teacher, dim)
    texts = list(texts)
    if len(texts) <= SIMILARITY_MIN_TEXTS:
        raise InputError(too_few_texts(SIMILARITY_MIN_TEXTS))
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}.")
    if recombine < 0:
        raise InputError(f"--recombine must be 0 or more, not {recombine}.")
    if rare_words < 0:
        raise InputError(f"--rare-words must be 0 or more, not {rare_words}.")
    out = Path(out)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    held, rest = split(len(texts), held_out_fraction, rng, SIMILARITY_MIN_TEXTS)
    tokenizer = _tokenizer(teacher, max_length)
    context = None
    if targets is None:  # token states from the texts learnt from only, never the held-out ones
        learnt = [texts[i] for i in rest]
        made = recombinations(learnt, recombine, rng)
        copies = rare_word_texts(learnt, tokenizer, rare_words, rng)
        step(
            f"labelling the texts, {len(made)} recombinations and {len(copies)} rare-word copies "
            "of them with the teacher, keeping each token's states in context"
        )
        made += copies
        context = teacher_pass(load_bundle(teacher.bundle), learnt + made)
        targets = np.empty((len(texts) + len(made), context.vectors.shape[1]), dtype=np.float32)
        targets[rest] = context.vectors[: len(rest)]
        targets[len(texts) :] = context.vectors[len(rest) :]
        targets[held] = teacher.label([texts[i] for i in held])
        rest = np.concatenate([rest, np.arange(len(texts), len(targets))])
        texts = texts + made
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    directions = principal_directions(targets[rest], dim)
    step(f"building the table: every vocabulary token through the teacher, {dim} dimensions")
    rows = initial_table(teacher, tokenizer, [ids[i] for i in rest], directions, context)
    net = StaticTable(rows.astype(np.float32), rank)
    encoded = Encoded(ids, None, teacher.manifest.pad_token_id)
    goal = torch.from_numpy(targets.astype(np.float32) @ directions.T)

    def distance(indices) -> object:
        batch = encoded.batch(indices)
        return table_loss(net(batch["input_ids"], batch["attention_mask"]), goal[indices])

    plan = [length_batches(rest, encoded.lengths, batch_size, rng) for _ in range(epochs)]
    step("training the table on the teacher's embeddings of the texts")
    fitted = fit(
        net,
        plan,
        distance,
        lambda: held_out_distance(distance, held),
        learning_rate=learning_rate,
        weight_decay=0.0,
        patience=patience,
        score_name="held-out cosine distance",
        maximize=False,
        show_progress=show_progress,
    )
    table = net.table()
    folder = out / "model"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / EMBEDDINGS_NAME, table)
    shutil.copyfile(load_bundle(teacher.bundle).tokenizer_path, folder / TOKENIZER_NAME)
    step("writing the bundle" + (" (int8 rows)" if quantize else ""))
    write_bundle(table, teacher, out / "bundle", quantize)
    return Distilled(folder, out / "bundle", teacher, fitted, [texts[i] for i in held])


def table_loss(output: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The mean cosine distance between the student's and the teacher's vectors."""
    return 1 - torch.nn.functional.cosine_similarity(output, goal).mean()


class StaticTable(torch.nn.Module):
    """The trainable table: ids and mask → the mean of the rows of the real tokens, as
    `core/engine_static.py` computes it in numpy.

    Not every row is free: row t is `(scale[t] · start[t] + a[t] @ b) @ map.T`, a weight per
    token, a correction of `rank` dimensions per token along directions all tokens share, and
    one linear map. A free table of ~30k × 256 learnt ~21k texts by heart (held-out Spearman
    0.778, in-sample 0.878); this one reached 0.789 on the same held-out pairs. Since a mean of
    rows commutes with the map, `table()` folds it all into plain rows.
    """

    def __init__(self, start: np.ndarray, rank: int = 64) -> None:
        super().__init__()
        size, dim = start.shape
        self.register_buffer("start", torch.from_numpy(np.ascontiguousarray(start)))
        self.scale = torch.nn.Parameter(torch.ones(size, 1))
        self.a = torch.nn.Parameter(torch.zeros(size, rank))  # zero: training starts at `start`
        self.b = torch.nn.Parameter(torch.randn(rank, dim) * 0.01)
        self.map = torch.nn.Parameter(torch.eye(dim))

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """The rows of `ids`, before the shared map."""
        return self.scale[ids] * self.start[ids] + self.a[ids] @ self.b

    def table(self) -> np.ndarray:
        """Every row, the map applied: what the bundle stores."""
        with torch.no_grad():
            everything = torch.arange(len(self.start))
            return (self.rows(everything) @ self.map.T).numpy()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(self.start.dtype)
        summed = (self.rows(input_ids) * mask).sum(dim=1)
        return (summed / mask.sum(dim=1).clamp(min=1.0)) @ self.map.T


def write_bundle(
    table: np.ndarray, teacher: Teacher, out: str | Path, quantize: str | None = None
) -> Manifest:
    """A static bundle: the table (int8 rows with a float32 scale each when quantized), the
    teacher's tokenizer, and a manifest recording the architecture."""
    if quantize not in (None, "int8"):
        raise InputError(f"--quantize takes int8 or none, not {quantize!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = load_bundle(teacher.bundle)
    shutil.copyfile(source.tokenizer_path, out / TOKENIZER_NAME)
    names = [TOKENIZER_NAME, EMBEDDINGS_NAME]
    if quantize:
        rows, scales = quantize_rows(table)
        np.save(out / EMBEDDINGS_NAME, rows)
        np.save(out / SCALES_NAME, scales)
        names.append(SCALES_NAME)
    else:
        np.save(out / EMBEDDINGS_NAME, table.astype(np.float32))
    theirs = teacher.manifest
    manifest = Manifest(
        model_id=f"{theirs.model_id}-static-{table.shape[1]}",
        architecture="static",
        task="feature-extraction",
        pooling="mean",
        normalize=theirs.normalize,
        dimension=table.shape[1],
        max_length=theirs.max_length,
        pad_token_id=theirs.pad_token_id,
        max_batch_size=theirs.max_batch_size,
        auto_truncate=theirs.auto_truncate,
        inputs=["input_ids", "attention_mask"],
        output="sentence_embedding",
        precision="int8" if quantize else "fp32",
        files={name: sha256_file(out / name) for name in sorted(names)},
        built_with=_versions(),
    )
    write_manifest(out, manifest)
    return manifest


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: each row's largest magnitude becomes 127."""
    scales = np.abs(table).max(axis=1) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    rows = np.clip(np.rint(table / scales[:, None]), -127, 127).astype(np.int8)
    return rows, scales


def _tokenizer(teacher: Teacher, max_length: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(load_bundle(teacher.bundle).tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in ("bertless", "torch", "numpy", "tokenizers"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
