"""Distillation: a smaller student learns to reproduce its teacher's outputs on unlabelled texts.

The teacher labels every text once, through its bundle (onnxruntime infers several times faster
than PyTorch on a CPU). The student then learns those targets: temperature-softened
probabilities by KL divergence for a classifier (Hinton et al. 2015) — the softmax over the labels
for a single-label one, each label's own sigmoid, by binary cross-entropy, for a multi-label one —
and the embedding vectors by mean squared error for an embedding model (as sentence-transformers'
model distillation does). A multi-label student keeps its teacher's problem type, so its bundle
scores each label by sigmoid too.
By default the student is the teacher itself with layers dropped evenly, DistilBERT's
initialisation (Sanh et al. 2019): it starts close to its teacher, so little data is needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertless.core.bundle import MANIFEST_NAME, Manifest, load_bundle
from bertless.core.errors import InputError
from bertless.core.predictor import Predictor
from bertless.models.batching import encode, length_batches
from bertless.models.checkpoint import describe
from bertless.models.export import export
from bertless.models.loading import load_classifier, load_encoder, load_tokenizer, save
from bertless.models.loop import Fit, fit
from bertless.models.report import SIMILARITY_MIN_TEXTS
from bertless.say import Say, silent


@dataclass(frozen=True)
class Teacher:
    """A teacher as a bundle (what labels the texts) and, when known, its checkpoint folder."""

    bundle: Path
    folder: Path | None
    manifest: Manifest

    @classmethod
    def prepare(
        cls,
        path: str | Path | None,
        out: Path,
        task: str | None = None,
        step: Say = silent,
    ) -> Teacher:
        """A bundle directory is used as it is; a checkpoint folder (None = built-in MiniLM) is
        exported to `out` first."""
        if path is not None and (Path(path) / MANIFEST_NAME).is_file():
            return cls(Path(path), None, load_bundle(path).manifest)
        folder = describe(path, task).path
        return cls(out, folder, export(path, out, task=task, step=step))

    def label(self, texts: Sequence[str]) -> np.ndarray:
        """Logits for a classifier, pooled (and, if the bundle says so, normalized) vectors else."""
        predictor = Predictor.load(self.bundle)
        if self.manifest.task == "text-classification":
            return predictor.classify(list(texts), truncate=True, raw_scores=True).values
        return predictor.embed(list(texts), truncate=True).values


@dataclass(frozen=True)
class Distilled:
    folder: Path
    bundle: Path
    teacher: Teacher
    fit: Fit
    held_out: list[str]

    @property
    def distance_before(self) -> float:
        """Held-out KL divergence (classifier; for a multi-label one the mean over labels of
        each label's) or MSE (embeddings) of the untrained student."""
        return self.fit.checks[0].score

    @property
    def distance_after(self) -> float:
        return self.fit.best.score


def layers_to_keep(total: int, keep: int) -> list[int]:
    """`keep` of `total` layers, evenly spaced and ending with the last one.

    The last layer is kept because the head (or the pooling) was trained on its output; 6 → 3
    keeps layers 1, 3, 5 and 6 → 2 keeps 2, 5 (counting from 0).
    """
    if not 1 <= keep <= total:
        raise InputError(f"a student needs between 1 and {total} layers, not {keep}.")
    return [round((i + 1) * total / keep) - 1 for i in range(keep)]


def shrink(teacher: Teacher, layers: int):
    """The teacher's PyTorch model with only `layers` of its transformer layers."""
    if teacher.folder is None:
        raise InputError(
            f"{teacher.bundle} is a bundle, which has no PyTorch weights to shrink: give "
            "--student-model FOLDER, or the teacher's checkpoint folder instead of its bundle."
        )
    model = _load(teacher.folder, teacher.manifest)
    owner = _layer_owner(model)
    keep = layers_to_keep(len(owner.layer), layers)
    owner.layer = type(owner.layer)([owner.layer[i] for i in keep])
    model.config.num_hidden_layers = layers
    return model


def load_student(folder: str | Path, teacher: Teacher):
    """A given student checkpoint, with a head for the teacher's labels if it is a classifier."""
    model = _load(describe(folder, teacher.manifest.task).path, teacher.manifest)
    if teacher.manifest.task == "feature-extraction" and model.config.hidden_size != (
        teacher.manifest.dimension
    ):
        raise InputError(
            f"the student's hidden size {model.config.hidden_size} differs from the teacher's "
            f"{teacher.manifest.dimension}-dimensional embeddings: give a student of that width."
        )
    return model


def distill(
    teacher: Teacher,
    texts: Sequence[str],
    out: str | Path,
    *,
    student: str | Path | None = None,
    student_layers: int = 3,
    targets: np.ndarray | None = None,
    epochs: int = 2,
    max_length: int = 128,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    temperature: float = 2.0,
    held_out_fraction: float = 0.1,
    patience: int = 2,
    quantize: str | None = None,
    seed: int = 0,
    show_progress: bool = True,
    step: Say = silent,
) -> Distilled:
    """Teach a student to match `teacher` on `texts`; writes `out/model` and `out/bundle`.

    `targets` are the teacher's outputs for `texts` when already computed (several students of
    one teacher). A `held_out_fraction` of the texts is kept for early stopping and to measure
    how far the student is from its teacher. `quantize="int8"` exports the student's bundle with
    int8 weights: with MiniLM's vocabulary table making up half of its weights, dropping layers
    alone cannot halve a bundle, and int8 does.
    """
    import torch

    texts = list(texts)
    manifest = teacher.manifest
    held_at_least = SIMILARITY_MIN_TEXTS if manifest.task == "feature-extraction" else 1
    if len(texts) <= held_at_least:
        raise InputError(too_few_texts(held_at_least))
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}.")
    out = Path(out)
    if targets is None:
        step("labelling the texts with the teacher")
        targets = teacher.label(texts)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    step("building the student")
    net = load_student(student, teacher) if student else shrink(teacher, student_layers)
    net.get_input_embeddings().weight.requires_grad_(False)  # as in train.py: cheaper steps
    tokenizer = load_tokenizer(describe(student).path if student else teacher.folder)

    held, rest = split(len(texts), held_out_fraction, rng, held_at_least)
    encoded = encode(tokenizer, texts, max_length)
    goal = torch.tensor(targets, dtype=torch.float32)
    forward = _forward(net, manifest)

    def distance(indices) -> object:
        output = forward(encoded.batch(indices))
        return divergence(output, goal[indices], manifest, temperature)

    def score() -> float:
        return held_out_distance(distance, held)

    plan = [length_batches(rest, encoded.lengths, batch_size, rng) for _ in range(epochs)]
    step(f"distilling into {net.config.num_hidden_layers} layers")
    fitted = fit(
        net,
        plan,
        distance,
        score,
        learning_rate=learning_rate,
        patience=patience,
        score_name="held-out distance",
        maximize=False,
        show_progress=show_progress,
    )
    folder = save(net, tokenizer, out / "model", manifest.max_length)
    if manifest.task == "feature-extraction":
        _write_pooling(folder, manifest)
    export(
        folder,
        out / "bundle",
        task=manifest.task,
        quantize=quantize,
        max_length=manifest.max_length,
        step=step,
    )
    return Distilled(folder, out / "bundle", teacher, fitted, [texts[i] for i in held])


