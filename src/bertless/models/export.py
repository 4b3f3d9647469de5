"""Export: a Hugging Face checkpoint folder → a bundle (optimized ONNX, fast tokenizer, manifest).

All graph work happens here, once, so that a function's cold start only loads the file.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from msgspec.structs import replace

from bertless.core.bundle import (
    MODEL_NAME,
    TOKENIZER_NAME,
    Manifest,
    Parity,
    Task,
    sha256_file,
    write_manifest,
)
from bertless.core.predictor import Predictor, probabilities
from bertless.models.checkpoint import Checkpoint, describe
from bertless.models.parity import PARITY_SENTENCES, cosine, torch_reference
from bertless.say import Say, silent

OPSET = 17


@dataclass(frozen=True)
class Int8:
    """How a bundle's weights are quantized to int8 (dynamic: activations scaled per run).

    `attention`: quantize the fused Attention's QKV projection too, not only the feed-forward
    and output MatMuls and the embedding table. `per_channel`: one scale per output channel
    rather than one per weight. `reduce_range`: 7-bit weights, for CPUs without VNNI whose
    int8 products can overflow. benchmarks/quantization.py measures each against PyTorch and
    sentence-transformers' own qint8 export; the README gives the figures.
    """

    attention: bool = False
    per_channel: bool = True
    reduce_range: bool = False

    def describe(self) -> str:
        """The settings as the manifest records them (`built_with["int8"]`)."""
        ops = "+".join(_quantized_ops(self))
        grain = "per-channel" if self.per_channel else "per-tensor"
        return f"dynamic, {grain}, {ops}" + (", reduce_range" if self.reduce_range else "")


def _quantized_ops(settings: Int8) -> list[str]:
    ops = ["MatMul", "EmbedLayerNormalization", "Gather"]
    return [*ops, "Attention"] if settings.attention else ops


# `--quantize NAME`: each name is one Int8 setting, measured by benchmarks/quantization.py on
# all-MiniLM-L6-v2 (1,000 mixed-length texts, cosine to PyTorch; bulk against
# sentence-transformers' own qint8 export, in one process; three runs under load). `int8` keeps
# the fused attention's QKV weights in fp32: 0.99x, 1.32x and 1.81x that export's bulk speed at
# better parity (cosine 0.982 min / 0.993 mean against its 0.981 / 0.992), 29 MB. `int8-fast`
# quantizes every projection with 7-bit weights: 1.16x, 1.75x and 1.53x at 0.978 / 0.991, 22 MB,
# but short texts drift further (0.966 for "ok"); without reduce_range it fell to 0.972 min.
QUANTIZE = {
    "int8": Int8(attention=False),
    "int8-fast": Int8(attention=True, reduce_range=True),
}


def export(
    model: str | Path | None,
    out: str | Path,
    task: Task | None = None,
    quantize: str | None = None,
    max_length: int | None = None,
    step: Say = silent,
) -> Manifest:
    """Write a bundle to `out` and return its manifest; `step` is told each stage for progress."""
    if quantize is not None and quantize not in QUANTIZE:
        raise ValueError(f"--quantize takes {' or '.join(QUANTIZE)}, not {quantize!r}.")
    checkpoint = describe(model, task, max_length)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    step("loading the PyTorch model")
    torch_model, hf_tokenizer = _load(checkpoint)
    step("writing the fast tokenizer")
    pad_id = _write_tokenizer(hf_tokenizer, out / TOKENIZER_NAME)
    inputs = _graph_inputs(torch_model)
    # Before exporting: tracing leaves the PyTorch model computing different values afterwards.
    step("computing the PyTorch reference")
    pooling = checkpoint.pooling if checkpoint.task == "feature-extraction" else None
    items = list(PARITY_SENTENCES)
    reference = torch_reference(torch_model, hf_tokenizer, items, checkpoint.max_length, pooling)
    output = "last_hidden_state" if checkpoint.task == "feature-extraction" else "logits"

    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.onnx"
        step("exporting to ONNX")
        _to_onnx(torch_model, inputs, output, raw)
        step("optimizing the graph (transformer fusions)")
        optimized = Path(scratch) / "optimized.onnx"
        _optimize(raw, optimized, torch_model.config)
        if quantize:
            step(f"quantizing weights to int8 ({QUANTIZE[quantize].describe()})")
            _quantize(optimized, out / MODEL_NAME, QUANTIZE[quantize])
        else:
            shutil.copyfile(optimized, out / MODEL_NAME)

    manifest = Manifest(
        model_id=checkpoint.model_id,
        task=checkpoint.task,
        labels=checkpoint.labels,
        problem_type=checkpoint.problem_type,
        pooling=checkpoint.pooling,
        normalize=checkpoint.normalize,
        dimension=torch_model.config.hidden_size
        if checkpoint.task == "feature-extraction"
        else None,
        max_length=checkpoint.max_length,
        pad_token_id=pad_id,
        inputs=inputs,
        output=output,
        precision="int8" if quantize else "fp32",
        files={name: sha256_file(out / name) for name in (MODEL_NAME, TOKENIZER_NAME)},
        built_with=versions() | ({"int8": QUANTIZE[quantize].describe()} if quantize else {}),
    )
    write_manifest(out, manifest)
    step("measuring parity against PyTorch")
    manifest = replace(manifest, parity=_parity(out, checkpoint, items, reference))
    write_manifest(out, manifest)
    return manifest


def _load(checkpoint: Checkpoint):
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from bertless.models.loading import quiet

    kind = (
        AutoModel if checkpoint.task == "feature-extraction" else AutoModelForSequenceClassification
    )
    with quiet():
        model = kind.from_pretrained(checkpoint.path, attn_implementation="eager")
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint.path, use_fast=True)
    return model, tokenizer


def _write_tokenizer(hf_tokenizer, path: Path) -> int:
    """Save the fast tokenizer with padding and truncation cleared.

    Checkpoints often preset both to a fixed 128; left in, every input would be padded to 128 and
    cut there. The runtime pads per micro-batch and truncates from the manifest instead.
    """
    backend = hf_tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(path))
    return hf_tokenizer.pad_token_id or 0


def _graph_inputs(model) -> list[str]:
    accepted = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]


def _to_onnx(model, inputs: list[str], output: str, path: Path) -> None:
    import torch

    sample = {name: torch.ones((2, 8), dtype=torch.long) for name in inputs}
    sample["token_type_ids"] = (
        torch.zeros((2, 8), dtype=torch.long) if "token_type_ids" in inputs else None
    )
    sample = {k: v for k, v in sample.items() if v is not None}
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    axes[output] = {0: "batch", 1: "sequence"} if output == "last_hidden_state" else {0: "batch"}

    class Wrapped(torch.nn.Module):
        """Positional inputs and the one output we serve, as the exporter wants them."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            return getattr(self.model(**dict(zip(inputs, args, strict=True))), output)

    # The tracer warns about Python branches in transformers' mask code and about index export;
    # both were checked: parity is measured below on padded batches, pairs and truncated text.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapped(),
            tuple(sample[name] for name in inputs),
            str(path),
            input_names=inputs,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _optimize(source: Path, target: Path, config) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    # RoBERTa-style models fuse as BERT; DistilBERT has its own fusion rules.
    model_type = "distilbert" if config.model_type == "distilbert" else "bert"
    optimized = optimize_model(
        str(source),
        model_type=model_type,
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
    )
    optimized.save_model_to_file(str(target))


