"""The HTTP contract as pydantic models: the single source of validation and of /openapi.json.

Shapes follow Hugging Face Text Embeddings Inference (TEI) and the OpenAI embeddings API, so that
clients written for those servers work against bertless unchanged.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic_core import PydanticCustomError

# Limits that come from the running configuration, not from the code: the schema carries a
# marker that /openapi.json replaces with the configured figure (core.openapi.LIMITS), while the
# service enforces the same figure (413), so the document and the validation cannot disagree.
LIMIT = "x-bertless-limit"
Text = Annotated[str, Field(min_length=1, json_schema_extra={LIMIT: "text"})]
Texts = Annotated[list[Text], Field(min_length=1, json_schema_extra={LIMIT: "inputs"})]
# Booleans are JSON's true and false only: `"truncate": 0` is an error, not a quiet false.
Switch = StrictBool


def _whole(value: Any) -> Any:
    """JSON Schema's integer is any number without a fraction (5.0 too); text stays an error."""
    return int(value) if type(value) is float and value.is_integer() else value


Whole = Annotated[StrictInt, BeforeValidator(_whole)]
Dimensions = Annotated[
    Whole,
    Field(
        description="Cut each vector to its first N values and renormalize (Matryoshka): the "
        "sizes the bundle was trained for, or its full dimension.",
        json_schema_extra={LIMIT: "dimensions"},
    ),
]


class _Shape(BaseModel):
    """Built when first used, not when defined: a cold start validates one kind of request and
    documents none, and building every model up front cost it about 20 ms (pydantic's
    defer_build; benchmarks/coldstart.py)."""

    model_config = ConfigDict(defer_build=True)


# Held while a model is built at its first use, so one thread builds it whichever pydantic is
# installed: pydantic's own rebuild is thread-safe only from 2.14 (pydantic#13438); before, a
# concurrent first request could validate with a half-built model.
BUILDING = threading.Lock()


def built(model: type[BaseModel]) -> type[BaseModel]:
    """MODEL, its validator built."""
    if not model.__pydantic_complete__:
        with BUILDING:
            model.model_rebuild()
    return model


class _Body(_Shape):
    # Unknown fields are ignored, as TEI does, so newer clients sending new options still work.
    model_config = ConfigDict(extra="ignore")


class EmbedRequest(_Body):
    inputs: Text | Texts
    normalize: Switch = True
    truncate: Switch | None = Field(
        None, description="Cut at the max length; default: auto_truncate."
    )
    dimensions: Dimensions | None = None
    # TEI's options that huggingface_hub's feature_extraction sends when asked: refused with a
    # sentence rather than ignored, so a client never gets vectors of something it did not ask.
    prompt_name: None = Field(None, description="Always null: a bundle has no named prompts.")
    truncation_direction: Literal["Right", "right"] | None = Field(
        None, description="Long texts are cut at the end only."
    )

    @field_validator("prompt_name", mode="before")
    @classmethod
    def _no_prompts(cls, value: Any) -> Any:
        if value is not None:
            raise PydanticCustomError(
                "no_prompts", "a bundle has no named prompts, put the prompt before the text"
            )
        return value

    @field_validator("truncation_direction", mode="before")
    @classmethod
    def _right_only(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() == "left":
            raise PydanticCustomError(
                "right_only", "long texts are cut at the end only (Right), not at the start"
            )
        return value


Pair = Annotated[list[Text], Field(min_length=1, max_length=2)]


class ClassificationParameters(_Body):
    """The Inference API's text-classification parameters (huggingface_hub's InferenceClient
    sends them), so that a client asking for the best label alone gets it."""

    # The bound sits on the integer itself: put on `Whole`, pydantic's JSON schema said `ge`, which
    # no JSON Schema reader knows, instead of `minimum`, and generated clients sent 0.
    top_k: Annotated[StrictInt, Field(ge=1), BeforeValidator(_whole)] | None = Field(
        None, description="Only the k best labels."
    )
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        None,
        description="Instead of the bundle's own (softmax, or sigmoid for multi-label); "
        "when given, it decides the scores whatever raw_scores says.",
    )


class PredictRequest(_Body):
    inputs: (
        Text
        | Texts
        | Annotated[list[Pair], Field(min_length=1, json_schema_extra={LIMIT: "inputs"})]
    ) = Field(
        description='A text; a pair ["text", "pair"]; a batch [["t1"], ["t2", "pair"]]. A list '
        "of texts of any other length than two is a batch of single texts (as in TEI)."
    )
    raw_scores: Switch = False
    truncate: Switch | None = None
    parameters: ClassificationParameters | None = None


class SimilarityInputs(_Body):
    source_sentence: Text
    sentences: Texts


class SimilarityRequest(_Body):
    inputs: SimilarityInputs
    truncate: Switch | None = None


class RerankRequest(_Body):
    query: Text
    texts: Texts
    return_text: Switch = False
    raw_scores: Switch = False
    truncate: Switch | None = None


class OpenAIEmbeddingRequest(_Body):
    input: Text | Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Dimensions | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _texts_not_token_ids(cls, value: Any) -> Any:
        """OpenAI also takes token ids, in its own models' vocabulary; they mean nothing to
        this model. LangChain's OpenAIEmbeddings sends them by default, so say how to stop it."""
        if isinstance(value, list) and any(
            type(v) is int or (isinstance(v, list) and v and type(v[0]) is int) for v in value
        ):
            raise PydanticCustomError(
                "token_ids",
                "token ids are not accepted, send the texts (LangChain's OpenAIEmbeddings: set "
                "check_embedding_ctx_length=False)",
            )
        return value


class Label(_Shape):
    label: str
    score: float


class Rank(_Shape):
    index: int
    score: float
    text: str | None = None


class OpenAIEmbedding(_Shape):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32.")


class Usage(_Shape):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(_Shape):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


class Health(_Shape):
    status: Literal["ok"] = "ok"


class Info(_Shape):
    model_id: str
    task: str
    labels: list[str]
    dimension: int | None
    max_input_length: int
    max_client_batch_size: int
    max_body_bytes: int
    auto_truncate: bool
    normalize: bool
    precision: str
    bundle_sha256: str
    auth: bool
    version: str


ErrorType = Literal["Validation", "Tokenizer", "Backend", "Overloaded", "Unhealthy", "Empty"]


class ErrorBody(_Shape):
    error: str
    error_type: ErrorType


class OpenAIErrorBody(_Shape):
    """An error on the OpenAI route, in TEI's shape for it (OpenAICompatErrorResponse). The
    OpenAI SDK puts `message` in its exception; of TEI's usual `{"error": "..."}` it shows
    only the status, and the user never reads what to change."""

    message: str
    code: int
    type: ErrorType


Vectors = list[list[float]]
Predictions = list[Label] | list[list[Label]]
# The Inference API's text-classification answer: a list of labels per input, even for one text.
InferencePredictions = list[list[Label]]
