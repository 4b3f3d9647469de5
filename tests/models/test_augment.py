"""Recombined texts: halves of the given texts only, each text's first half first. Rare-word
copies: a given text with one word swapped for a vocabulary word the texts (almost) lack."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

from bertless.models.augment import rare_word_texts, recombinations

WORDS = ["[UNK]", "good", "movie", "bad", "zebra", "quartz", "##s", "42"]


def word_piece() -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


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


def test_rare_words_are_those_seen_fewer_than_three_times_each_used_before_any_again():
    # one-word texts: a copy is the word put in. Seen: good 3 times, movie 2, bad, zebra and
    # quartz never; "##s", "42" and "[UNK]" are not whole alphabetic words
    texts = ["good", "good", "good", "movie", "movie"]
    made = rare_word_texts(texts, word_piece(), rounds=4, rng=np.random.default_rng(0))
    assert len(made) == 4 * 5
    for start in range(0, 20, 4):
        assert sorted(made[start : start + 4]) == ["bad", "movie", "quartz", "zebra"]


def test_each_copy_is_its_text_with_one_word_swapped():
    texts = ["good good good", "", "good good"]
    made = rare_word_texts(texts, word_piece(), rounds=2, rng=np.random.default_rng(1))
    assert len(made) == 2 * 2  # the empty text has no word to swap
    for copy, original in zip(made, ["good good good", "good good"] * 2, strict=True):
        new = copy.split()
        assert len(new) == len(original.split())
        put_in = [word for word in new if word != "good"]
        assert len(put_in) == 1 and put_in[0] in {"bad", "movie", "quartz", "zebra"}


def test_no_rare_word_or_no_round_gives_nothing():
    common = ["good movie bad zebra quartz"] * 3
    assert rare_word_texts(common, word_piece(), rounds=2, rng=np.random.default_rng(0)) == []
    assert rare_word_texts(["good"], word_piece(), rounds=0, rng=np.random.default_rng(0)) == []
