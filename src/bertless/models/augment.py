"""More texts to learn from, made of the texts a student already learns from.

A static student is short of contexts: each token's row must stand for every sentence it may
appear in, and the unlabelled texts show it only a few. Recombining the halves of two texts
(the first half of one, the second half of another) puts tokens beside words they were never
beside, and the teacher labels each new text as it labels any other, so the student learns more
of how the teacher reads. Only the texts learnt from may be recombined: a held-out text inside
a training one would leak into the figures that judge the student.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recombinations(texts: Sequence[str], rounds: int, rng: np.random.Generator) -> list[str]:
    """`rounds` passes over `texts`: each text's first half of words followed by the second
    half of another text drawn at random. A text of fewer than two words has no halves and is
    skipped, as are the texts drawn for it."""
    halves = [text.split() for text in texts]
    usable = [words for words in halves if len(words) >= 2]
    made = []
    for _ in range(rounds):
        if not usable:
            break
        for words, other in zip(usable, rng.permutation(len(usable)), strict=True):
            second = usable[other]
            made.append(" ".join(words[: len(words) // 2] + second[len(second) // 2 :]))
    return made
