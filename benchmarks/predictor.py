"""Predictor vs raw onnxruntime + tokenizers (the floor) vs sentence-transformers on PyTorch.

Throughput and latency: all engines loaded in one process and called in turn on the same inputs,
call by call, so a noisy neighbour slows them alike; ratios are against the floor. Peak RSS and
cold start: each engine alone in a fresh process (peak RSS from VmHWM, which, unlike ru_maxrss,
does not carry the parent's high-water mark across exec).

    .venv/bin/python benchmarks/predictor.py [--texts 1000] [--cold-starts 5]
        [--bundle NAME=PATH]...

`--bundle NAME=PATH` (repeatable) adds any bertless bundle as one more engine, `bertless-NAME`,
run through `Predictor` like the built-in ones (a static or BiLSTM student, another export).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles

ENGINES = ["raw-fp32", "bertless-fp32", "raw-int8", "bertless-int8", "sentence-transformers"]
HERE = str(Path(__file__).parent)


def load(engine: str, bundles: dict[str, str]):
    """encode(texts, batch_size) -> vectors, for one engine, loaded the way its users load it."""
    if engine == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from bertless.models.checkpoint import default_model_path

        model = SentenceTransformer(str(default_model_path()), device="cpu")
        return lambda texts, b: model.encode(texts, batch_size=b, normalize_embeddings=True)
    kind, name = engine.split("-", 1)
    if kind == "bertless":
        from bertless import Predictor

        predictor = Predictor.load(bundles[name])
        return lambda texts, b: predictor.encode(texts, batch_size=b, truncate=True)
    return raw_pipeline(bundles[name])


def raw_pipeline(bundle: str):
    """What a user writes with onnxruntime and tokenizers alone: chunks in the order given, each
    padded to its longest text."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from bertless.core.cpus import available_cpus
    from bertless.core.engine_onnx import spin_entries

    tokenizer = Tokenizer.from_file(f"{bundle}/tokenizer.json")
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cpus()
    # The floor waits between runs as bertless does (BERTLESS_SPIN), so that the ratio measures
    # bertless's own work: engines called in turn would otherwise favour whichever still spins.
    for key, value in spin_entries().items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(f"{bundle}/model.onnx", options)

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


def interleaved(names: list[str], bundles: dict[str, str], n: int) -> dict:
    """Per-call latency at batch 1 and 32 (calls of 1 or 32 texts), and bulk throughput (all
    texts in one call with batch_size 32, where an engine may sort by length)."""
    engines = {e: load(e, bundles) for e in names}
    texts = mixed_texts(n)
    for encode in engines.values():
        encode(texts[:32], 32)  # warm-up
    result: dict[str, dict] = {e: {} for e in names}
    # A fresh random order each turn: onnxruntime's threads spin for a while after a run, so an
    # engine that always followed the same one would always pay for its neighbour's spinning.
    rng = random.Random(0)
    for batch in (1, 32):
        calls: dict[str, list[float]] = {e: [] for e in names}
        for i in range(0, len(texts), batch):
            chunk = texts[i : i + batch]
            for engine in rng.sample(names, len(names)):
                t0 = time.perf_counter()
                engines[engine](chunk, batch)
                calls[engine].append(time.perf_counter() - t0)
        for engine in names:
            result[engine][f"batch{batch}"] = {
                "texts_per_s": len(texts) / sum(calls[engine]),
                **quantiles(calls[engine]),
            }
    for engine in names:
        t0 = time.perf_counter()
        engines[engine](texts, 32)
        result[engine]["bulk_texts_per_s"] = len(texts) / (time.perf_counter() - t0)
    return result


PEAK = """
import sys; sys.path.insert(0, {here!r})
from common import mixed_texts
from predictor import load
encode = load({engine!r}, {bundles!r})
encode(mixed_texts({n}), 32)
print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])
"""
COLD = {
    "bertless": "from bertless import Predictor; p = Predictor.load({b!r}); p.encode(['hello'])",
    "raw": "import sys; sys.path.insert(0, {here!r}); from predictor import raw_pipeline; "
    "raw_pipeline({b!r})(['hello'], 1)",
    "sentence-transformers": "from sentence_transformers import SentenceTransformer; "
    "from bertless.models.checkpoint import default_model_path; "
    "SentenceTransformer(str(default_model_path()), device='cpu').encode(['hello'])",
}


