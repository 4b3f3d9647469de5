"""What bertless spends beyond `session.run` on a batch-1 call, against the raw loop's own.

Both run on a stand-in engine that returns the same precomputed token states at once, so the
model's time (and its noise) is out of the figure: what is left is tokenizing, building the
padded arrays, pooling, normalizing and checking, per call of one text. Best of 5 repeats.

    .venv/bin/python benchmarks/overhead.py BUNDLE [--calls 3000]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from bertless import Predictor

    text = mixed_texts(20)[5]
    predictor = Predictor.load(args.bundle, threads=1)
    tokens = len(predictor._tokenizer.encode(text).ids)
    states = np.random.default_rng(0).random((1, tokens, 384), dtype=np.float32)

    class StandIn:
        """The graph's output for this text, with no model behind it."""

        def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
            return states

    predictor._engine = StandIn()
    tokenizer = Tokenizer.from_file(str(args.bundle / "tokenizer.json"))
    tokenizer.enable_truncation(json.loads((args.bundle / "bundle.json").read_text())["max_length"])
    tokenizer.enable_padding()

    def raw() -> np.ndarray:
        """benchmarks/engines.py's raw loop, its session.run replaced by the same states."""
        batch = tokenizer.encode_batch([text])
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        _ = np.array([e.ids for e in batch], dtype=np.int64)
        _ = np.array([e.type_ids for e in batch], dtype=np.int64)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def bertless() -> np.ndarray:
        return predictor.encode([text], batch_size=1, truncate=True)

    print(f"one text of {tokens} tokens, best of 5 x {args.calls} calls, µs per call:")
    for name, call in (("raw loop", raw), ("bertless Predictor.encode", bertless)):
        best = min(timeit.repeat(call, number=args.calls, repeat=5)) / args.calls
        print(f"  {name}: {best * 1e6:.0f}")


if __name__ == "__main__":
    main()
