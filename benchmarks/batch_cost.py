"""What a merged model run saves: texts run alone against the same texts in one padded run.

A run costs a fixed part (operator dispatch, thread wake-ups) plus a part per padded token.
Merging saves the fixed part of every run but the first, and pays for the padding to the longest
text. Fitting `alone = n·a + b·tokens` and `merged = a + b·n·width` on groups of texts of about
the same length gives the fixed cost `a` in milliseconds and per token `b`; `a / b` is how many
padding tokens a merge may add and still win (core.batcher.PADDING_ALLOWANCE).

    .venv/bin/python benchmarks/batch_cost.py [--bundle DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import mixed_texts

from bertless import Predictor


def best_of(run, repeats: int = 5) -> float:
    """The fastest of REPEATS runs, in milliseconds: the least disturbed by neighbours."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", help="default: export the built-in model to a temp dir")
    args = parser.parse_args()
    bundle = args.bundle
    if not bundle:
        from bertless.models.export import export

        bundle = str(Path(tempfile.mkdtemp()) / "minilm")
        export(None, bundle)
    predictor = Predictor.load(bundle)
    run = predictor.runner
    encodings = predictor._tokenize(mixed_texts(400, seed=3), truncate=True)
    run(encodings[:8])  # warm-up

    print("| texts | tokens each | n alone ms | merged ms | merged / alone | a ms | b ms | a/b |")
    print("|---|---|---|---|---|---|---|---|")
    groups = {"mixed": encodings[:8]}
    for length in (10, 21, 58):
        near = [e for e in encodings if abs(len(e.ids) - length) <= 2][:8]
        groups[f"{length}±2"] = near
    for name, group in groups.items():
        alone = best_of(lambda g=group: [run([e]) for e in g])
        merged = best_of(lambda g=group: run(g))
        n = len(group)
        width = max(len(e.ids) for e in group)
        tokens = sum(len(e.ids) for e in group)
        # alone = n·a + b·tokens, merged = a + b·n·width: two equations, two unknowns.
        b = (alone - n * merged) / (tokens - n * n * width)
        a = merged - b * n * width
        print(
            f"| {n} {name} | {tokens / n:.0f} | {alone:.1f} | {merged:.1f} | "
            f"{merged / alone:.2f} | {a:.1f} | {b:.3f} | {a / b:.0f} |"
        )


if __name__ == "__main__":
    main()
