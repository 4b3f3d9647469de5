"""Recombined texts: halves of the given texts only, each text's first half first."""

from __future__ import annotations

import numpy as np

from bertless.models.augment import recombinations


def test_each_recombination_is_a_first_half_then_a_second_half():
    texts = ["a b c d", "e f g", "h i", "alone"]
    made = recombinations(texts, rounds=3, rng=np.random.default_rng(0))
    firsts = {"a b", "e", "h"}  # len // 2 words of each usable text; "alone" has no halves
    seconds = {"c d", "f g", "i"}
    assert len(made) == 3 * 3
    for text in made:
        assert any(text == f"{first} {second}" for first in firsts for second in seconds), text
    # every usable text opens exactly one recombination a round
    assert sorted(t.split()[0] for t in made) == sorted(["a", "e", "h"] * 3)


def test_nothing_to_recombine_gives_nothing():
    assert recombinations(["one", "two"], rounds=2, rng=np.random.default_rng(0)) == []
    assert recombinations(["a b", "c d"], rounds=0, rng=np.random.default_rng(0)) == []