def _quantize(source: Path, target: Path, settings: Int8) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators are unknown to ONNX's shape inference, hence DefaultTensorType. For the
    # same reason its advice to "run pre-processing" (symbolic shape inference) cannot be
    # followed, so that warning is held back rather than shown every export.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=_quantized_ops(settings),
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        logging.disable(logging.NOTSET)


def _parity(out: Path, checkpoint: Checkpoint, items: list, reference: np.ndarray) -> Parity:
    predictor = Predictor.load(out)
    if checkpoint.task == "feature-extraction":
        ours = predictor.embed(items, truncate=True, normalize=False).values
        scores = cosine(ours, reference)
        return Parity(
            reference="torch fp32",
            metric="cosine",
            min=float(scores.min()),
            mean=float(scores.mean()),
            sentences=len(items),
        )
    ours = predictor.classify(items, truncate=True, raw_scores=True).values
    multi_label = checkpoint.problem_type == "multi_label_classification"
    diff = np.abs(probabilities(ours, multi_label) - probabilities(reference, multi_label)).max(
        axis=1
    )
    return Parity(
        reference="torch fp32",
        metric="max_abs_diff",
        min=float(diff.min()),
        mean=float(diff.mean()),
        sentences=len(items),
    )


def versions() -> dict[str, str]:
    """The versions of the packages that built a bundle, for its manifest."""
    names = ("bertless", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
