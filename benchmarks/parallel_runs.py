"""One model run at a time on every CPU's thread, against one run per CPU on a thread each.

The batching server (issue 15) runs one batch at a time with onnxruntime's intra-op threads
spread over the CPUs. On a quiet machine it kept 1.4 of 2 CPUs busy at 8 clients, and Infinity
kept up with it. This measures, in process and with the bundle's own model, whether as many
concurrent runs as CPUs, one thread each, would serve more rows per second for the same rows per
run: the two ways take turns for `--rounds` rounds, so that other work falls on both alike.

It did here (1.12-1.84x), but not in the server: with a slot per CPU fewer requests waited to
share a run, and the server served less (README, serving; the change was reverted in c8184ba).

    .venv/bin/python benchmarks/parallel_runs.py BUNDLE [--rows 1 4 8] [--tokens 16]
        [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bertless.core.cpus import available_cpus


def session(model: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def feed(model: ort.InferenceSession, rows: int, tokens: int) -> dict[str, np.ndarray]:
    """ROWS texts of TOKENS tokens each (one ordinary token repeated: only shapes matter)."""
    ids = np.full((rows, tokens), 1000, dtype=np.int64)
    names = {i.name for i in model.get_inputs()}
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in names:
        inputs["token_type_ids"] = np.zeros_like(ids)
    return inputs


def rows_per_second(
    model: ort.InferenceSession, inputs: dict, runners: int, seconds: float
) -> float:
    """Rows/s with RUNNERS threads each running INPUTS again and again for SECONDS."""
    model.run(None, inputs)
    rows = len(inputs["input_ids"])
    done = [0] * runners
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        while time.perf_counter() < stop:
            model.run(None, inputs)
            done[i] += rows

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8], help="rows per run")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    cpus = max(1, round(available_cpus()))
    model = args.bundle / "model.onnx"
    wide, narrow = session(model, cpus), session(model, 1)
    print(f"{model}, {cpus} CPUs, {args.tokens} tokens a row, {args.rounds} rounds")
    print("\n| rows per run | one run, all threads: rows/s | one run per CPU: rows/s | ratio |")
    print("|---|---|---|---|")
    for rows in args.rows:
        one, many = [], []
        for _ in range(args.rounds):
            inputs = feed(wide, rows, args.tokens)
            one.append(rows_per_second(wide, inputs, 1, args.seconds))
            many.append(rows_per_second(narrow, inputs, cpus, args.seconds))
        ratios = ", ".join(f"{m / o:.2f}" for o, m in zip(one, many, strict=True))
        print(
            f"| {rows} | {statistics.median(one):.0f} | {statistics.median(many):.0f} | {ratios} |"
        )


if __name__ == "__main__":
    main()
