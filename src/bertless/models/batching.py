"""Batches for training: tokenized once, drawn class-balanced, grouped by length, padded per batch.

On a CPU the cost of a step grows with the padded width of its batch, so batches are cut from
runs of similar length (never padded to the maximum length). Class balance is drawn, not
weighted into the loss, so every batch shows the model its rare classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertless.core.predictor import Item

POOL_BATCHES = 50  # batches per pool sorted by length: enough to group, few enough to stay random


@dataclass(frozen=True)
class Encoded:
    """Token ids of every example; `batch` pads a selection to its own longest row."""

    ids: list[list[int]]
    type_ids: list[list[int]] | None
    pad_id: int

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(row) for row in self.ids])

    def batch(self, indices: Sequence[int]) -> dict:
        import torch

        width = max(len(self.ids[i]) for i in indices)
        ids = torch.full((len(indices), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(indices), width), dtype=torch.long)
        types = torch.zeros((len(indices), width), dtype=torch.long)
        for row, index in enumerate(indices):
            n = len(self.ids[index])
            ids[row, :n] = torch.tensor(self.ids[index])
            mask[row, :n] = 1
            if self.type_ids is not None:
                types[row, :n] = torch.tensor(self.type_ids[index])
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.type_ids is not None:
            batch["token_type_ids"] = types
        return batch


def encode(tokenizer, items: Sequence[Item], max_length: int) -> Encoded:
    """Tokenize texts or text pairs once, cut at `max_length` tokens."""
    firsts = [i[0] if isinstance(i, tuple) else i for i in items]
    seconds = [i[1] for i in items] if items and isinstance(items[0], tuple) else None
    out = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    types = out["token_type_ids"] if "token_type_ids" in tokenizer.model_input_names else None
    return Encoded(out["input_ids"], types, tokenizer.pad_token_id or 0)


def balanced_sample(labels: Sequence[int], size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` indices, shuffled, with every present label drawn equally often.

    A label with more examples than its share gives distinct ones (a fresh subset each epoch);
    a rarer label repeats all of its examples equally often. Drawing with replacement instead
    would show the model only about 63% of a common label's examples per epoch.
    """
    labels = np.asarray(labels)
    present = np.unique(labels)
    shares = np.full(len(present), size // len(present))
    shares[rng.choice(len(present), size % len(present), replace=False)] += 1
    picks = []
    for label, share in zip(present, shares, strict=True):
        members = np.flatnonzero(labels == label)
        picks += [rng.permutation(members) for _ in range(share // len(members))]
        picks.append(rng.choice(members, share % len(members), replace=False))
    return rng.permutation(np.concatenate(picks))


def length_batches(
    indices: Sequence[int], lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[list[int]]:
    """Cut `indices` into batches of similar length, in random order.

    Sorting happens within pools of POOL_BATCHES batches, so that which texts meet in a batch
    still changes from epoch to epoch.
    """
    indices = rng.permutation(np.asarray(indices))
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, len(indices), pool):
        chunk = indices[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
