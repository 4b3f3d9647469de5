"""Predictor vs raw onnxruntime + tokenizers (the floor) vs sentence-transformers on PyTorch.

Each engine runs in its own fresh process (so peak RSS is its own), engines take turns round by
round (so a noisy neighbour hits them alike), and the report is ratios against the floor.

    .venv/bin/python benchmarks/predictor.py [--texts 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts, quantiles

ENGINES = ["raw-fp32", "bertless-fp32", "raw-int8", "bertless-int8", "sentence-transformers"]


def load(engine: str, bundles: dict[str, str]):
    """Return encode(texts) -> vectors for one engine, loaded the way its users load it."""
    if engine == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from bertless.models.checkpoint import default_model_path

        model = SentenceTransformer(str(default_model_path()), device="cpu")
        return lambda texts: model.encode(texts, batch_size=len(texts), normalize_embeddings=True)
    kind, precision = engine.split("-")
    bundle = bundles[precision]
    if kind == "bertless":
        from bertless import Predictor

        predictor = Predictor.load(bundle)
        return lambda texts: predictor.encode(texts, batch_size=len(texts), truncate=True)
    return raw_pipeline(bundle)


def raw_pipeline(bundle: str):
    """What a user writes with onnxruntime and tokenizers alone: pad to the batch's longest."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from bertless.core.predictor import available_cpus

    tokenizer = Tokenizer.from_file(f"{bundle}/tokenizer.json")
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cpus()
    session = ort.InferenceSession(f"{bundle}/model.onnx", options)

    def encode(texts):
        batch = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (states,) = session.run(["last_hidden_state"], feeds)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    return encode


def worker(engine: str, bundles: dict[str, str], n: int) -> dict:
    """Runs in a fresh process: throughput and per-call latency at batch 1 and 32."""
    import resource

    encode = load(engine, bundles)
    texts = mixed_texts(n)
    encode(texts[:32])  # warm-up
    result: dict = {}
    for batch in (1, 32):
        calls = []
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            t0 = time.perf_counter()
            encode(texts[i : i + batch])
            calls.append(time.perf_counter() - t0)
        result[f"batch{batch}"] = {
            "texts_per_s": len(texts) / (time.perf_counter() - start),
            **quantiles(calls),
        }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


COLD = {
    "bertless": "from bertless import Predictor; p = Predictor.load({b!r}); p.encode(['hello'])",
    "raw": "import sys; sys.path.insert(0, {here!r}); from predictor import raw_pipeline; "
    "raw_pipeline({b!r})(['hello'])",
    "sentence-transformers": "from sentence_transformers import SentenceTransformer; "
    "from bertless.models.checkpoint import default_model_path; "
    "SentenceTransformer(str(default_model_path()), device='cpu').encode(['hello'])",
}


def cold_start(engine: str, bundles: dict[str, str]) -> float:
    kind = engine.split("-")[0] if engine != "sentence-transformers" else engine
    bundle = bundles.get(engine.split("-")[-1], "")
    code = COLD[kind].format(b=bundle, here=str(Path(__file__).parent))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--bundles", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.bundles), args.texts)))
        return

    from bertless.models.export import export

    scratch = Path(tempfile.mkdtemp(prefix="bertless-bench-"))
    bundles = {"fp32": str(scratch / "fp32"), "int8": str(scratch / "int8")}
    export(None, bundles["fp32"])
    export(None, bundles["int8"], quantize="int8")

    runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
    colds: dict[str, list[float]] = {e: [] for e in ENGINES}
    for round_ in range(args.rounds):
        for engine in ENGINES:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    engine,
                    "--bundles",
                    json.dumps(bundles),
                    "--texts",
                    str(args.texts),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[engine].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {round_ + 1}: {engine} done", file=sys.stderr)
    for _ in range(args.cold_starts):
        for engine in ENGINES:
            colds[engine].append(cold_start(engine, bundles))
    report(runs, colds, args)


def report(runs: dict[str, list[dict]], colds: dict[str, list[float]], args) -> None:
    def median(engine: str, batch: int, key: str) -> float:
        return statistics.median(r[f"batch{batch}"][key] for r in runs[engine])

    floor = {
        p: {b: median(f"raw-{p}", b, "texts_per_s") for b in (1, 32)} for p in ("fp32", "int8")
    }
    st = {b: median("sentence-transformers", b, "texts_per_s") for b in (1, 32)}
    st_cold = statistics.median(colds["sentence-transformers"])
    print(
        f"\n{args.texts} mixed-length texts, median of {args.rounds} rounds; cold start = "
        f"fresh process, import + load + first answer, median of {args.cold_starts}\n"
    )
    print(
        "| engine | texts/s b=1 | texts/s b=32 | vs raw ORT (b=1 / b=32) "
        "| vs sentence-transformers (b=1 / b=32) | b=1 q50/q95/q99 ms | b=32 q50/q95/q99 ms "
        "| peak RSS MB | cold start s | cold vs ST |"
    )
    print("|---" * 10 + "|")
    for engine in ENGINES:
        precision = engine.split("-")[-1]
        t1, t32 = median(engine, 1, "texts_per_s"), median(engine, 32, "texts_per_s")
        vs_raw = (
            f"{t1 / floor[precision][1]:.2f} / {t32 / floor[precision][32]:.2f}"
            if precision in floor
            else "–"
        )
        lat = {
            b: "/".join(f"{median(engine, b, q):.1f}" for q in ("q50", "q95", "q99"))
            for b in (1, 32)
        }
        rss = statistics.median(r["peak_rss_mb"] for r in runs[engine])
        cold = statistics.median(colds[engine])
        print(
            f"| {engine} | {t1:.0f} | {t32:.0f} | {vs_raw} | {t1 / st[1]:.2f} / "
            f"{t32 / st[32]:.2f} | {lat[1]} | {lat[32]} | {rss:.0f} | {cold:.2f} | "
            f"{cold / st_cold:.2f} |"
        )


if __name__ == "__main__":
    main()