def split(count: int, held_out_fraction: float, rng: np.random.Generator, at_least: int = 1):
    """(held out, rest): indices of the texts kept to measure the student, and of those it
    learns from; at least `at_least` are held out (`SIMILARITY_MIN_TEXTS` for an embedding
    student, whose report ranks the similarities of held-out pairs)."""
    order = rng.permutation(count)
    held = order[: max(at_least, round(count * held_out_fraction))]
    return held, order[len(held) :]


def too_few_texts(held_at_least: int) -> str:
    """What to say when the texts cannot give `held_at_least` to check and one to learn from."""
    if held_at_least == 1:
        return "distillation needs at least two texts: one to learn, one to check."
    return (
        f"distilling an embedding model needs at least {held_at_least + 1} texts: "
        f"{held_at_least} held out, whose pairs' similarities check the student, and one to "
        "learn from."
    )


def divergence(output, goal, manifest: Manifest, temperature: float):
    """How far a student's outputs are from its teacher's: KL divergence of temperature-softened
    probabilities (per label for multi-label) for a classifier, MSE for embeddings."""
    import torch

    if manifest.task == "feature-extraction":
        return torch.nn.functional.mse_loss(output, goal)
    if manifest.problem_type == "multi_label_classification":
        return _label_divergence(output, goal, temperature)
    soft = torch.nn.functional.softmax(goal / temperature, dim=-1)
    mine = torch.nn.functional.log_softmax(output / temperature, dim=-1)
    return torch.nn.functional.kl_div(mine, soft, reduction="batchmean") * temperature**2


