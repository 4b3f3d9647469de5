"""Client options that reshape an answer after the model ran: OpenAI's `dimensions` (a
Matryoshka cut) and the Inference API's `function_to_apply`.

Apart from `service` so that the rules of the contract read on their own there, and each of
these reads as the one rule it is.
"""

from __future__ import annotations

import numpy as np

from bertless.core.bundle import Manifest
from bertless.core.errors import InputError


def dimension_sizes(manifest: Manifest) -> list[int]:
    """The `dimensions` a request may ask for: the Matryoshka sizes and the full dimension."""
    full = [manifest.dimension] if manifest.dimension else []
    return sorted({*manifest.matryoshka_dimensions, *full})


def cut(vectors: np.ndarray, wanted: int | None, manifest: Manifest, normalize: bool) -> np.ndarray:
    """VECTORS cut to their first WANTED values and renormalized, as OpenAI's Matryoshka models
    do, when the bundle says the model was trained for it; refused otherwise, because the first
    values of an ordinary embedding are not a smaller embedding."""
    full = vectors.shape[1]
    if wanted is None or wanted == full:
        return vectors
    trained = manifest.matryoshka_dimensions
    if wanted not in trained:
        sizes = ", ".join(map(str, trained)) or "none: its bundle lists no Matryoshka sizes"
        raise InputError(
            f"dimensions: this model gives {full} values and was not trained to be cut to "
            f"{wanted} (sizes it was: {sizes}); leave dimensions out."
        )
    head = vectors[:, :wanted]
    return head / np.linalg.norm(head, axis=1, keepdims=True) if normalize else head


def apply_function(function: str, logits: np.ndarray) -> np.ndarray:
    """The Inference API's function_to_apply over raw logits."""
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if function == "softmax":
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return logits
