"""The route table of the contract, and which routes a bundle serves.

One table drives dispatch (`Service`), /openapi.json and the packaging proof, so a route can
never be answered by one and missing from another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bertless.core import schemas
from bertless.core.bundle import Manifest


@dataclass(frozen=True)
class Route:
    """One route: its documentation, its body's schema, the tasks it needs and the `Service`
    method (by name) that answers it."""

    method: str
    path: str
    summary: str
    request: Any  # a schemas Struct (the root: a union of them), or None: no body
    response: Any
    tasks: tuple[str, ...]
    handler: str
    error: Any = schemas.ErrorBody  # the body of its 4xx and 5xx answers


EMBEDDING = ("feature-extraction",)
CLASSIFICATION = ("text-classification",)
ROUTES: list[Route] = [
    Route(
        "POST",
        "/embed",
        "Embeddings, one vector per input (TEI)",
        schemas.EmbedRequest,
        schemas.Vectors,
        EMBEDDING,
        "embed",
    ),
    Route(
        "POST",
        "/predict",
        "Scores for every label, best first (TEI)",
        schemas.PredictRequest,
        schemas.Predictions,
        CLASSIFICATION,
        "predict",
    ),
    Route(
        "POST",
        "/similarity",
        "Cosine similarity of sentences to a source sentence",
        schemas.SimilarityRequest,
        list[float],
        EMBEDDING,
        "similarity",
    ),
    Route(
        "POST",
        "/rerank",
        "Texts ranked by relevance to a query (TEI)",
        schemas.RerankRequest,
        list[schemas.Rank],
        (*EMBEDDING, *CLASSIFICATION),
        "rerank",
    ),
    Route(
        "POST",
        "/v1/embeddings",
        "Embeddings in the OpenAI shape",
        schemas.OpenAIEmbeddingRequest,
        schemas.OpenAIEmbeddingResponse,
        EMBEDDING,
        "openai_embeddings",
        schemas.OpenAIErrorBody,
    ),
    Route(
        "POST",
        "/",
        "The bundle's task route (the Inference API posts to the root)",
        schemas.EmbedRequest | schemas.SimilarityRequest | schemas.PredictRequest,
        schemas.Vectors | list[float] | schemas.Predictions,
        (),
        "embed",
    ),
    Route("GET", "/health", "Liveness and readiness", None, schemas.Health, (), "health"),
    Route("GET", "/info", "What is served", None, schemas.Info, (), "info"),
    Route("GET", "/openapi.json", "This document", None, dict, (), "openapi"),
]
ROUTE_BY_PATH = {route.path: route for route in ROUTES if route.method == "POST"}

# The root takes the bodies of the bundle's own task route.
_ROOT = {
    "feature-extraction": (
        schemas.EmbedRequest | schemas.SimilarityRequest,
        schemas.Vectors | list[float],
    ),
    # The Inference API answers one list of labels per input, even for one text.
    "text-classification": (schemas.PredictRequest, schemas.InferencePredictions),
}


def rerank_refusal(manifest: Manifest) -> str | None:
    """Why this bundle cannot answer /rerank, or None when it can.

    Reranking needs one relevance score per text: a cosine between embeddings, or a classifier
    with a single score (a cross-encoder). A classifier with several labels has no such score.
    """
    if manifest.task == "text-classification" and len(manifest.labels) > 1:
        return (
            "/rerank needs an embedding bundle or a classifier with a single score; this "
            f"classifier has {len(manifest.labels)} labels."
        )
    return None


def served(manifest: Manifest | None) -> list[Route]:
    """The routes a bundle serves, as /openapi.json documents them and the packaging proof
    calls them: a client generated from the document never meets a 424. Without a bundle (it
    failed to load) every route is listed."""
    if manifest is None:
        return ROUTES
    task = manifest.task
    request, response = _ROOT[task]
    return [
        replace(r, request=request, response=response) if r.path == "/" else r
        for r in ROUTES
        if (not r.tasks or task in r.tasks)
        and not (r.path == "/rerank" and rerank_refusal(manifest))
    ]
