"""The HTTP contract as msgspec Structs: the single source of validation and of /openapi.json.

Shapes follow Hugging Face Text Embeddings Inference (TEI) and the OpenAI embeddings API, so that
clients written for those servers work against bertless unchanged.

msgspec rather than pydantic because both of its costs are on every function's path: importing
it and building a first model took about 62 ms of a 450 ms cold start (msgspec: about 17 ms), and
it decodes and validates a body in one pass, where pydantic validated what `json.loads` had built.
What msgspec's types cannot say (an integer written 5.0, /predict's three shapes of `inputs`) is
a custom type read by `decode_hook` and documented by `schema_hook`, so the document and the
validation still come from one declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct

# Limits that come from the running configuration, not from the code: the schema carries a
# marker that /openapi.json replaces with the configured figure (core.openapi.LIMITS), while the
# service enforces the same figure (413), so the document and the validation cannot disagree.
LIMIT = "x-bertless-limit"
Text = Annotated[str, Meta(min_length=1, extra_json_schema={LIMIT: "text"})]
Texts = Annotated[list[Text], Meta(min_length=1, extra_json_schema={LIMIT: "inputs"})]
Pair = Annotated[list[Text], Meta(min_length=1, max_length=2)]
Pairs = Annotated[list[Pair], Meta(min_length=1, extra_json_schema={LIMIT: "inputs"})]
# Booleans are JSON's true and false only (msgspec's JSON decoding is strict): `"truncate": 0`
# is an error, not a quiet false.
Item = str | tuple[str, str]


def _json_type(value: Any) -> str:
    """VALUE's JSON type as msgspec's messages name it."""
    names = {str: "str", bool: "bool", int: "int", float: "float", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _convert(value: Any, kind: Any) -> Any:
    """VALUE as KIND, from within `decode_hook`: a ValueError there gets the field's path added
    by msgspec, after the path inside the value (core.http reads both)."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        raise ValueError(str(error)) from None


class Whole(int):
    """JSON Schema's integer: any number without a fraction, 5.0 too; text and 5.5 stay errors.
    msgspec's own `int` refuses 5.0, which JSON Schema calls an integer (and clients send)."""

    minimum: ClassVar[int | None] = None

    @classmethod
    def parse(cls, value: Any) -> Whole:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise TypeError(f"Expected `int`, got `{_json_type(value)}`")
        if cls.minimum is not None and value < cls.minimum:
            raise ValueError(f"Expected `int` >= {cls.minimum}")
        return cls(value)


class Count(Whole):
    """A whole number of at least 1."""

    minimum = 1


class PredictInputs:
    """/predict's `inputs` as TEI reads them: a text; a list of exactly two texts is one pair; a
    list of texts of any other length is a batch of single texts; a list of lists is a batch of
    texts and pairs. msgspec takes no union of two list types, so the three shapes are read here,
    each by its own declaration, which is also what the document states (`schema_hook`)."""

    __slots__ = ("items", "single")
    shapes = (Text, Texts, Pairs)

    def __init__(self, single: bool, items: list[Item]) -> None:
        self.single = single  # one input, answered without the batch's outer list
        self.items = items

    @classmethod
    def parse(cls, value: Any) -> PredictInputs:
        if isinstance(value, list) and value and isinstance(value[0], list):
            pairs = _convert(value, Pairs)
            return cls(False, [p[0] if len(p) == 1 else (p[0], p[1]) for p in pairs])
        inputs = _convert(value, Text | Texts)
        if isinstance(inputs, str):
            return cls(True, [inputs])
        if len(inputs) == 2:
            return cls(True, [(inputs[0], inputs[1])])
        return cls(False, list(inputs))


def decode_hook(kind: type, value: Any) -> Any:
    """msgspec's hook for the custom types above: VALUE, as decoded from JSON, as KIND."""
    if issubclass(kind, (Whole, PredictInputs)):
        return kind.parse(value)
    raise NotImplementedError(kind)


def schema_hook(kind: type) -> dict[str, Any]:
    """The JSON Schema of a custom type, in JSON Schema's own words (`minimum`, not `ge`)."""
    if issubclass(kind, Whole):
        return {"type": "integer", **({"minimum": kind.minimum} if kind.minimum else {})}
    if kind is PredictInputs:
        return {"anyOf": [msgspec.json.schema(shape) for shape in kind.shapes]}
    raise NotImplementedError(kind)


Dimensions = Annotated[
    Whole,
    Meta(
        description="Cut each vector to its first N values and renormalize (Matryoshka): the "
        "sizes the bundle was trained for, or its full dimension.",
        extra_json_schema={LIMIT: "dimensions"},
    ),
]
# The sentence a request gets instead of msgspec's when a field's value is one a client means but
# a bundle cannot follow (None: msgspec's own sentence is right).
Refusal = Callable[[Any], str | None]


