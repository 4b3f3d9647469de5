"""Shared by the benchmarks: the texts they run on and the quantiles they report."""

from __future__ import annotations

import random

import numpy as np

WORDS = (
    "the model serves text on a function and answers quickly while costs stay low for every "
    "request from users who want sentiment labels embeddings similarity search over documents "
    "reviews tweets news articles product descriptions questions answers café naïve Zürich "
    "東京 ラーメン 😀 🔥 data cloud lambda azure google latency memory cold start batch"
).split()


def mixed_texts(n: int = 1000, seed: int = 0) -> list[str]:
    """Texts of mixed length, 3 to 200 words, most of them short, as real traffic is."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        length = min(200, max(3, int(rng.lognormvariate(2.8, 0.8))))
        texts.append(" ".join(rng.choice(WORDS) for _ in range(length)))
    return texts


def quantiles(seconds: list[float]) -> dict[str, float]:
    """q50/q95/q99/max in milliseconds."""
    ms = np.asarray(seconds) * 1e3
    return {
        "q50": float(np.percentile(ms, 50)),
        "q95": float(np.percentile(ms, 95)),
        "q99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }
