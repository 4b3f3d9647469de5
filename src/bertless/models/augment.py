"""More texts to learn from, made of the texts a student already learns from.

A static student is short of contexts: each token's row must stand for every sentence it may
appear in, and the unlabelled texts show it only a few. Recombining the halves of two texts
(the first half of one, the second half of another) puts tokens beside words they were never
beside, and the teacher labels each new text as it labels any other, so the student learns more
of how the teacher reads. Only the texts learnt from may be recombined: a held-out text inside
a training one would leak into the figures that judge the student.

A table is also short of tokens: a vocabulary word the texts never contain keeps the row it
started from, the teacher's reading of the word alone, and no training reaches it. Copying
training texts with one word swapped for such a word shows the teacher, and so the student,
each of them in a sentence (the vocabulary is the teacher's, so nothing held out is used).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

# A vocabulary word seen fewer times than this in the texts counts as rare: after one round of
# rare-word copies (21k texts, MiniLM) it has been seen in about two sentences.
RARE_BELOW = 3


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


def rare_word_texts(
    texts: Sequence[str], tokenizer: Tokenizer, rounds: int, rng: np.random.Generator
) -> list[str]:
    """`rounds` passes over `texts`: each text with one word, drawn at random, replaced by a
    rare whole word of `tokenizer`'s vocabulary, taken in turn from a shuffled cycle so that
    every rare word is used before any is used again. Rare: alphabetic ASCII, not a word piece
    or special token, and fewer than `RARE_BELOW` times among the tokens of `texts`."""
    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        np.add.at(counts, encoding.ids, 1)
    rare = sorted(
        word
        for word, index in tokenizer.get_vocab(with_added_tokens=True).items()
        if word.isascii() and word.isalpha() and counts[index] < RARE_BELOW
    )
    usable = [words for words in (text.split() for text in texts) if words]
    if not rare or not usable:
        return []
    made, cycle = [], []
    for _ in range(rounds):
        for words in usable:
            if not cycle:
                cycle = [rare[i] for i in rng.permutation(len(rare))]
            copy = list(words)
            copy[rng.integers(len(copy))] = cycle.pop()
            made.append(" ".join(copy))
    return made