class _Body(Struct, frozen=True):
    # Each subclass says kw_only=True (msgspec applies it to a class's own fields): fields are
    # named, never positional, and the document may list them in reading order.
    # Unknown fields are ignored (msgspec's default), as TEI does, so newer clients sending new
    # options still work.
    refusals: ClassVar[dict[str, Refusal]] = {}


# TEI's options that huggingface_hub's feature_extraction sends when asked: refused with a
# sentence rather than ignored, so a client never gets vectors of something it did not ask.
def _no_prompts(value: Any) -> str:
    return "a bundle has no named prompts, put the prompt before the text"


def _right_only(value: Any) -> str | None:
    if isinstance(value, str) and value.lower() == "left":
        return "long texts are cut at the end only (Right), not at the start"
    return None


class EmbedRequest(_Body, kw_only=True):
    inputs: Text | Texts
    normalize: bool = True
    truncate: Annotated[
        bool | None, Meta(description="Cut at the max length; default: auto_truncate.")
    ] = None
    dimensions: Dimensions | None = None
    prompt_name: Annotated[
        None, Meta(description="Always null: a bundle has no named prompts.")
    ] = None
    truncation_direction: Annotated[
        Literal["Right", "right"] | None, Meta(description="Long texts are cut at the end only.")
    ] = None

    refusals: ClassVar[dict[str, Refusal]] = {
        "prompt_name": _no_prompts,
        "truncation_direction": _right_only,
    }


class ClassificationParameters(_Body, kw_only=True):
    """The Inference API's text-classification parameters (huggingface_hub's InferenceClient
    sends them), so that a client asking for the best label alone gets it."""

    top_k: Annotated[Count | None, Meta(description="Only the k best labels.")] = None
    function_to_apply: Annotated[
        Literal["sigmoid", "softmax", "none"] | None,
        Meta(
            description="Instead of the bundle's own (softmax, or sigmoid for multi-label); "
            "when given, it decides the scores whatever raw_scores says."
        ),
    ] = None


class PredictRequest(_Body, kw_only=True):
    inputs: Annotated[
        PredictInputs,
        Meta(
            description='A text; a pair ["text", "pair"]; a batch [["t1"], ["t2", "pair"]]. A '
            "list of texts of any other length than two is a batch of single texts (as in TEI)."
        ),
    ]
    raw_scores: bool = False
    truncate: bool | None = None
    parameters: ClassificationParameters | None = None


class SimilarityInputs(_Body, kw_only=True):
    source_sentence: Text
    sentences: Texts


class SimilarityRequest(_Body, kw_only=True):
    inputs: SimilarityInputs
    truncate: bool | None = None


class RerankRequest(_Body, kw_only=True):
    query: Text
    texts: Texts
    return_text: bool = False
    raw_scores: bool = False
    truncate: bool | None = None


def _texts_not_token_ids(value: Any) -> str | None:
    """OpenAI also takes token ids, in its own models' vocabulary; they mean nothing to this
    model. LangChain's OpenAIEmbeddings sends them by default, so say how to stop it."""
    if isinstance(value, list) and any(
        type(v) is int or (isinstance(v, list) and v and type(v[0]) is int) for v in value
    ):
        return (
            "token ids are not accepted, send the texts (LangChain's OpenAIEmbeddings: set "
            "check_embedding_ctx_length=False)"
        )
    return None


class OpenAIEmbeddingRequest(_Body, kw_only=True):
    input: Text | Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Dimensions | None = None

    refusals: ClassVar[dict[str, Refusal]] = {"input": _texts_not_token_ids}


# -- answers: documented, not decoded (the service writes them as plain JSON) ----------------------


class _Shape(Struct, frozen=True):
    pass


class Label(_Shape, kw_only=True):
    label: str
    score: float


class Rank(_Shape, kw_only=True):
    index: int
    score: float
    text: str | None = None


class OpenAIEmbedding(_Shape, kw_only=True):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: Annotated[
        list[float] | str, Meta(description="Floats, or base64 of little-endian float32.")
    ]


class Usage(_Shape, kw_only=True):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(_Shape, kw_only=True):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


class Health(_Shape, kw_only=True):
    status: Literal["ok"] = "ok"


class Info(_Shape, kw_only=True):
    model_id: str
    # transformer, static or bilstm: which engine serves it (a static table needs no onnxruntime)
    architecture: str
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


class ErrorBody(_Shape, kw_only=True):
    error: str
    error_type: ErrorType


class OpenAIErrorBody(_Shape, kw_only=True):
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
