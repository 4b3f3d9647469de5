"""The fixed sentences every export is checked on, and the PyTorch reference to check them by.

They cover what breaks tokenizers and exporters: non-ASCII text, emoji, a text longer than the
model's maximum (cut by truncation), and a text pair.
"""

from __future__ import annotations

import numpy as np

from bertless.core.predictor import Item

PARITY_SENTENCES: list[Item] = [
    "The quick brown fox jumps over the lazy dog.",
    "Serverless inference keeps costs low when traffic is bursty.",
    "Ça coûte trop cher, mais le café était délicieux à Zürich.",
    "Das Modell läuft schnell – sogar auf einer kleinen Funktion.",
    "東京で一番おいしいラーメン屋はどこですか？",
    "I love this product 😍🔥 best purchase ever!!!",
    "bad.",
    "Terrible customer service; I will never order again.",
    " ".join(["This sentence repeats to exceed the maximum length of the model."] * 60),
    ("How do I deploy a model to AWS Lambda?", "Package the ONNX bundle as a zip and upload it."),
    ("A man is playing a guitar.", "Someone plays an instrument."),
]


def torch_reference(
    model, tokenizer, items: list[Item], max_length: int, pooling: str | None
) -> np.ndarray:
    """What the PyTorch model says, pooled the sentence-transformers way (or logits)."""
    import torch

    firsts = [i[0] if isinstance(i, tuple) else i for i in items]
    seconds = [i[1] if isinstance(i, tuple) else None for i in items]
    rows = []
    with torch.inference_mode():
        for first, second in zip(firsts, seconds, strict=True):
            batch = tokenizer(
                first, second, truncation=True, max_length=max_length, return_tensors="pt"
            )
            out = model(**batch)
            if pooling is None:
                rows.append(out.logits[0].float().numpy())
                continue
            states = out.last_hidden_state[0]
            if pooling == "cls":
                rows.append(states[0].numpy())
            else:
                rows.append(states.mean(dim=0).numpy())
    return np.stack(rows)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)
