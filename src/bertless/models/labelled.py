"""Labelled examples and the stratified split every trainer uses.

Apart from `data` (which reads files) so that the datasets that make `Labelled` examples, such as
`vader`, need nothing from the readers that call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertless.core.errors import InputError
from bertless.core.predictor import Item


@dataclass(frozen=True)
class Labelled:
    """Texts (or text pairs) with label ids; `names[i]` is the label whose id is i."""

    texts: list[Item]
    labels: list[int]
    names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> Labelled:
        return Labelled(
            [self.texts[i] for i in indices], [self.labels[i] for i in indices], self.names
        )

    def sample(self, size: int | None, seed: int = 0) -> Labelled:
        """At most `size` examples, in each label's proportion; all of them if `size` is None."""
        if size is None or size >= len(self):
            return self
        return self.subset(stratified_split(self.labels, size, seed, self.names)[1])


def stratified_split(
    labels: Sequence[int], size: int, seed: int = 0, names: Sequence[str] | None = None
) -> tuple[list[int], list[int]]:
    """Indices (rest, chosen) with `size` chosen in each label's proportion, every label kept."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    present = int((counts > 0).sum())
    if size < present or len(labels) - size < present:
        raise InputError(
            f"cannot split {len(labels)} examples into {size} and {len(labels) - size} "
            f"with all {present} labels on both sides: give more examples."
        )
    scarce = [label for label, count in enumerate(counts) if count == 1]
    if scarce:
        name = names[scarce[0]] if names else scarce[0]
        raise InputError(
            f"label {name!r} has a single example: each label needs at least two, one to "
            "learn from and one to check on."
        )
    rest, chosen = train_test_split(
        np.arange(len(labels)), test_size=size, stratify=labels, random_state=seed
    )
    return sorted(rest.tolist()), sorted(chosen.tolist())
