"""Service.handle(Request) -> Response: the whole HTTP contract, with no web framework in it.

Adapters turn a platform's event into a `Request` and the `Response` back, and decide nothing:
routing, limits, auth, validation and errors all live here, so every cloud answers the same bytes.
The exchange itself (`Request`, `Response`, JSON) is in `core.http`, the route table in
`core.routes`; both are re-exported here, where adapters look for them.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bertless.core import observe, options, schemas
from bertless.core.allocator import limit_malloc_arenas
from bertless.core.batcher import Batcher
from bertless.core.config import Config
from bertless.core.errors import BertlessError, BundleError, TooManyInputsError
from bertless.core.http import (
    JSON,
    HttpError,
    Request,
    Response,
    WrongTaskError,
    convert,
    decode,
    dumps,
    error_response,
    openai_error,
    parse,
)
from bertless.core.predictor import Item, Predictor, as_items, rank_labels
from bertless.core.routes import ROUTE_BY_PATH, ROUTES, Route, rerank_refusal, served
from bertless.core.version import __version__ as VERSION

__all__ = [
    "JSON",
    "ROUTES",
    "HttpError",
    "Request",
    "Response",
    "Route",
    "Service",
    "WrongTaskError",
    "error_response",
    "served",
]

log = logging.getLogger("bertless")


class Service:
    """One bundle behind the contract. Build it once per process; `handle` is thread-safe."""

    def __init__(self, predictor: Predictor | None, config: Config, failure: str | None = None):
        self.predictor = predictor
        self.config = config
        self.failure = failure
        self.task = predictor.manifest.task if predictor else None
        self._checksum = predictor.bundle.checksum if predictor else ""
        # Bounded, merged model runs for concurrent requests (core.batcher).
        self.batcher: Batcher | None = None
        self.metrics = observe.Metrics(lambda: self.batcher.waiting() if self.batcher else 0)
        # What a platform's adapter makes of each request's log record (the AWS adapter: a
        # CloudWatch Embedded Metric Format document); the core knows no platform.
        self.log_format: Callable[[dict], dict] = lambda record: record
        if predictor:
            self.batcher = Batcher(
                self.metrics.counting_batches(predictor.runner),
                config.max_batch_size,
                config.max_concurrent_requests,
                merge=config.batching,
            )
            predictor.runner = self.batcher.run
        self._openapi: bytes | None = None  # built at the first GET /openapi.json (`openapi`)

    @classmethod
    def from_bundle(cls, path: str | Path) -> Service:
        """Load the bundle; if it cannot load, serve 503s that say why instead of crashing.

        This is a serving process, whose requests may come from many threads: malloc's heaps
        are capped first (core.allocator)."""
        limit_malloc_arenas()
        try:
            predictor = Predictor.load(path)
            return cls(predictor, Config.from_env(predictor.manifest))
        except BundleError as error:
            log.error("bundle failed to load: %s", error)
            return cls(None, Config.from_env(None), failure=str(error))

    # -- the one entry point ----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        with observe.exchange() as seen:
            response = self._answer(request)
        route = ROUTE_BY_PATH.get(seen.route)
        if response.status >= 400 and route and route.error is schemas.OpenAIErrorBody:
            response = openai_error(response)
        seconds = time.perf_counter() - started
        self.record(request, response.status, seconds, seen)
        response.headers["Server-Timing"] = f"total;dur={seconds * 1e3:.2f}"
        return self._cors(request, response)

    def record(
        self,
        request: Request,
        status: int,
        seconds: float,
        seen: observe.Exchange | None = None,
    ) -> None:
        """The request's one log line and its metrics. `handle` records every request it
        answers; a server records with it what it answers without `handle` (a request whose
        head or body never arrived whole), so that every answer has its line."""
        seen = seen or observe.Exchange()
        self.metrics.record(seen, status, seconds)
        record = observe.log_record(
            request.method,
            seen,
            status,
            seconds,
            request.request_id,
            request.header("traceparent"),
        )
        observe.write(self.log_format(record))

    def _answer(self, request: Request) -> Response:
        try:
            response = self._dispatch(request)
        except HttpError as error:
            response = error_response(error.status, error.error_type, str(error), error.headers)
        except BertlessError as error:
            response = error_response(
                error.status, error.error_type, str(error), dict(error.headers)
            )
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            response = error_response(
                500, "Backend", "internal error; the server log has the details."
            )
        if request.method.upper() == "HEAD":  # the GET's status and headers, no body (RFC 9110)
            response = Response(response.status, response.headers, b"")
        return response

    def _dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        method = request.method.upper()
        if method == "OPTIONS" and self.config.cors_origins:
            return Response(204, {}, b"")
        if path == "/metrics" and self.config.metrics and method in ("GET", "HEAD"):
            observe.matched(path)
            self._authorize(request)
            return Response(
                200, {"Content-Type": observe.Metrics.CONTENT_TYPE}, self.metrics.render()
            )
        candidates = [r for r in ROUTES if r.path == path]
        if not candidates:
            raise HttpError(404, f"no route {path}; see /openapi.json for the routes.")
        wanted = "GET" if method == "HEAD" else method  # handle() then drops the body
        route = next((r for r in candidates if r.method == wanted), None)
        observe.matched(path)
        if route is None:
            methods = {r.method for r in candidates}
            allowed = ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
            raise HttpError(405, f"{path} takes {allowed}, not {method}.", {"Allow": allowed})
        if path != "/health":
            self._authorize(request)
        if self.predictor is None and path != "/openapi.json":
            raise BundleError(f"the model failed to load: {self.failure}")
        if route.tasks and self.task not in route.tasks:
            raise WrongTaskError(
                f"{path} needs a {' or '.join(route.tasks)} bundle; this one is {self.task}."
            )
        body = None
        if route.request:
            raw = self._body(request)
            if path == "/":
                route, body = self._root(raw)
            else:
                body = decode(raw, route.request)
        result = getattr(self, route.handler)(body)
        if isinstance(result, Response):
            return result
        return Response(200, {"Content-Type": JSON}, dumps(result))

    # -- HTTP rules -------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        key = self.config.api_key
        if key is None:
            return
        given = request.header("Authorization") or ""
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), key.encode()
        ):
            raise HttpError(
                401,
                "missing or wrong API key: send Authorization: Bearer <key>.",
                {"WWW-Authenticate": "Bearer"},
            )

    def _body(self, request: Request) -> bytes:
        """The body of a request that must carry JSON, once its media type and size are right;
        its JSON is read together with its validation (core.http.decode)."""
        media = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if media != JSON and not media.endswith("+json"):
            raise HttpError(415, f"send the body as {JSON}, not {media or 'no content type'}.")
        if len(request.body) > self.config.max_body_bytes:
            # Not its size: a server may stop reading a body once it is over the limit.
            raise HttpError(
                413, f"the body is larger than the limit of {self.config.max_body_bytes} bytes."
            )
        return request.body

    def _cors(self, request: Request, response: Response) -> Response:
        origin = request.header("Origin")
        allowed = self.config.cors_origins
        if origin and allowed and ("*" in allowed or origin in allowed):
            response.headers.update(
                {
                    "Access-Control-Allow-Origin": origin if "*" not in allowed else "*",
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Vary": "Origin",
                }
            )
        return response

    # -- the work ---------------------------------------------------------------------------------

    def _truncate(self, value: bool | None) -> bool:
        return self.config.auto_truncate if value is None else value

    def _check_count(self, count: int) -> None:
        if count > self.config.max_batch_size:
            raise TooManyInputsError(
                f"{count} inputs are more than the maximum batch size of "
                f"{self.config.max_batch_size}: split the request."
            )

    def _vectors(self, items: list[Item], truncate: bool | None, normalize: bool = True):
        """The vectors of ITEMS; the caller has checked the count of what the client sent (the
        similarity's and rerank's query comes on top, as in TEI)."""
        with self.batcher.admitted():
            forward = self.predictor.embed(
                items, self.config.max_batch_size, self._truncate(truncate), normalize
            )
        observe.counted(len(items), sum(forward.token_counts))
        return forward

    def _scores(self, items: list[Item], truncate: bool | None, raw_scores: bool) -> np.ndarray:
        with self.batcher.admitted():
            forward = self.predictor.classify(
                items, self.config.max_batch_size, self._truncate(truncate), raw_scores
            )
        observe.counted(len(items), sum(forward.token_counts))
        return forward.values

    def embed(self, body: schemas.EmbedRequest) -> list:
        items = as_items(body.inputs, pairs=False)
        self._check_count(len(items))
        vectors = self._vectors(items, body.truncate, body.normalize).values
        return options.cut(
            vectors, body.dimensions, self.predictor.manifest, body.normalize
        ).tolist()

    def openai_embeddings(self, body: schemas.OpenAIEmbeddingRequest) -> dict:
        items = as_items(body.input, pairs=False)
        self._check_count(len(items))
        forward = self._vectors(items, None)
        vectors = options.cut(forward.values, body.dimensions, self.predictor.manifest, True)
        data = []
        for index, vector in enumerate(vectors):
            if body.encoding_format == "base64":
                encoded: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            else:
                encoded = vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(forward.token_counts)
        return {
            "object": "list",
            "data": data,
            "model": body.model or self.predictor.manifest.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def similarity(self, body: schemas.SimilarityRequest) -> list:
        self._check_count(len(body.inputs.sentences))
        sentences = [body.inputs.source_sentence, *body.inputs.sentences]
        vectors = self._vectors(as_items(sentences, pairs=False), body.truncate).values
        return (vectors[1:] @ vectors[0]).tolist()

    def predict(self, body: schemas.PredictRequest) -> list:
        single, ranked = self._ranked(body)
        return ranked[0] if single else ranked

    def predict_per_input(self, body: schemas.PredictRequest) -> list:
        """The Inference API's shape, which the root answers for classifiers: one list of
        labels per input, a single text too (huggingface_hub's client takes the first)."""
        return self._ranked(body)[1]

    def _ranked(self, body: schemas.PredictRequest) -> tuple[bool, list]:
        single, items = body.inputs.single, body.inputs.items
        self._check_count(len(items))
        parameters = body.parameters or schemas.ClassificationParameters()
        function = parameters.function_to_apply
        scores = self._scores(
            as_items(items, pairs=True), body.truncate, body.raw_scores or function is not None
        )
        if function is not None:
            scores = options.apply_function(function, scores)
        labels = self.predictor.manifest.labels
        ranked = [rank_labels(row, labels)[: parameters.top_k] for row in scores]
        return single, ranked

    def rerank(self, body: schemas.RerankRequest) -> list:
        self._check_count(len(body.texts))
        truncate = self._truncate(body.truncate)
        if self.task == "feature-extraction":
            vectors = self._vectors(
                as_items([body.query, *body.texts], pairs=False), truncate
            ).values
            scores = vectors[1:] @ vectors[0]
        else:
            refusal = rerank_refusal(self.predictor.manifest)
            if refusal:
                raise WrongTaskError(refusal)
            pairs = as_items([(body.query, text) for text in body.texts], pairs=True)
            scores = self._scores(pairs, truncate, body.raw_scores)[:, 0]
        order = np.argsort(-scores, kind="stable")
        return [
            {
                "index": int(i),
                "score": float(scores[i]),
                **({"text": body.texts[i]} if body.return_text else {}),
            }
            for i in order
        ]

    def _root(self, body: bytes) -> tuple[Route, Any]:
        """The Inference API posts every task to the root: answer as the bundle's task route
        (for embeddings, inputs that are an object are a sentence-similarity request)."""
        if self.task == "text-classification":
            route = replace(
                ROUTE_BY_PATH["/predict"],
                handler="predict_per_input",
                response=schemas.InferencePredictions,
            )
            return route, decode(body, route.request)
        data = parse(body)
        similarity = isinstance(data.get("inputs"), dict)
        route = ROUTE_BY_PATH["/similarity" if similarity else "/embed"]
        return route, convert(data, route.request)

    def health(self, body: None) -> dict:
        return {"status": "ok"}

    def info(self, body: None) -> dict:
        manifest = self.predictor.manifest
        return {
            "model_id": manifest.model_id,
            "architecture": manifest.architecture,
            "task": manifest.task,
            "labels": manifest.labels,
            "dimension": manifest.dimension,
            "max_input_length": manifest.max_length,
            "max_client_batch_size": self.config.max_batch_size,
            "max_body_bytes": self.config.max_body_bytes,
            "auto_truncate": self.config.auto_truncate,
            # The bundle's own choice, the Predictor's default; /embed's is TEI's, true.
            "normalize": manifest.normalize,
            "precision": manifest.precision,
            "bundle_sha256": self._checksum,
            "auth": self.config.api_key is not None,
            "version": VERSION,
        }

    def openapi(self, body: None) -> Response:
        """The document, built at the first request for it rather than at start: a function's
        first request is hardly ever this one. Building it takes about 5 ms from the msgspec
        contract (20-60 ms from the pydantic one it replaced; a first GET /openapi.json on the
        int8 MiniLM, three runs). Two first requests at once may both build it, to the same
        bytes."""
        if self._openapi is None:
            from bertless.core.openapi import service_document

            manifest = self.predictor.manifest if self.predictor else None
            self._openapi = dumps(service_document(manifest, self.config))
        return Response(200, {"Content-Type": JSON}, self._openapi)
