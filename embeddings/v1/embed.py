"""An embeddings request, from its parsed JSON to OpenAI's response body.

Inputs are text or token ids of the model's own tokenizer. The model reads
``max_tokens`` word pieces, [CLS] and [SEP] included (254 of input for MiniLM);
a longer input is truncated, as sentence-transformers does, and the response
says how many were (``truncated``), unless the caller sent ``truncate: false``,
which makes such an input an error instead. ``prompt_tokens`` counts the word
pieces the model read: what was cut off is neither embedded nor counted.
"""

import base64
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.conf import settings

from embeddings.encoders import Encoder
from embeddings.v1.errors import (
    INVALID_INPUT,
    InputTooLong,
    InvalidRequest,
    TooLarge,
)
from embeddings.v1.served import ServedModel

Inputs = list[str] | list[list[int]]


@dataclass(frozen=True)
class EmbeddingResult:
    body: dict[str, Any]
    prompt_tokens: int
    truncated: int  # inputs longer than the model reads
    max_input_tokens: int


def embeddings_create(
    *,
    model: ServedModel,
    inputs: Inputs,
    encoding_format: Literal["float", "base64"] = "float",
    dimensions: int | None = None,
    truncate: bool = True,
) -> EmbeddingResult:
    """Embed ``inputs`` with ``model`` and answer as OpenAI does."""
    encoder = model.encoder()
    _check_dimensions(encoder, model.id, dimensions)
    ids = _token_ids(encoder, inputs)
    window = encoder.content_tokens
    tokens, truncated = _count_tokens(ids, window=window, truncate=truncate)
    if isinstance(inputs[0], str):
        vectors = encoder.encode([str(text) for text in inputs])
    else:
        vectors = encoder.encode_ids(ids)
    body = {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": _format(v, encoding_format),
            }
            for i, v in enumerate(vectors)
        ],
        "model": model.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return EmbeddingResult(
        body=body, prompt_tokens=tokens, truncated=truncated, max_input_tokens=window
    )


def _count_tokens(
    ids: list[list[int]], *, window: int, truncate: bool
) -> tuple[int, int]:
    """Tokens the model will read, and how many inputs it cuts; refuses a
    request over ``EMBEDDINGS_API_MAX_TOKENS``, or a cut the caller refused."""
    lengths = [len(row) for row in ids]
    long = [i for i, n in enumerate(lengths) if n > window]
    if long and not truncate:
        raise InputTooLong(
            f"input[{long[0]}] has {lengths[long[0]]} tokens and this model reads "
            f"at most {window}: shorten it, or allow truncation.",
            param="input",
        )
    tokens = sum(min(n, window) for n in lengths)
    if tokens > settings.EMBEDDINGS_API_MAX_TOKENS:
        raise TooLarge(
            f"The request has {tokens} tokens (after truncation to {window} per "
            f"input); the limit is {settings.EMBEDDINGS_API_MAX_TOKENS} per request: "
            "send fewer inputs per request.",
            param="input",
        )
    return tokens, len(long)


def inputs_parse(value: object) -> Inputs:
    """OpenAI's four shapes of ``input``, as a list of texts or of id lists (an id
    is a JSON integer: 7, or 7.0)."""
    value = _ids_as_ints(value)
    one_ids = isinstance(value, list) and value and all(_is_id(v) for v in value)
    if isinstance(value, str) or one_ids:
        value = [value]
    if not isinstance(value, list) or not value:
        raise _invalid("input must be a non-empty string or array")
    if len(value) > settings.EMBEDDINGS_API_MAX_INPUTS:
        raise TooLarge(
            f"{len(value)} inputs in one request; the limit is "
            f"{settings.EMBEDDINGS_API_MAX_INPUTS}.",
            param="input",
        )
    if all(isinstance(v, str) for v in value):
        if empty := [i for i, v in enumerate(value) if not v]:
            raise _invalid(f"input[{empty[0]}] is an empty string")
        return value
    if all(isinstance(v, list) and all(_is_id(i) for i in v) for v in value):
        if empty := [i for i, v in enumerate(value) if not v]:
            raise _invalid(f"input[{empty[0]}] is an empty array of tokens")
        return value
    raise _invalid(
        "input must be a string, an array of strings, an array of token ids "
        "(integers) or an array of such arrays, not a mix"
    )


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ids_as_ints(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ids_as_ints(item) for item in value]
    return value


def _invalid(reason: str) -> InvalidRequest:
    return InvalidRequest(f"{INVALID_INPUT}: {reason}.", param="input")


def _token_ids(encoder: Encoder, inputs: Inputs) -> list[list[int]]:
    if isinstance(inputs[0], str):
        return encoder.token_ids([str(text) for text in inputs])
    rows = [list(row) for row in inputs if isinstance(row, list)]
    vocabulary = _vocabulary_size(encoder)
    for i, row in enumerate(rows):
        if bad := [t for t in row if not 0 <= t < vocabulary]:
            raise InvalidRequest(
                f"{INVALID_INPUT}: input[{i}] has token id {bad[0]}; this model's "
                f"tokenizer has ids 0 to {vocabulary - 1}.",
                param="input",
            )
    return rows


def _vocabulary_size(encoder: Encoder) -> int:
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_vocab_size"):
        raise InvalidRequest(
            "This model takes text only, not token ids.", param="input"
        )
    return int(tokenizer.get_vocab_size())


def _check_dimensions(encoder: Encoder, model: str, dimensions: int | None) -> None:
    # MiniLM is not a Matryoshka model: a cut vector is not a smaller embedding.
    if dimensions is not None and dimensions != encoder.dimension:
        raise InvalidRequest(
            f"{model} makes {encoder.dimension}-dimensional embeddings and cannot "
            f"shorten them; omit dimensions or send {encoder.dimension}.",
            param="dimensions",
        )


def _format(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # Little-endian float32 bytes: what the openai client's frombuffer reads.
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values
