"""Which int8 settings to export with: bulk speed and cosine to PyTorch per setting, side by side.

The default model's graph is exported and fused once (models/export.py), then quantized once per
setting: the fused attention's QKV projection quantized too or kept in fp32, per-channel or
per-tensor weights, reduce_range; and two fused graphs made with other optimizer options. Each
variant runs through bertless's Predictor next to sentence-transformers' own qint8 export (the
bulk peer to beat, benchmarks/engines.py), all in one process, called in turn in a fresh random
order each repetition, each encoding the same texts in one call at batch 32. Cosine is against
sentence-transformers on PyTorch, on the same texts.

    .venv/bin/python benchmarks/quantization.py --work DIR [--texts 1000] [--bulk 300] [--reps 3]

DIR must hold what benchmarks/predictor.py --work DIR prepared (its int8 bundle and st/ exports).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from msgspec.structs import replace

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts
from engines import ST_FILES, load

# Setting name -> models.export.Int8 fields, and the fused graph it quantizes (GRAPHS; export's
# own unless named); the first two are `--quantize int8` and `int8-fast`.
VARIANTS = {
    "int8: attention QKV fp32": {"attention": False},
    "int8-fast: all projections, reduce_range": {"attention": True, "reduce_range": True},
    "all projections": {"attention": True},
    "all projections, per-tensor": {"attention": True, "per_channel": False},
    "attention QKV fp32, per-tensor": {"attention": False, "per_channel": False},
    "int8, graph optimized offline at level 2": {"attention": False, "graph": "level2"},
    "int8, GELU approximated (FastGelu)": {"attention": False, "graph": "fastgelu"},
}
# The transformer optimizer's options export does not use: onnxruntime's own graph passes run at
# export too (opt_level 2, not only at load), or GELU's tanh approximation, which changes values.
GRAPHS = {"level2": {"opt_level": 2}, "fastgelu": {"gelu_approximation": True}}


def fuse(raw: Path, target: Path, config, opt_level: int = 0, gelu_approximation: bool = False):
    """export's transformer fusions with one option changed."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = gelu_approximation
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        optimization_options=options,
        opt_level=opt_level,
    )
    optimized.save_model_to_file(str(target))


def build(work: Path, out: Path) -> dict[str, str]:
    """One bundle per variant under OUT: the int8 bundle's files with the variant's model.onnx."""
    from bertless.core.bundle import MODEL_NAME, read_manifest, sha256_file, write_manifest
    from bertless.models.checkpoint import describe
    from bertless.models.export import Int8, _graph_inputs, _load, _optimize, _quantize, _to_onnx

    model, _ = _load(describe(None, None, None))
    raw, fused = out / "raw.onnx", out / "fused.onnx"
    _to_onnx(model, _graph_inputs(model), "last_hidden_state", raw)
    _optimize(raw, fused, model.config)
    graphs = {None: fused}
    for graph, options in GRAPHS.items():
        graphs[graph] = out / f"{graph}.onnx"
        fuse(raw, graphs[graph], model.config, **options)
    bundles = {}
    for index, (name, settings) in enumerate(VARIANTS.items()):
        bundle = out / f"v{index}"
        shutil.copytree(work / "int8", bundle)
        fields = {k: v for k, v in settings.items() if k != "graph"}
        _quantize(graphs[settings.get("graph")], bundle / MODEL_NAME, Int8(**fields))
        manifest = read_manifest(bundle)
        files = manifest.files | {MODEL_NAME: sha256_file(bundle / MODEL_NAME)}
        write_manifest(bundle, replace(manifest, files=files))
        bundles[name] = str(bundle)
    return bundles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--texts", type=int, default=1000, help="texts for the cosine")
    parser.add_argument("--bulk", type=int, default=300, help="texts per timed bulk call")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bertless-quant-"))
    bundles = build(args.work, out)
    paths = {"checkpoint": "", "st": str(args.work / "st")} | bundles
    engines = {f"bertless-{n}": load(f"bertless-{n}", paths) for n in bundles}
    engines["st-onnx-qint8"] = load("st-onnx-qint8", paths)
    texts = mixed_texts(args.texts)
    reference = reference_vectors(args.work, texts)
    rows = {}
    for name, encode in engines.items():
        ours = np.asarray(encode(texts, 32))
        scores = (ours * reference).sum(1)
        bundle = bundles.get(name.removeprefix("bertless-"))
        model = Path(bundle, "model.onnx") if bundle else args.work / "st" / ST_FILES[name]
        size = model.stat().st_size
        rows[name] = {"cosine": (float(scores.min()), float(scores.mean())), "mb": size / 2**20}
    timed = {name: [] for name in engines}
    rng = random.Random(0)
    for _ in range(args.reps):
        for name in rng.sample(list(engines), len(engines)):
            t0 = time.perf_counter()
            engines[name](texts[: args.bulk], 32)
            timed[name].append(args.bulk / (time.perf_counter() - t0))
    report(rows, timed, args)
    shutil.rmtree(out)


def reference_vectors(work: Path, texts: list[str]) -> np.ndarray:
    """sentence-transformers on PyTorch, cached under WORK for these texts."""
    cache = work / f"reference-{len(texts)}.npy"
    if not cache.is_file():
        np.save(cache, load("sentence-transformers", {"checkpoint": checkpoint()})(texts, 32))
    return np.load(cache)


def checkpoint() -> str:
    from bertless.models.checkpoint import default_model_path

    return str(default_model_path())


def report(rows: dict, timed: dict, args) -> None:
    peer = timed["st-onnx-qint8"]
    print(
        f"\n{args.texts} mixed-length texts for the cosine to PyTorch; bulk: {args.bulk} texts "
        f"in one call at batch 32, engines in a fresh random order, {args.reps} repetitions.\n"
    )
    print("| int8 setting | bulk texts/s (reps) | vs st-onnx-qint8 | cosine min / mean | MB |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        speed = " / ".join(f"{x:.0f}" for x in timed[name])
        vs = statistics.median(a / b for a, b in zip(timed[name], peer, strict=True))
        low, mean = row["cosine"]
        print(f"| {name} | {speed} | {vs:.2f} | {low:.3f} / {mean:.3f} | {row['mb']:.1f} |")
    print(json.dumps({"rows": rows, "timed": timed}), file=sys.stderr)


if __name__ == "__main__":
    main()
