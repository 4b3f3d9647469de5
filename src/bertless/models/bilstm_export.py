"""A trained BiLSTM student → an ordinary bundle: ONNX (ids and mask in, logits out), the
teacher's tokenizer, and a manifest that says `architecture: bilstm`.

The graph takes the inputs and gives the output a transformer classifier's does, so the
Predictor, `serve`, `package`, `bench` and `batch` run it with the same onnxruntime code path.
Parity is measured as for every export: the bundle, through the Predictor (batched, so padded),
against the PyTorch module on each parity sentence alone.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from msgspec.structs import replace

from bertless.core.bundle import (
    MODEL_NAME,
    TOKENIZER_NAME,
    Manifest,
    Parity,
    sha256_file,
    write_manifest,
)
from bertless.core.predictor import Predictor, probabilities
from bertless.models.batching import encode
from bertless.models.distill import Teacher
from bertless.models.export import OPSET, versions
from bertless.models.loading import load_tokenizer
from bertless.models.parity import PARITY_SENTENCES
from bertless.say import Say, silent

INPUTS = ["input_ids", "attention_mask"]
OUTPUT = "logits"


def export_bilstm(
    net: torch.nn.Module,
    teacher: Teacher,
    out: Path,
    quantize: str | None = None,
    step: Say = silent,
) -> Manifest:
    """Write the student's bundle to `out` and return its manifest."""
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize takes int8, not {quantize!r}.")
    net.eval()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(teacher.bundle / TOKENIZER_NAME, out / TOKENIZER_NAME)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.onnx"
        step("exporting the BiLSTM to ONNX")
        to_onnx(net, raw)
        if quantize:
            step("quantizing the embedding table and the head to int8")
            _quantize(raw, out / MODEL_NAME)
        else:
            shutil.copyfile(raw, out / MODEL_NAME)
    source = teacher.manifest
    manifest = Manifest(
        model_id=f"{source.model_id}-bilstm",
        architecture="bilstm",
        task=source.task,
        labels=source.labels,
        problem_type=source.problem_type,
        max_length=source.max_length,
        pad_token_id=source.pad_token_id,
        inputs=INPUTS,
        output=OUTPUT,
        precision=quantize or "fp32",
        files={name: sha256_file(out / name) for name in (MODEL_NAME, TOKENIZER_NAME)},
        built_with=versions(),
    )
    write_manifest(out, manifest)
    step("measuring parity against PyTorch")
    manifest = replace(manifest, parity=parity(net, teacher, out))
    write_manifest(out, manifest)
    return manifest


def to_onnx(net: torch.nn.Module, path: Path) -> None:
    """The module as an ONNX graph with a dynamic batch and sequence length."""
    sample = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {OUTPUT: {0: "batch"}}
    # The exporter warns that an LSTM exported with a batch size may not run with another; the
    # parity check below runs a batch of another size and lengths.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            sample,
            str(path),
            input_names=INPUTS,
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def reference(net: torch.nn.Module, teacher: Teacher, items: list, max_length: int) -> np.ndarray:
    """The PyTorch module's logits for each item alone (no padding), tokenized by the teacher's
    Hugging Face tokenizer: the independent side of the parity check."""
    tokenizer = load_tokenizer(teacher.folder)
    rows = []
    with torch.inference_mode():
        for item in items:  # one at a time: a text pair among texts is encoded as a pair
            batch = encode(tokenizer, [item], max_length).batch([0])
            rows.append(net(batch["input_ids"], batch["attention_mask"])[0].numpy())
    return np.stack(rows)


def parity(net: torch.nn.Module, teacher: Teacher, bundle: Path) -> Parity:
    """The largest difference in any label's probability between the bundle and PyTorch."""
    items = list(PARITY_SENTENCES)
    expected = reference(net, teacher, items, teacher.manifest.max_length)
    ours = Predictor.load(bundle).classify(items, truncate=True, raw_scores=True).values
    multi_label = teacher.manifest.problem_type == "multi_label_classification"
    diff = np.abs(probabilities(ours, multi_label) - probabilities(expected, multi_label))
    worst = diff.max(axis=1)
    return Parity(
        reference="torch fp32",
        metric="max_abs_diff",
        min=float(worst.min()),
        mean=float(worst.mean()),
        sentences=len(items),
    )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The embedding table is nearly all of the weights: per-channel int8 on its Gather quarters
    # the bundle; the LSTM operators stay fp32.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Gather", "MatMul", "Gemm"],
        )
    finally:
        logging.disable(logging.NOTSET)
