"""Classifier bundles side by side: a teacher and its students, per text, in bulk and one by one.

Every bundle is loaded in one process and called in turn on the same chunk of texts, chunk after
chunk, so a noisy neighbour slows them alike; ratios are against the first bundle named. The
texts are movie-review snippets of the offline sentiment dataset (what the sentiment students
are judged on). Threads come from BERTLESS_THREADS as in a function; set it to 1 for one core.

    BERTLESS_THREADS=1 .venv/bin/python benchmarks/classifiers.py \
        teacher=build/sentiment/teacher/bundle bilstm=build/sentiment/bilstm/bundle \
        [--texts 2000] [--singles 300] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import quantiles


def bundle_arg(value: str) -> tuple[str, str]:
    """NAME=PATH, the bundle checked to exist before anything runs."""
    name, _, path = value.partition("=")
    if not name or not (Path(path) / "bundle.json").is_file():
        raise SystemExit(f"{value}: give NAME=PATH where PATH is a bundle directory.")
    return name, path


def megabytes(path: str) -> float:
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=bundle_arg, help="NAME=PATH, first = reference")
    parser.add_argument("--texts", type=int, default=2000, help="texts in bulk (default 2000)")
    parser.add_argument("--singles", type=int, default=300, help="texts one by one (default 300)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from bertless import Predictor
    from bertless.models import vader

    texts = [str(t) for t in vader.load("movies").texts[: args.texts]]
    predictors = {name: Predictor.load(path) for name, path in args.bundles}
    for predictor in predictors.values():  # warm up: first runs allocate
        predictor.classify(texts[:64], batch_size=args.batch_size, truncate=True)

    bulk: dict[str, list[float]] = {name: [] for name in predictors}
    cpu: dict[str, float] = dict.fromkeys(predictors, 0.0)
    chunk = args.batch_size * 4
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        for name, predictor in predictors.items():
            began, used = time.perf_counter(), time.process_time()
            predictor.classify(part, batch_size=args.batch_size, truncate=True)
            bulk[name].append((time.perf_counter() - began) / len(part))
            cpu[name] += time.process_time() - used
    singles: dict[str, list[float]] = {name: [] for name in predictors}
    for text in texts[: args.singles]:
        for name, predictor in predictors.items():
            began = time.perf_counter()
            predictor.classify([text], truncate=True)
            singles[name].append(time.perf_counter() - began)

    reference = next(iter(predictors))
    per_text = {name: sum(values) / len(values) for name, values in bulk.items()}
    rows = []
    for name, path in args.bundles:
        rows.append(
            {
                "name": name,
                "architecture": predictors[name].manifest.architecture,
                "precision": predictors[name].manifest.precision,
                "bundle_mb": round(megabytes(path), 1),
                "bulk_ms_per_text": quantiles(bulk[name]),
                "bulk_mean_ms_per_text": per_text[name] * 1e3,
                "bulk_texts_per_second": 1 / per_text[name],
                # CPU time of every thread of the process: what a text costs a core, however
                # many other processes share the machine's cores.
                "bulk_cpu_ms_per_text": cpu[name] / len(texts) * 1e3,
                "speed_vs_" + reference: per_text[reference] / per_text[name],
                "batch1_ms": quantiles(singles[name]),
            }
        )
    setting = {
        "threads": os.environ.get("BERTLESS_THREADS", "all"),
        "texts": len(texts),
        "batch_size": args.batch_size,
        "load_average": os.getloadavg(),
    }
    print(json.dumps({"setting": setting, "rows": rows}, indent=2))
    print(f"\nthreads {setting['threads']}, load {setting['load_average'][0]:.1f}")
    print(
        "| bundle | MB | bulk ms/text q50 / q95 / q99 | bulk CPU ms/text | texts/s | × first "
        "| batch-1 ms q50 / q95 / q99 |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        b, s = row["bulk_ms_per_text"], row["batch1_ms"]
        print(
            f"| {row['name']} | {row['bundle_mb']} | {b['q50']:.3f} / {b['q95']:.3f} / "
            f"{b['q99']:.3f} | {row['bulk_cpu_ms_per_text']:.3f} | "
            f"{row['bulk_texts_per_second']:,.0f} | {row['speed_vs_' + reference]:.1f} | "
            f"{s['q50']:.2f} / {s['q95']:.2f} / {s['q99']:.2f} |"
        )


if __name__ == "__main__":
    main()