def peak_rss_mb(engine: str, bundles: dict[str, str], n: int) -> float:
    code = PEAK.format(here=HERE, engine=engine, bundles=bundles, n=n)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def cold_start(engine: str, bundles: dict[str, str]) -> float:
    kind = engine if engine == "sentence-transformers" else engine.split("-")[0]
    code = COLD[kind].format(b=bundles.get(engine.split("-", 1)[-1], ""), here=HERE)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument(
        "--bundle",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="one more engine, bertless-NAME, from the bundle at PATH (repeatable)",
    )
    args = parser.parse_args()
    extra = dict(bundle_arg(value) for value in args.bundle)

    from bertless.models.export import export

    scratch = Path(tempfile.mkdtemp(prefix="bertless-bench-"))
    bundles = {"fp32": str(scratch / "fp32"), "int8": str(scratch / "int8")}
    export(None, bundles["fp32"])
    export(None, bundles["int8"], quantize="int8")
    sizes = {p: (Path(b) / "model.onnx").stat().st_size / 2**20 for p, b in bundles.items()}
    bundles.update(extra)
    names = ENGINES + [f"bertless-{name}" for name in extra]

    runs = interleaved(names, bundles, args.texts)
    rss = {e: peak_rss_mb(e, bundles, args.texts) for e in names}
    colds: dict[str, list[float]] = {e: [] for e in names}
    for _ in range(args.cold_starts):
        for engine in names:
            colds[engine].append(cold_start(engine, bundles))
    report(names, runs, rss, colds, sizes, args)
    print(json.dumps({"runs": runs, "rss_mb": rss, "cold_s": colds}), file=sys.stderr)


def bundle_arg(value: str) -> tuple[str, str]:
    """NAME=PATH from the command line, the bundle checked to exist before anything runs."""
    name, _, path = value.partition("=")
    if not name or not path or name in ("fp32", "int8"):
        raise SystemExit(f"--bundle {value}: give NAME=PATH, NAME other than fp32 and int8.")
    if not (Path(path) / "bundle.json").is_file():
        raise SystemExit(f"--bundle {value}: {path} has no bundle.json; give a bundle directory.")
    return name, path


def report(names, runs, rss, colds, sizes, args) -> None:
    st_cold = statistics.median(colds["sentence-transformers"])
    st = runs["sentence-transformers"]
    print(
        f"\n{args.texts} mixed-length texts (3–200 words); engines called in turn, call by call; "
        f"cold start = fresh process, import + load + first answer, median of {args.cold_starts}. "
        f"model.onnx: fp32 {sizes['fp32']:.1f} MB, int8 {sizes['int8']:.1f} MB\n"
    )
    print(
        "| engine | texts/s b=1 | texts/s b=32 | bulk texts/s | vs raw ORT (b=1 / b=32 / bulk) "
        "| vs sentence-transformers (b=1 / b=32 / bulk) | b=1 q50/q95/q99 ms "
        "| b=32 q50/q95/q99 ms | peak RSS MB | cold start s | cold vs ST |"
    )
    print("|---" * 11 + "|")
    for engine in names:
        r = runs[engine]
        values = (r["batch1"]["texts_per_s"], r["batch32"]["texts_per_s"], r["bulk_texts_per_s"])
        precision = engine.split("-", 1)[-1]
        floor = runs.get(f"raw-{precision}")
        ref = (st["batch1"]["texts_per_s"], st["batch32"]["texts_per_s"], st["bulk_texts_per_s"])
        vs_raw = "–"
        if floor:
            base = (
                floor["batch1"]["texts_per_s"],
                floor["batch32"]["texts_per_s"],
                floor["bulk_texts_per_s"],
            )
            vs_raw = " / ".join(f"{v / b:.2f}" for v, b in zip(values, base, strict=True))
        vs_st = " / ".join(f"{v / b:.2f}" for v, b in zip(values, ref, strict=True))
        lat = {
            b: "/".join(f"{r[f'batch{b}'][q]:.1f}" for q in ("q50", "q95", "q99")) for b in (1, 32)
        }
        cold = statistics.median(colds[engine])
        print(
            f"| {engine} | {values[0]:.0f} | {values[1]:.0f} | {values[2]:.0f} | {vs_raw} "
            f"| {vs_st} "
            f"| {lat[1]} | {lat[32]} | {rss[engine]:.0f} | {cold:.2f} | {cold / st_cold:.2f} |"
        )


if __name__ == "__main__":
    main()
