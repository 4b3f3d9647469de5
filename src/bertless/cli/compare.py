"""`bertless compare OLD NEW [TEXTS]`: the same texts through two models; exit 1 below thresholds.

OLD and NEW are bundle directories or URLs that speak the HTTP contract. The report is a table
(every figure whole, also in a CI log) or, with `--json`, one JSON object on stdout. Exit codes:
0 when every figure meets its threshold, 1 when one does not (each failure is one line on
stderr), 2 when the comparison could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bertless.cli.env import add

if TYPE_CHECKING:
    from bertless.bench.compare import Comparison


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `compare` on the CLI's subcommands."""
    p = sub.add_parser(
        "compare",
        help="Run the same texts through an old and a new model and report their agreement.",
        description="Cosine of embeddings (lowest, mean, share under a floor), or top-label "
        "agreement and macro-F1 against the old model for classifiers, and each side's latency "
        "per batch. Exits 1 when a figure is below its threshold, so CI can gate a promotion.",
    )
    add(p, "old", env="BERTLESS_OLD", help="the serving model: a bundle directory or a URL")
    add(p, "new", env="BERTLESS_NEW", help="the candidate: a bundle directory or a URL")
    add(
        p,
        "inputs",
        env="BERTLESS_INPUTS",
        metavar="TEXTS",
        help='a file of texts, one per line (.jsonl: a string or {"text": ...} per line); '
        "default: a built-in set of varied lengths",
    )
    add(
        p,
        "--batch-size",
        env="BERTLESS_COMPARE_BATCH_SIZE",
        type=int,
        default=32,
        help="texts per batch (default 32)",
    )
    add(
        p,
        "--min-cosine",
        env="BERTLESS_MIN_COSINE",
        type=float,
        default=0.95,
        help="embeddings: the lowest cosine allowed for any text (default 0.95)",
    )
    add(
        p,
        "--cosine-floor",
        env="BERTLESS_COSINE_FLOOR",
        type=float,
        default=0.99,
        help="embeddings: a text under this cosine counts as changed (default 0.99)",
    )
    add(
        p,
        "--max-changed",
        env="BERTLESS_MAX_CHANGED",
        type=float,
        default=0.05,
        help="embeddings: the largest share of texts under --cosine-floor (default 0.05)",
    )
    add(
        p,
        "--min-agreement",
        env="BERTLESS_MIN_AGREEMENT",
        type=float,
        default=0.95,
        help="classifiers: the least share of texts with the same top label (default 0.95)",
    )
    add(
        p,
        "--min-macro-f1",
        env="BERTLESS_MIN_MACRO_F1",
        type=float,
        default=0.90,
        help="classifiers: the least macro-F1 of the new labels against the old (default 0.90)",
    )
    add(
        p,
        "--json",
        env="BERTLESS_COMPARE_JSON",
        dest="json_out",
        action="store_true",
        help="print the report as one JSON object instead of a table",
    )
    add(p, "--api-key", env="BERTLESS_API_KEY", help="sent as Authorization: Bearer")
    add(
        p,
        "--sigv4",
        env="BERTLESS_SIGV4",
        metavar="REGION",
        help="sign requests with AWS SigV4 (an AWS_IAM Function URL)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compare, print the report, and say which thresholds failed."""
    from bertless.bench.compare import Thresholds, compare, open_side
    from bertless.bench.latency import BenchError
    from bertless.bench.texts import builtin_texts, load_texts

    if not args.old or not args.new:
        raise BenchError("name the two models: bertless compare OLD NEW [TEXTS]")
    if args.batch_size < 1:
        raise BenchError(f"--batch-size must be 1 or more, not {args.batch_size}")
    try:
        texts = load_texts(Path(args.inputs)) if args.inputs else builtin_texts()
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read the texts: {error}") from None
    thresholds = Thresholds(
        min_cosine=args.min_cosine,
        cosine_floor=args.cosine_floor,
        max_under_floor=args.max_changed,
        min_agreement=args.min_agreement,
        min_macro_f1=args.min_macro_f1,
    )
    old = open_side(args.old, args.api_key, args.sigv4)
    new = open_side(args.new, args.api_key, args.sigv4)
    report = compare(old, new, texts, thresholds, args.batch_size)
    if args.json_out:
        print(json.dumps(report.as_dict(), indent=2, default=float))
    else:
        from bertless.cli.tables import print_table

        print_table(f"compare: {report.texts} texts, {report.task}", _rows(report))
    for failure in report.failures:
        print(f"bertless compare: {failure}", file=sys.stderr)
    return 0 if report.passed else 1


def _rows(report: Comparison) -> list[tuple[str, str]]:
    """(figure, value) rows; every value written out whole."""
    rows = [("old", report.old), ("new", report.new)]
    if report.cosine_min is not None:
        rows += [
            ("cosine, lowest", f"{report.cosine_min:.6f}"),
            ("cosine, mean", f"{report.cosine_mean:.6f}"),
            (f"share under {report.cosine_floor}", f"{report.under_floor:.4f}"),
        ]
    else:
        rows += [
            ("top-label agreement", f"{report.agreement:.4f}"),
            ("macro-F1 (new against old)", f"{report.macro_f1:.4f}"),
        ]
    for name, quantiles in (("old", report.old_ms), ("new", report.new_ms)):
        if quantiles is not None:
            rows.append(
                (
                    f"{name} ms per batch of {report.batch_size} q50/q95/q99",
                    f"{quantiles.q50:.1f} / {quantiles.q95:.1f} / {quantiles.q99:.1f}",
                )
            )
    if report.latency_ratio is not None:
        rows.append(("new / old q50", f"{report.latency_ratio:.2f}"))
    rows.append(("verdict", "pass" if report.passed else "FAIL"))
    return rows
