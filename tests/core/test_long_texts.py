"""Long texts are judged by their head: the same tokens and the same refusals as tokenizing the
whole text, checked against the bundle's tokenizer run on the whole text."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from bertless import Predictor
from bertless.core.errors import InputTooLongError
from bertless.core.predictor import HEAD_CHARS_PER_TOKEN


@pytest.fixture(scope="module")
def minilm(minilm_bundle) -> Predictor:
    return Predictor.load(minilm_bundle)


@pytest.fixture(scope="module")
def whole(minilm) -> Tokenizer:
    """The reference: the bundle's tokenizer on the whole text, cut at the limit."""
    tokenizer = Tokenizer.from_file(str(minilm.bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(minilm.manifest.max_length)
    return tokenizer


def long_text(words: int) -> str:
    vocabulary = "Zürich café 東京 unbelievable tokenization, punctuation! and-dashes 😀 x".split()
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def head_size(predictor: Predictor) -> int:
    return HEAD_CHARS_PER_TOKEN * predictor.manifest.max_length


def test_a_long_text_truncated_has_the_tokens_of_the_whole_text_truncated(minilm, whole):
    text = long_text(20_000)
    assert len(text) > 10 * head_size(minilm)
    (encoding,) = minilm._tokenize([text], truncate=True)
    assert encoding.ids == whole.encode(text).ids
    assert len(encoding.ids) == minilm.manifest.max_length


def test_a_long_text_is_refused_by_its_head_with_a_lower_bound(minilm):
    text = long_text(20_000)
    with pytest.raises(InputTooLongError, match=r"input 1 has at least \d+ tokens, more than"):
        minilm._tokenize(["short", text], truncate=False)


def test_a_long_text_whose_head_fits_is_tokenized_whole(minilm, whole):
    # Words of 150 letters are one [UNK] each, so a head of them is far within the limit; the
    # tokens after it decide, so the whole text must be read.
    text = " ".join(["a" * 150] * 40) + " " + "word " * 300
    assert len(text) > head_size(minilm)
    with pytest.raises(InputTooLongError, match=r"input 0 has 342 tokens"):
        minilm._tokenize([text], truncate=False)
    (encoding,) = minilm._tokenize([text], truncate=True)
    assert encoding.ids == whole.encode(text).ids


def test_a_long_text_without_whitespace_is_tokenized_whole(minilm, whole):
    text = "x" * (head_size(minilm) + 10)
    (encoding,) = minilm._tokenize([text], truncate=False)
    assert encoding.ids == whole.encode(text).ids
