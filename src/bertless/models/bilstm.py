"""The BiLSTM student: the teacher's word-embedding table under a small bidirectional LSTM.

Dahlmann & Lancewicki (2021) distilled BERT into "BertBiLSTM", BERT's own embedding table under
one BiLSTM layer and a head, answering in at most 0.2 ms a text on a CPU. This student is that
network for any classifier bundle bertless distills: the teacher's word embeddings, reduced by PCA
(MiniLM's 384 dimensions to 128 keep most of their variance at a third of the size, and the table
is nearly all of the bundle), one bidirectional LSTM layer, mean and max pooling over the real
tokens, and a linear head. The table stays as the teacher made it, and the rest learns from the
teacher's soft labels on unlabelled texts, as the layer student does (`distill.py`). A table that
learns too moves only the words of the training texts, out of step with every other word: on the
sentiment recipe a trained table scored held-out movie snippets 0.514 macro-F1 and a frozen one
0.567 (teacher 0.579), with the same texts and schedule.

The backward direction is written as a forward LSTM over each text reversed within its own
length, so that padding never reaches a real token's state: a text gets the same answer alone or
in a padded batch, in PyTorch and in the exported ONNX graph (two plain LSTM operators and a
gather), with no packed sequences to export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bertless.core.errors import InputError
from bertless.models.batching import encode, length_batches
from bertless.models.bilstm_export import export_bilstm
from bertless.models.distill import (
    Distilled,
    Teacher,
    divergence,
    held_out_distance,
    split,
    too_few_texts,
)
from bertless.models.loading import load_classifier, load_tokenizer
from bertless.models.loop import fit
from bertless.say import Say, silent

WEIGHTS_NAME = "bilstm.pt"
CONFIG_NAME = "bilstm.json"
# The reduced embedding width when none is asked for (`--dim`), or the teacher's if narrower.
DEFAULT_DIM = 128


@dataclass(frozen=True)
class Shape:
    """The student's sizes: the vocabulary, the reduced embedding width (`dim`), the LSTM's
    hidden units per direction, and the number of labels."""

    vocab: int
    dim: int
    hidden: int
    labels: int

    def check(self, width: int) -> None:
        """Refuse sizes that cannot be built, in one sentence naming the option."""
        if not 1 <= self.dim <= width:
            raise InputError(
                f"--dim must be between 1 and the teacher's embedding width {width}, "
                f"not {self.dim}."
            )
        if self.hidden < 1:
            raise InputError(f"--hidden must be at least 1, not {self.hidden}.")


class BiLSTM(torch.nn.Module):
    """ids and mask → logits: embedding, BiLSTM, mean ⊕ max pooling over real tokens, linear."""

    def __init__(self, shape: Shape, dropout: float = 0.0) -> None:
        super().__init__()
        self.shape = shape
        self.embed = torch.nn.Embedding(shape.vocab, shape.dim)
        self.forwards = torch.nn.LSTM(shape.dim, shape.hidden, batch_first=True)
        self.backwards = torch.nn.LSTM(shape.dim, shape.hidden, batch_first=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(4 * shape.hidden, shape.labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1)
        tokens = self.dropout(self.embed(input_ids))
        ahead, _ = self.forwards(tokens)
        behind, _ = self.backwards(reverse_within(tokens, lengths))
        states = torch.cat([ahead, reverse_within(behind, lengths)], dim=-1)
        real = attention_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)
        # The LSTM's outputs lie in (-1, 1), so -2 at padding never wins the max.
        top = (states * real + (real - 1.0) * 2.0).amax(dim=1)
        return self.head(self.dropout(torch.cat([mean, top], dim=-1)))


def reverse_within(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first `length` positions in reverse order; the padding after them stays put."""
    positions = torch.arange(values.shape[1], device=values.device).unsqueeze(0)
    mirrored = lengths.unsqueeze(1) - 1 - positions
    index = torch.where(mirrored >= 0, mirrored, positions)
    return values.gather(1, index.unsqueeze(-1).expand_as(values))


def reduce_table(table: np.ndarray, dim: int) -> np.ndarray:
    """The table's rows projected on its `dim` principal components (centred, as PCA is), so
    the reduced table keeps as much of the rows' variance as `dim` dimensions can."""
    centred = table - table.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:dim].T).astype(np.float32)


