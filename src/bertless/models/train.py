"""Fine-tuning: an encoder plus a fresh classification head, trained on labelled texts.

The result is a Hugging Face folder that `export` turns into a bundle. Defaults are chosen for a
CPU: batches of similar length (little padding), the word-embedding table frozen (it is half of
MiniLM's weights; a few thousand examples barely move it, and skipping its gradient and AdamW
update makes a step markedly cheaper), a short maximum length, and early stopping on held-out
macro-F1, which weighs a rare class as much as a common one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertless.core.errors import InputError
from bertless.models.batching import balanced_sample, encode, length_batches
from bertless.models.checkpoint import describe
from bertless.models.labelled import Labelled, stratified_split
from bertless.models.loading import load_classifier, load_tokenizer, save
from bertless.models.loop import Fit, fit, outputs
from bertless.models.report import macro_f1


@dataclass(frozen=True)
class Trained:
    folder: Path
    labels: list[str]
    fit: Fit
    validation: Labelled

    @property
    def validation_f1(self) -> float:
        return self.fit.best.score


def train(
    data: Labelled,
    out: str | Path,
    model: str | Path | None = None,
    *,
    validation: Labelled | None = None,
    epochs: int = 2,
    max_length: int = 128,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    validation_fraction: float = 0.1,
    patience: int = 2,
    freeze_embeddings: bool = True,
    seed: int = 0,
    show_progress: bool = True,
) -> Trained:
    """Fine-tune `model` (a local folder; None = built-in MiniLM) on `data`, saved to `out`.

    Without `validation`, a stratified `validation_fraction` of `data` is held out for early
    stopping. `max_length` cuts training texts only; the saved folder serves the checkpoint's
    own maximum.
    """
    import torch

    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}.")
    if len(set(data.labels)) < 2:
        raise InputError("the data has a single label: a classifier needs at least two.")
    checkpoint = describe(model)
    if validation is None:
        size = _held_out_size(data, validation_fraction)
        rest, held = stratified_split(data.labels, size, seed, data.names)
        data, validation = data.subset(rest), data.subset(held)
    elif validation.names != data.names:
        raise InputError(
            f"the validation labels ({', '.join(validation.names)}) differ from the training "
            f"labels ({', '.join(data.names)})."
        )

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer = load_tokenizer(checkpoint.path)
    net = load_classifier(checkpoint.path, data.names)
    if freeze_embeddings:
        net.get_input_embeddings().weight.requires_grad_(False)
    train_set = encode(tokenizer, data.texts, max_length)
    check_set = encode(tokenizer, validation.texts, max_length)
    targets = torch.tensor(data.labels)

    def loss(indices: list[int]):
        logits = net(**train_set.batch(indices)).logits
        return torch.nn.functional.cross_entropy(logits, targets[indices])

    def score() -> float:
        logits = outputs(lambda batch: net(**batch).logits, check_set, range(len(validation)))
        return macro_f1(validation.labels, logits.argmax(axis=1))

    plan = [
        length_batches(
            balanced_sample(data.labels, len(data), rng), train_set.lengths, batch_size, rng
        )
        for _ in range(epochs)
    ]
    fitted = fit(
        net,
        plan,
        loss,
        score,
        learning_rate=learning_rate,
        score_name="val macro-F1",
        patience=patience,
        show_progress=show_progress,
    )
    save(net, tokenizer, Path(out), checkpoint.max_length)
    return Trained(Path(out), data.names, fitted, validation)


def _held_out_size(data: Labelled, fraction: float) -> int:
    if not 0 < fraction < 1:
        raise InputError(f"the validation fraction must be between 0 and 1, not {fraction}.")
    return max(len(set(data.labels)), round(len(data) * fraction))
