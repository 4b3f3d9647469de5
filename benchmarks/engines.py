"""The engines benchmarks/predictor.py compares, each loaded the way its own users load it.

Every engine is `encode(texts, batch_size) -> unit vectors` and runs at its own defaults (threads,
thread spinning, graph optimization), as a user who installs it gets them. All read local files:

- `raw-<bundle>`: onnxruntime + tokenizers alone on a bertless bundle's `model.onnx`, the loop a
  user writes by hand (chunks in the order given, each padded to its longest text);
- `bertless-<bundle>`: `bertless.Predictor` on a bundle;
- `fastembed`: fastembed's custom-model support on the int8 bundle's `model.onnx`;
- `st-onnx-O3`, `st-onnx-qint8`: sentence-transformers' ONNX backend (optimum.onnxruntime) on its
  own exports of the checkpoint, `export_optimized_onnx_model(..., "O3")` and
  `export_dynamic_quantized_onnx_model(..., "avx512_vnni")`;
- `sentence-transformers`: the same on PyTorch, the reference every cosine is against.

Run as a script, it is one engine in a fresh process (benchmarks/predictor.py starts it under a
cgroup CPU quota): it loads the engine, answers batch-1 calls one at a time, then encodes every
text in one call, and prints what it measured as JSON.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

Encode = Callable[[list[str], int], "object"]

# The tokenizer files a Hugging Face checkpoint folder carries, which fastembed reads.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
)
ST_FILES = {
    "st-onnx-O3": "onnx/model_O3.onnx",
    "st-onnx-qint8": "onnx/model_qint8_avx512_vnni.onnx",
}


def load(engine: str, paths: dict[str, str]) -> Encode:
    """encode(texts, batch_size) -> unit vectors, for ENGINE, from the files PATHS names."""
    if engine == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(paths["checkpoint"], device="cpu")
        return lambda texts, b: model.encode(texts, batch_size=b, normalize_embeddings=True)
    if engine in ST_FILES:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            paths["st"], backend="onnx", device="cpu", model_kwargs={"file_name": ST_FILES[engine]}
        )
        return lambda texts, b: model.encode(texts, batch_size=b, normalize_embeddings=True)
    if engine == "fastembed":
        return fastembed_pipeline(paths["fastembed"])
    kind, name = engine.split("-", 1)
    if kind == "bertless":
        from bertless import Predictor

        predictor = Predictor.load(paths[name])
        return lambda texts, b: predictor.encode(texts, batch_size=b, truncate=True)
    return raw_pipeline(paths[name])


def raw_pipeline(bundle: str) -> Encode:
    """onnxruntime and tokenizers at their defaults: the floor bertless is measured against."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(f"{bundle}/tokenizer.json")
    tokenizer.enable_truncation(json.loads(Path(f"{bundle}/bundle.json").read_text())["max_length"])
    tokenizer.enable_padding()
    session = ort.InferenceSession(f"{bundle}/model.onnx", providers=["CPUExecutionProvider"])

    def run(texts):
        batch = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (states,) = session.run(["last_hidden_state"], feeds)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(texts, batch_size):
        return np.concatenate(
            [run(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        )

    return encode


def fastembed_pipeline(folder: str) -> Encode:
    import numpy as np
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "bertless/benchmark-int8"
    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf=name),
        dim=384,
        model_file="model.onnx",
    )
    model = TextEmbedding(model_name=name, specific_model_path=folder)
    return lambda texts, b: np.stack(list(model.embed(texts, batch_size=b)))


def prepare_fastembed(int8_bundle: Path, checkpoint: Path, folder: Path) -> None:
    """The int8 bundle's model file with the checkpoint's tokenizer files, as fastembed reads a
    custom model; truncation at the bundle's 256 tokens (the checkpoint's tokenizer config says
    512, the model was trained to 256), so that every engine sees the same tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(int8_bundle / "model.onnx", folder / "model.onnx")
    for name in TOKENIZER_FILES:
        shutil.copyfile(checkpoint / name, folder / name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    limit = json.loads((int8_bundle / "bundle.json").read_text())["max_length"]
    config["model_max_length"] = limit
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def prepare_st(checkpoint: Path, folder: Path) -> None:
    """sentence-transformers' own O3 and qint8 ONNX files of the checkpoint.

    Its ONNX backend would export the checkpoint itself through optimum's exporter, which fails on
    transformers 5 (`sdpa_mask_without_vmap() missing ... cache_position`); the plain ONNX export
    it would have made is written here with bertless's exporter (the same torch.onnx trace, not
    optimized), and sentence-transformers' own functions make the O3 and quantized files from it.
    """
    from sentence_transformers import (
        SentenceTransformer,
        export_dynamic_quantized_onnx_model,
        export_optimized_onnx_model,
    )

    from bertless.models.checkpoint import describe
    from bertless.models.export import _graph_inputs, _load, _to_onnx

    shutil.copytree(checkpoint, folder, dirs_exist_ok=True)
    model, _ = _load(describe(str(folder), None, None))
    (folder / "onnx").mkdir(exist_ok=True)
    _to_onnx(model, _graph_inputs(model), "last_hidden_state", folder / "onnx" / "model.onnx")
    st = SentenceTransformer(str(folder), backend="onnx", device="cpu")
    export_optimized_onnx_model(st, "O3", str(folder))
    export_dynamic_quantized_onnx_model(st, "avx512_vnni", str(folder))


def measure(engine: str, paths: dict[str, str], texts: list[str], batch1: int, out: str) -> dict:
    """Load, answer `batch1` texts one call at a time, encode all texts in one call; the bulk
    vectors go to OUT (.npy) for the cosine to PyTorch."""
    import numpy as np

    start = time.perf_counter()
    encode = load(engine, paths)
    encode(texts[:1], 1)
    load_s = time.perf_counter() - start
    encode(texts[:32], 32)  # warm-up at the bulk batch size too
    calls = []
    for text in texts[:batch1]:
        t0 = time.perf_counter()
        encode([text], 1)
        calls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    vectors = np.asarray(encode(texts, 32), dtype=np.float32)
    bulk_s = time.perf_counter() - t0
    np.save(out, vectors)
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    return {"load_s": load_s, "calls": calls, "bulk_s": bulk_s, "peak_mb": peak_kb / 1024}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from common import mixed_texts

    spec = json.loads(sys.argv[1])
    texts = mixed_texts(spec["texts"])
    print(json.dumps(measure(spec["engine"], spec["paths"], texts, spec["batch1"], spec["out"])))