def teacher_table(teacher: Teacher) -> np.ndarray:
    """The teacher's word-embedding table, read from its PyTorch checkpoint."""
    if teacher.manifest.task != "text-classification":
        raise InputError(
            f"{teacher.manifest.model_id} is an embedding model, and the BiLSTM student is for "
            "classifiers: distill an embedding model with --student layers (or static)."
        )
    if teacher.folder is None:
        raise InputError(
            f"{teacher.bundle} is a bundle, which has no PyTorch embedding table for a BiLSTM "
            "student: give the teacher's checkpoint folder instead."
        )
    model = load_classifier(teacher.folder, teacher.manifest.labels, teacher.manifest.problem_type)
    return model.get_input_embeddings().weight.detach().float().numpy()


def build(teacher: Teacher, dim: int | None, hidden: int, dropout: float = 0.0) -> BiLSTM:
    """A BiLSTM student whose embeddings are the teacher's, reduced to `dim` dimensions (by
    default 128, or the teacher's width if narrower) and frozen (see the module's docstring)."""
    table = teacher_table(teacher)
    dim = min(DEFAULT_DIM, table.shape[1]) if dim is None else dim
    shape = Shape(table.shape[0], dim, hidden, len(teacher.manifest.labels))
    shape.check(table.shape[1])
    net = BiLSTM(shape, dropout)
    with torch.no_grad():
        net.embed.weight.copy_(torch.from_numpy(reduce_table(table, dim)))
    net.embed.weight.requires_grad_(False)
    return net


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch on one thread while a BiLSTM trains: its steps are small matrix products one
    after another, which a second thread cannot speed up, and on a busy machine the threads'
    waiting for each other made a step of a tiny LSTM 50 times slower (7 ms alone, 336 ms with
    two threads at load 17)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def save(net: BiLSTM, folder: Path) -> Path:
    """The trained student as PyTorch weights and its shape, which `load` reads back."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(json.dumps(asdict(net.shape), indent=2))
    return folder


def load(folder: str | Path) -> BiLSTM:
    folder = Path(folder)
    net = BiLSTM(Shape(**json.loads((folder / CONFIG_NAME).read_text())))
    net.load_state_dict(torch.load(folder / WEIGHTS_NAME, weights_only=True))
    return net.eval()


def distill_bilstm(
    teacher: Teacher,
    texts: Sequence[str],
    out: str | Path,
    *,
    dim: int | None = None,
    hidden: int = 128,
    targets: np.ndarray | None = None,
    epochs: int = 10,
    max_length: int = 128,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    temperature: float = 2.0,
    dropout: float = 0.1,
    held_out_fraction: float = 0.1,
    patience: int = 3,
    quantize: str | None = None,
    seed: int = 0,
    show_progress: bool = True,
    step: Say = silent,
) -> Distilled:
    """Teach a BiLSTM student to match `teacher` on `texts`; writes `out/model` and `out/bundle`.

    The same recipe as `distill.distill` (soft labels, a held-out share for early stopping and
    for the distance reported), with more epochs and a higher rate by default: everything but
    the embeddings starts from random weights, and an epoch of a BiLSTM costs seconds.
    """
    texts = list(texts)
    if len(texts) < 2:
        raise InputError(too_few_texts(1))
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}.")
    out = Path(out)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    step("building the BiLSTM student from the teacher's embeddings")
    net = build(teacher, dim, hidden, dropout)
    if targets is None:
        step("labelling the texts with the teacher")
        targets = teacher.label(texts)
    held, rest = split(len(texts), held_out_fraction, rng)
    encoded = encode(load_tokenizer(teacher.folder), texts, max_length)
    goal = torch.tensor(targets, dtype=torch.float32)

    def distance(indices) -> object:
        batch = encoded.batch(indices)
        output = net(batch["input_ids"], batch["attention_mask"])
        return divergence(output, goal[indices], teacher.manifest, temperature)

    plan = [length_batches(rest, encoded.lengths, batch_size, rng) for _ in range(epochs)]
    step(f"distilling into a BiLSTM ({dim} dimensions, {hidden} units each way)")
    with one_thread():
        fitted = fit(
            net,
            plan,
            distance,
            lambda: held_out_distance(distance, held),
            learning_rate=learning_rate,
            patience=patience,
            score_name="held-out distance",
            maximize=False,
            show_progress=show_progress,
        )
    folder = save(net, out / "model")
    export_bilstm(net, teacher, out / "bundle", quantize=quantize, step=step)
    return Distilled(folder, out / "bundle", teacher, fitted, [texts[i] for i in held])
