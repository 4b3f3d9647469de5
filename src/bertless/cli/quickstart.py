"""`bertless quickstart`: the whole path on the built-in models, on this machine, in one command.

Export the default model, package it for the three clouds with each platform's limits checked,
serve it locally through functions-framework, answer sample requests, measure the latency, and
price that latency on every cloud: what a new user wants to see first. Then the second built-in
model, the English sentiment classifier, which no package ships: it is trained and distilled
here the first time (a few minutes on two cores; later runs reuse it) and served to answer
/predict, so the classification routes have a real model behind them from the start.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from bertless.cli.env import add
from bertless.cli.export import DEFAULT_BUNDLE
from bertless.cli.training import work_dir
from bertless.models.sentiment import BUNDLE, WORK, build_sentiment, install, installed

if TYPE_CHECKING:
    from rich.console import Console

CLOUDS = ("aws", "gcp", "azure")

SAMPLES = [
    ("/embed", {"inputs": ["Serverless BERT is cheap.", "Ça marche aussi en français."]}),
    (
        "/similarity",
        {
            "inputs": {
                "source_sentence": "A cat sits on the mat.",
                "sentences": ["A kitten rests on a rug.", "Stocks fell today."],
            }
        },
    ),
    ("/v1/embeddings", {"input": "OpenAI-style clients work too.", "model": "minilm"}),
]
SENTIMENT_SAMPLES = [
    "A gripping, beautifully acted film; I loved every minute.",
    "The battery died after two days and support never answered.",
    "The train leaves at nine and arrives in Lyon at noon.",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `quickstart` on the CLI's subcommands."""
    p = sub.add_parser(
        "quickstart",
        help="Export the built-in model, serve it, answer samples, and price it per cloud.",
    )
    add(
        p,
        "--out",
        env="BERTLESS_EXPORT_DIR",
        default=str(DEFAULT_BUNDLE),
        type=work_dir,
        help=f"the bundle directory to write (default {DEFAULT_BUNDLE})",
    )
    add(p, "--port", env="BERTLESS_PORT", type=int, default=8080, help="default 8080")
    add(
        p,
        "--requests",
        env="BERTLESS_REQUESTS",
        type=int,
        default=200,
        help="requests timed (default 200)",
    )
    add(
        p,
        "--memory",
        env="BERTLESS_COST_MEMORY",
        type=int,
        default=1024,
        help="MB the cost table prices (default 1024)",
    )
    add(
        p,
        "--no-sentiment",
        env="BERTLESS_NO_SENTIMENT",
        action="store_true",
        help="skip the sentiment classifier (built on first run: a few minutes)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The whole path, printed step by step."""
    return quickstart(
        Path(args.out), args.port, args.requests, args.memory, sentiment=not args.no_sentiment
    )


def _post(url: str, path: str, body: dict) -> tuple[int, object]:
    request = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def _summary(path: str, payload: object) -> str:
    if path == "/embed":
        return f"{len(payload)} vectors of {len(payload[0])} floats"
    if path == "/similarity":
        return "cosine " + ", ".join(f"{s:.3f}" for s in payload)
    return f"{len(payload['data'])} embedding, usage {payload['usage']}"


def _package_all(console: Console, bundle: Path, artifacts: Path) -> None:
    from rich.table import Table

    from bertless.packaging.package import package
    from bertless.packaging.report import Report, render

    summary = Table(title="2. artifacts, each proven in a clean interpreter before upload")
    for column in ("cloud", "zip", "zipped MB", "unzipped MB", "memory MB", "upload", "proof"):
        summary.add_column(column)
    for cloud in CLOUDS:
        with console.status(f"packaging for {cloud} (the first build downloads wheels)") as status:
            artifact = package(
                cloud,
                bundle,
                artifacts,
                progress=lambda what, c=cloud: status.update(f"{c}: {what}"),
            )
        report = Report.read(artifact.report_path)
        for table in render(report):
            console.print(table)
        summary.add_row(
            cloud,
            artifact.path.name,
            f"{artifact.zipped_bytes / 2**20:.1f}",
            f"{artifact.unzipped_bytes / 2**20:.1f}",
            str(artifact.memory_mb),
            report.upload,
            report.proof["status"],
        )
    console.print(summary)


def quickstart(out: Path, port: int, requests: int, memory_mb: int, sentiment: bool = True) -> int:
    """Export, package for each cloud, serve, ask, measure, price; then the sentiment model."""
    from rich.console import Console
    from rich.table import Table

    from bertless.bench.cost import cost_report, render_cost_table
    from bertless.bench.latency import HttpEndpoint, measure
    from bertless.bench.texts import builtin_texts
    from bertless.core.errors import BertlessError
    from bertless.local.server import local_server
    from bertless.models.export import export

    console = Console()
    with console.status("exporting the built-in model (all-MiniLM-L6-v2) to ONNX"):
        manifest = export(None, out)
    console.print(
        f"[green]1. bundle[/] {out}: {manifest.model_id}, {manifest.dimension} dims, parity vs "
        f"PyTorch cosine min {manifest.parity.min:.5f}"
    )

    _package_all(console, out, out.parent.parent / "artifacts")

    with local_server(out, port=port) as url:
        table = Table(title=f"3. sample requests to {url}")
        for column in ("route", "status", "answer"):
            table.add_column(column)
        for path, body in SAMPLES:
            status, payload = _post(url, path, body)
            table.add_row(f"POST {path}", str(status), _summary(path, payload))
        console.print(table)

        with console.status(f"measuring {requests} batch-1 requests"):
            result = measure(HttpEndpoint(url), "/embed", builtin_texts(), requests, 1, warmup=20)

    client, server = result.client_ms, result.server_ms
    if client is None or server is None:
        raise BertlessError(f"bertless serve answered no /embed request: {result.error_sample}")
    console.print(
        f"[green]4. latency[/] of batch-1 /embed over HTTP on this machine ({result.ok} of "
        f"{requests} answered): q50 {client.q50:.1f} ms, q99 {client.q99:.1f} ms at the client; "
        f"q50 {server.q50:.1f} ms in the server (Server-Timing), which is what a platform bills"
    )
    console.print(
        render_cost_table(cost_report(server.q50, memory_mb, requests_per_month=1_000_000))
    )
    if sentiment:
        _sentiment(console, port)
    console.print("Next: `bertless serve`, `bertless deploy`, and the README for every command.")
    return 0


def _sentiment(console: Console, port: int) -> None:
    """Build the classifier unless a valid one is installed, then serve it and ask it."""
    from rich.table import Table

    from bertless.local.server import local_server
    from bertless.models.report import render as render_models

    if installed(BUNDLE):
        console.print(f"[green]5. sentiment classifier[/] {BUNDLE} (built earlier; reused)")
    else:
        console.print(
            "[bold]5. building the English sentiment classifier[/] (first run only, a few "
            f"minutes): fine-tune, distill and report into {WORK}"
        )
        built = build_sentiment(WORK, step=lambda what: console.print(f"[dim]{what}…"))
        console.print(render_models(built.rows, "the teacher, and the student that is served"))
        install(built.bundle, BUNDLE)
    with local_server(BUNDLE, port=port) as url:
        status, payload = _post(url, "/predict", {"inputs": SENTIMENT_SAMPLES})
    table = Table(title=f"6. POST /predict to the sentiment classifier at {BUNDLE}: {status}")
    for column in ("text", "label", "score"):
        table.add_column(column)
    for text, scores in zip(SENTIMENT_SAMPLES, payload, strict=True):
        table.add_row(text, scores[0]["label"], f"{scores[0]['score']:.3f}")
    console.print(table)