def held_out_distance(distance, held: np.ndarray) -> float:
    """The mean `distance` over the held-out texts, in chunks of 64, without gradients."""
    import torch

    with torch.inference_mode():
        chunks = [held[i : i + 64].tolist() for i in range(0, len(held), 64)]
        total = sum(float(distance(c)) * len(c) for c in chunks)
    return total / len(held)


def _load(folder: Path, manifest: Manifest):
    if manifest.task == "text-classification":
        problem_type = manifest.problem_type or "single_label_classification"
        return load_classifier(folder, manifest.labels, problem_type)
    return load_encoder(folder)


def _label_divergence(logits, teacher_logits, temperature: float):
    """Mean over labels of the KL divergence between the teacher's and the student's
    temperature-softened sigmoid probabilities, times T² (Hinton et al. 2015).

    That is the binary cross-entropy against the teacher's soft labels less their own entropy,
    which has no gradient but makes a perfect student's distance 0, as for single-label.
    """
    import torch

    soft = torch.sigmoid(teacher_logits / temperature)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    entropy = bce(teacher_logits / temperature, soft)
    return (bce(logits / temperature, soft) - entropy) * temperature**2


def _layer_owner(model):
    """The module holding the layer list: `encoder` (BERT, RoBERTa), `transformer` (DistilBERT)."""
    import torch

    base = model.base_model
    for name in ("encoder", "transformer"):
        owner = getattr(base, name, None)
        if isinstance(getattr(owner, "layer", None), torch.nn.ModuleList):
            return owner
    raise InputError(
        f"cannot find the layers of a {type(base).__name__}: give --student-model FOLDER instead."
    )


def _forward(net, manifest: Manifest):
    """What the student says for a batch: logits, or pooled vectors like the teacher's bundle."""
    import torch

    if manifest.task == "text-classification":
        return lambda batch: net(**batch).logits

    def embed(batch: dict):
        states = net(**batch).last_hidden_state
        if manifest.pooling == "cls":
            vectors = states[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            vectors = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(vectors, dim=-1) if manifest.normalize else vectors

    return embed


def _write_pooling(folder: Path, manifest: Manifest) -> None:
    """sentence-transformers' module files, so that export (and sentence-transformers) pool the
    student exactly as the teacher's bundle does."""
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": manifest.dimension,
        "pooling_mode_cls_token": manifest.pooling == "cls",
        "pooling_mode_mean_tokens": manifest.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if manifest.normalize:
        (folder / "2_Normalize").mkdir(exist_ok=True)
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    config = {"max_seq_length": manifest.max_length, "do_lower_case": False}
    (folder / "sentence_bert_config.json").write_text(json.dumps(config, indent=2))
