"""The static engine: a table of token vectors, looked up and averaged in numpy.

A static student (`models/static.py`) is one vector per vocabulary token; a text's embedding is
the mean of its tokens' rows, as model2vec computes it. That needs no onnxruntime, so a static
bundle's function runs on numpy and tokenizers alone (`bertless package` leaves onnxruntime out).

An int8 table keeps one float32 scale per row (`SCALES_NAME`) and stays int8 in memory: only the
rows a batch looks up are turned back into floats, so a 30,522 x 256 table costs 7.8 MB of RAM
instead of 31 MB, which matters in a 128 MB function.
"""

from __future__ import annotations

import numpy as np

from bertless.core.bundle import EMBEDDINGS_NAME, MANIFEST_NAME, SCALES_NAME, Bundle
from bertless.core.errors import BundleError


class StaticEngine:
    """A bundle's `embeddings.npy`, read once; lookups share it read-only, so threads may too."""

    def __init__(self, bundle: Bundle, vocabulary: int | None = None) -> None:
        """`vocabulary`: how many token ids the bundle's tokenizer gives, when the caller has it
        loaded; each must have a row, or the first text with a missing one fails at request
        time instead of the bundle at load."""
        self.bundle = bundle
        self.table = _load(bundle, EMBEDDINGS_NAME)
        self._check_table(vocabulary)
        self.scales: np.ndarray | None = None
        if self.table.dtype == np.int8:
            self.scales = _load(bundle, SCALES_NAME).astype(np.float32)
            if self.scales.shape != (len(self.table),):
                raise BundleError(
                    f"{bundle.path / SCALES_NAME} has shape {self.scales.shape}, not one scale "
                    f"for each of the {len(self.table)} rows of {EMBEDDINGS_NAME}; re-export."
                )
        elif self.table.dtype != np.float32:
            self.table = self.table.astype(np.float32)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The mean of each text's token rows over its mask: one vector per text."""
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        rows = self.table[ids]
        weights = mask.astype(np.float32)
        if self.scales is not None:
            weights *= self.scales[ids]
        summed = np.einsum("bt,btd->bd", weights, rows, dtype=np.float32)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1).astype(np.float32)
        return summed / counts

    def _check_table(self, vocabulary: int | None) -> None:
        """Refuse a manifest of another task, and a table that is not floats (or int8 rows) of
        the manifest's width with a row for every token: a string table failed deep in numpy,
        and a complex or int32 one was cast to float32 without a word."""
        manifest, file, table = self.bundle.manifest, self.bundle.path / EMBEDDINGS_NAME, self.table
        if manifest.task != "feature-extraction":
            raise BundleError(
                f"{self.bundle.path / MANIFEST_NAME} says its task is {manifest.task}, but a "
                "static table embeds texts (feature-extraction): re-export the bundle."
            )
        if table.dtype != np.int8 and not np.issubdtype(table.dtype, np.floating):
            raise BundleError(
                f"{file} holds {table.dtype} values, not float or int8 ones: it is not a table "
                "of token vectors; re-export the bundle."
            )
        if table.ndim != 2 or table.shape[1] != manifest.dimension:
            raise BundleError(
                f"{file} has shape {table.shape}, not (vocabulary, {manifest.dimension}) as "
                "bundle.json says: the table and manifest come from different exports."
            )
        if vocabulary is not None and len(table) < vocabulary:
            raise BundleError(
                f"{file} has {len(table):,} rows but the bundle's tokenizer has {vocabulary:,} "
                "tokens: the table and tokenizer come from different exports; re-export."
            )


def _load(bundle: Bundle, name: str) -> np.ndarray:
    try:
        return np.load(bundle.path / name, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BundleError(
            f"{bundle.path / name} is not a numpy array file ({error}); re-export the bundle."
        ) from None
