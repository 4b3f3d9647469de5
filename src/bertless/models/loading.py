"""Loading and saving Hugging Face checkpoints for training: local folders only, and quietly.

transformers reports every freshly initialized head as a table and a progress bar; in a command
whose own progress bars matter that is noise, so loading silences it and restores it after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def quiet() -> Iterator[None]:
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    with quiet():
        return AutoTokenizer.from_pretrained(path, use_fast=True)


def load_classifier(
    path: Path, labels: list[str], problem_type: str = "single_label_classification"
):
    """A sequence classifier with a head for `labels`; a head of another size is replaced.

    `problem_type` is saved in config.json, where export reads whether scores are a softmax
    over the labels (single-label) or a sigmoid per label (multi-label).
    """
    from transformers import AutoModelForSequenceClassification

    with quiet():
        return AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            problem_type=problem_type,
            ignore_mismatched_sizes=True,
        )


def load_encoder(path: Path):
    """The bare encoder (token states out), for embedding models."""
    from transformers import AutoModel

    with quiet():
        return AutoModel.from_pretrained(path)


def save(model, tokenizer, out: Path, max_length: int) -> Path:
    """Write model and tokenizer as a folder `export` takes; `max_length` is what it will serve."""
    out.mkdir(parents=True, exist_ok=True)
    with quiet():
        model.save_pretrained(out)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(out)
    return out
