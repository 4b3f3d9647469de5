"""Predictor: texts in, vectors or labels out, in input order.

The work per call is tokenize → sort by length → micro-batches padded to their own longest
sequence → one shared engine (an onnxruntime session) → pool / softmax. Sorting keeps padding
(wasted compute) small when lengths vary; the order of the answers is restored before returning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Encoding, Tokenizer

from bertless.core.bundle import Bundle, Manifest, load_bundle
from bertless.core.cpus import available_cpus
from bertless.core.errors import BackendError, InputError, InputTooLongError

# Characters per token of the limit that a long text's head keeps (see Predictor._head):
# English averages about four per token; whitespace-free text falls back to the whole text.
HEAD_CHARS_PER_TOKEN = 16

Text = str
Pair = tuple[str, str]
Item = Text | Pair


@dataclass(frozen=True)
class Forward:
    """The raw result of a run: one row per input, in input order."""

    values: np.ndarray
    token_counts: list[int]


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Sigmoid per label for multi-label (and single-score) heads, softmax otherwise."""
    if multi_label or logits.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def text_problem(value: object) -> str | None:
    """Why VALUE is not a text the model scores, or None: the one rule the library, the HTTP
    service and batch scoring share.

    Blank (whitespace-only) text is text, as in TEI: it tokenizes to the special tokens and
    embeds like any other. Only the empty string is refused.
    """
    if not isinstance(value, str):
        return f"{kind_of(value)}, not a string"
    if value == "":
        return "the empty string"
    return None


def kind_of(value: object) -> str:
    """What VALUE is, in the words of JSON, where most inputs come from ("a number", not
    Python's "a int")."""
    if value is None:
        return "null"
    for kinds, name in (
        (bool, "a boolean"),
        ((int, float), "a number"),
        ((list, tuple), "a list"),
        (dict, "an object"),
    ):
        if isinstance(value, kinds):
            return name
    return f"a {type(value).__name__}"


def label_names(labels: Sequence[str], width: int) -> list[str]:
    """The bundle's labels, or `LABEL_0`... as transformers names them when a bundle has none."""
    return list(labels) or [f"LABEL_{i}" for i in range(width)]


def rank_labels(scores: np.ndarray, labels: Sequence[str]) -> list[dict]:
    """One input's scores as `{"label", "score"}`, best first; ties keep the label order."""
    names = label_names(labels, len(scores))
    return [
        {"label": names[i], "score": float(scores[i])} for i in np.argsort(-scores, kind="stable")
    ]


def as_items(inputs: object, *, pairs: bool) -> list[Item]:
    """Check that every input is a text (or a pair of them) before any work is done."""
    if isinstance(inputs, (str, tuple)):
        inputs = [inputs]
    if not isinstance(inputs, Sequence) or isinstance(inputs, bytes):
        raise InputError("inputs must be a text or a list of texts.")
    if len(inputs) == 0:
        raise InputError("inputs is an empty list: give at least one text.")
    items: list[Item] = []
    for index, item in enumerate(inputs):
        if pairs and isinstance(item, (tuple, list)):
            if len(item) != 2 or not all(isinstance(t, str) for t in item):
                raise InputError(f"input {index} is not a pair of two texts.")
            item = (item[0], item[1])
        elif not isinstance(item, str):
            raise InputError(
                f"input {index} is {kind_of(item)}, not a text"
                + (" or a pair of texts." if pairs else ".")
            )
        texts = item if isinstance(item, tuple) else (item,)
        problem = next(filter(None, map(text_problem, texts)), None)
        if problem:
            raise InputError(f"input {index} is {problem}.")
        items.append(item)
    return items


def encode_all(tokenizer: Tokenizer, sources: list[Item]) -> list[Encoding]:
    """`encode_batch`, but one text is encoded in the calling thread: `encode_batch` hands even a
    single text to the tokenizer's thread pool, and waking a pool thread after a model run is
    a cost on every batch-1 request."""
    if len(sources) != 1:
        return tokenizer.encode_batch(sources)
    (source,) = sources
    return [tokenizer.encode(*source) if isinstance(source, tuple) else tokenizer.encode(source)]


class Engine(Protocol):
    """What runs a bundle's model: padded token ids in, token states or one row per input out."""

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray: ...


