"""The HTTP contract as pydantic models: the single source of validation and of /openapi.json.

Shapes follow Hugging Face Text Embeddings Inference (TEI) and the OpenAI embeddings API, so that
clients written for those servers work against bertless unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(min_length=1)]
Texts = Annotated[list[Text], Field(min_length=1)]


class _Body(BaseModel):
    # Unknown fields are ignored, as TEI does, so newer clients sending new options still work.
    model_config = ConfigDict(extra="ignore")


class EmbedRequest(_Body):
    inputs: Text | Texts
    normalize: bool = True
    truncate: bool | None = Field(
        None, description="Cut at the max length; default: auto_truncate."
    )


Pair = Annotated[list[Text], Field(min_length=1, max_length=2)]


class PredictRequest(_Body):
    inputs: Text | Texts | Annotated[list[Pair], Field(min_length=1)] = Field(
        description='A text; a pair ["text", "pair"]; a batch [["t1"], ["t2", "pair"]]. A list '
        "of texts of any other length than two is a batch of single texts (as in TEI)."
    )
    raw_scores: bool = False
    truncate: bool | None = None


class SimilarityInputs(_Body):
    source_sentence: Text
    sentences: Texts


class SimilarityRequest(_Body):
    inputs: SimilarityInputs
    truncate: bool | None = None


class RerankRequest(_Body):
    query: Text
    texts: Texts
    return_text: bool = False
    raw_scores: bool = False
    truncate: bool | None = None


class OpenAIEmbeddingRequest(_Body):
    input: Text | Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"


class Label(BaseModel):
    label: str
    score: float


class Rank(BaseModel):
    index: int
    score: float
    text: str | None = None


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32.")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Info(BaseModel):
    model_id: str
    task: str
    labels: list[str]
    dimension: int | None
    max_input_length: int
    max_client_batch_size: int
    max_body_bytes: int
    auto_truncate: bool
    precision: str
    bundle_sha256: str
    auth: bool
    version: str


class ErrorBody(BaseModel):
    error: str
    error_type: Literal["Validation", "Tokenizer", "Backend", "Overloaded", "Unhealthy", "Empty"]


Vectors = list[list[float]]
Predictions = list[Label] | list[list[Label]]