def open_engine(
    bundle: Bundle, threads: int | None = None, vocabulary: int | None = None
) -> Engine:
    """The engine for the bundle's architecture, imported only when a bundle needs it: a static
    table runs in numpy, so its process never imports onnxruntime. `vocabulary` is the size of
    the bundle's tokenizer, which a static table must cover."""
    if bundle.manifest.architecture == "static":
        from bertless.core.engine_static import StaticEngine

        return StaticEngine(bundle, vocabulary)
    from bertless.core.engine_onnx import OnnxEngine

    return OnnxEngine(bundle, threads or available_cpus())


class Predictor:
    """One loaded bundle, safe to share between threads (its engine is)."""

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        self._tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._engine = open_engine(bundle, threads, self._tokenizer.get_vocab_size())
        # What runs one padded micro-batch: the session itself, or a `core.batcher.Batcher` in
        # front of it that bounds and merges the runs of concurrent requests (the service's).
        self.runner: Callable[[list[Encoding]], np.ndarray] = self._run

    @cached_property
    def _truncating(self) -> Tokenizer:
        """A second tokenizer that cuts at the max length, parsed at the first text too long:
        most requests never need it, and parsing it took as long as the first (~15 ms for
        MiniLM's, more on a function's share of a CPU) of every cold start. Two threads that
        need it at once each parse one; either serves."""
        truncating = Tokenizer.from_file(str(self.bundle.tokenizer_path))
        truncating.no_padding()
        truncating.enable_truncation(self.manifest.max_length)
        return truncating

    @classmethod
    def load(cls, path: str | Path, verify: bool = True, threads: int | None = None) -> Predictor:
        """Load a bundle directory, checking its files against the manifest first."""
        return cls(load_bundle(path, verify=verify), threads=threads)

    # -- public API ---------------------------------------------------------------------------

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool | None = None,
        truncate: bool | None = None,
    ) -> np.ndarray:
        """Embeddings as float32, shape (n, dim); a single text gives shape (dim,).

        Named like sentence-transformers' `encode`; `normalize_embeddings` defaults to what the
        bundle was made with.
        """
        self._require("feature-extraction", "encode")
        items = as_items(sentences, pairs=False)
        vectors = self.embed(items, batch_size, truncate, normalize_embeddings).values
        return vectors[0] if isinstance(sentences, str) else vectors

    def predict(
        self,
        inputs: Item | Sequence[Item],
        batch_size: int = 32,
        truncate: bool | None = None,
        raw_scores: bool = False,
    ) -> list:
        """Scores for every label, best first, per input; a single input gives a single list.

        A tuple is a text pair (question–passage, query–title, two sentences for STS).
        """
        self._require("text-classification", "predict")
        items = as_items(inputs, pairs=True)
        scores = self.classify(items, batch_size, truncate, raw_scores).values
        ranked = [rank_labels(row, self.manifest.labels) for row in scores]
        return ranked[0] if isinstance(inputs, (str, tuple)) else ranked

    # -- building blocks the service uses -------------------------------------------------------

    def embed(
        self,
        items: list[Item],
        batch_size: int = 32,
        truncate: bool | None = None,
        normalize: bool | None = None,
    ) -> Forward:
        """Pooled embeddings of checked items, with the token count of each."""
        forward = self._forward(items, batch_size, truncate)
        vectors = forward.values
        if self.manifest.normalize if normalize is None else normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return Forward(vectors.astype(np.float32, copy=False), forward.token_counts)

    def classify(
        self,
        items: list[Item],
        batch_size: int = 32,
        truncate: bool | None = None,
        raw_scores: bool = False,
    ) -> Forward:
        """Probabilities (softmax, or sigmoid for multi-label), or raw logits, per item."""
        forward = self._forward(items, batch_size, truncate)
        logits = forward.values
        multi_label = self.manifest.problem_type == "multi_label_classification"
        scores = logits if raw_scores else probabilities(logits, multi_label)
        return Forward(scores.astype(np.float32, copy=False), forward.token_counts)

    # -- internals ----------------------------------------------------------------------------

    def _forward(self, items: list[Item], batch_size: int, truncate: bool | None) -> Forward:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}.")
        encodings = self._tokenize(
            items, self.manifest.auto_truncate if truncate is None else truncate
        )
        if len(encodings) <= batch_size:
            # One micro-batch (every batch-1 request): its padding is the same in any order, so
            # there is nothing to sort and no order to restore.
            values = self.runner(encodings)
        else:
            values = self._sorted_runs(encodings, batch_size)
        if not np.isfinite(values).all():
            raise BackendError("the model produced NaN or infinite values for this input.")
        return Forward(values, [len(e.ids) for e in encodings])

    def _sorted_runs(self, encodings: list[Encoding], batch_size: int) -> np.ndarray:
        """Micro-batches of texts of similar length (longest first), rows back in input order."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids), reverse=True)
        rows: list[np.ndarray] = [np.empty(0)] * len(encodings)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out = self.runner([encodings[i] for i in chunk])
            for position, index in enumerate(chunk):
                rows[index] = out[position]
        return np.stack(rows)

    def _tokenize(self, items: list[Item], truncate: bool) -> list[Encoding]:
        """Encode without truncation first, so that an over-long input can be named, not cut.

        A long text is encoded by its head first (`_head`): when the head alone is over the
        limit, so is the text, and the rest is never tokenized. Tokenizing all of a 1 MB text to
        refuse it took 1.2 s and left the process hundreds of MB larger.
        """
        limit = self.manifest.max_length
        sources = [self._head(item) for item in items]
        encodings = encode_all(self._tokenizer, sources)
        # A head within the limit says nothing about the rest: encode those texts whole.
        unsure = [i for i, e in enumerate(encodings) if sources[i] is not items[i]]
        unsure = [i for i in unsure if len(encodings[i].ids) <= limit]
        if unsure:
            whole = encode_all(self._tokenizer, [items[i] for i in unsure])
            for index, encoding in zip(unsure, whole, strict=True):
                sources[index], encodings[index] = items[index], encoding
        too_long = [i for i, e in enumerate(encodings) if len(e.ids) > limit]
        if too_long and not truncate:
            first = too_long[0]
            count = len(encodings[first].ids)
            measured = f"at least {count}" if sources[first] is not items[first] else str(count)
            raise InputTooLongError(
                f"input {first} has {measured} tokens, more than the maximum of "
                f"{limit}: shorten it or set truncate to true"
                + (f" ({len(too_long)} inputs are too long)." if len(too_long) > 1 else ".")
            )
        if too_long:
            # Cutting a head gives the tokens that cutting its whole text gives.
            cut = encode_all(self._truncating, [sources[i] for i in too_long])
            for index, encoding in zip(too_long, cut, strict=True):
                encodings[index] = encoding
        return encodings

    def _head(self, item: Item) -> Item:
        """The start of a long text, cut at a whitespace; short texts and pairs as they are.

        Tokenizers split text into words at whitespace before anything else (the pre-tokenizer;
        normalizers work character by character), so the tokens of a head cut at a whitespace
        are the first tokens of the whole text. A token rarely takes more than a few characters,
        so a head of `HEAD_CHARS_PER_TOKEN` characters per token allowed is almost always over.
        """
        size = HEAD_CHARS_PER_TOKEN * self.manifest.max_length
        if isinstance(item, tuple) or len(item) <= size or self._tokenizer.pre_tokenizer is None:
            return item
        cut = max(item.rfind(space, 0, size) for space in " \n\t")
        return item[:cut] if cut > 0 else item

    def _run(self, encodings: list[Encoding]) -> np.ndarray:
        """One padded micro-batch through the graph; pooled when the model gives token states."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.manifest.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        out = self._engine.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        if out.ndim == 3:
            return self._pool(out, mask)
        return out

    def _pool(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.manifest.pooling == "cls":
            return states[:, 0]
        if len(states) == 1:  # one text has no padding: the mean over its tokens
            return states.sum(axis=1) / states.shape[1]
        weights = mask[:, :, None].astype(states.dtype)
        return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def _require(self, task: str, method: str) -> None:
        if self.manifest.task != task:
            raise InputError(
                f"{method}() needs a {task} bundle; {self.manifest.model_id} is "
                f"{self.manifest.task}."
            )
