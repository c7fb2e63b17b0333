"""``/v1``: OpenAI's embeddings and models endpoints, for the official clients.

A NinjaAPI of its own (not the site's ``/api``) because OpenAI's clients expect
OpenAI's error envelope, ``{"error": {"message", "type", "param", "code"}}``, on
every error, malformed bodies and unknown URLs included.
"""

import json
import logging
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import BeforeValidator, ConfigDict

from embeddings.encoders import EncoderUnavailable, get_encoder
from embeddings.v1.auth import BearerAuth, Principal, principal
from embeddings.v1.embed import embeddings_create, inputs_parse
from embeddings.v1.errors import (
    InvalidRequest,
    NotFound,
    OpenAIError,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from embeddings.v1.limits import rate_usage, wait_seconds
from embeddings.v1.served import OWNER, ServedModel, served_model_get, served_models

logger = logging.getLogger(__name__)

v1 = NinjaAPI(
    title="OpenAI-compatible embeddings",
    version="1",
    description=(
        "POST /v1/embeddings and GET /v1/models as OpenAI serves them, from this "
        "site's own model. Authorization: Bearer <API key with the embeddings "
        "permission>."
    ),
    urls_namespace="v1",
)


def _input_schema(schema: dict[str, Any]) -> None:
    """``input`` as ``inputs_parse`` takes it, with the ids the site's model's
    tokenizer has: filled in when the OpenAPI document is made, not at import."""
    text = {"type": "string", "minLength": 1}
    token: dict[str, Any] = {"type": "integer", "minimum": 0}
    if vocabulary := _vocabulary():
        token["maximum"] = vocabulary - 1
    most = settings.EMBEDDINGS_API_MAX_INPUTS
    ids = {"type": "array", "minItems": 1, "items": token}
    schema["anyOf"] = [
        text,
        {"type": "array", "minItems": 1, "maxItems": most, "items": text},
        ids,
        {"type": "array", "minItems": 1, "maxItems": most, "items": ids},
    ]


def _dimensions_schema(schema: dict[str, Any]) -> None:
    schema.pop("anyOf", None)
    schema["anyOf"] = [{"const": get_encoder().dimension}, {"type": "null"}]


def _vocabulary() -> int:
    tokenizer = getattr(get_encoder(), "tokenizer", None)
    return int(tokenizer.get_vocab_size()) if tokenizer is not None else 0


def _whole(value: Any) -> Any:
    """JSON Schema's integer: 384 or 384.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class EmbeddingsIn(Schema):
    # JSON's own types only: 0 is no false, "1" no number.
    model_config = ConfigDict(strict=True)

    input: Any = Field(
        description="A string, an array of strings, an array of token ids of the "
        "model's tokenizer, or an array of such arrays.",
        examples=["How do I reset my password?"],
        json_schema_extra=_input_schema,
    )
    model: str = Field(examples=["all-MiniLM-L6-v2"])
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: Annotated[int, BeforeValidator(_whole)] | None = Field(
        None,
        description="Only the model's own dimension (384 for MiniLM).",
        json_schema_extra=_dimensions_schema,
    )
    user: str | None = Field(None, description="Accepted and not stored.")
    truncate: bool = Field(
        True,
        description="Not OpenAI's: false makes an input longer than the model "
        "reads an error (422) instead of truncating it.",
    )


class EmbeddingOut(Schema):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class UsageOut(Schema):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsOut(Schema):
    object: Literal["list"]
    data: list[EmbeddingOut]
    model: str
    usage: UsageOut


class ModelOut(Schema):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelsOut(Schema):
    object: Literal["list"]
    data: list[ModelOut]


class ErrorBody(Schema):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(Schema):
    error: ErrorBody


ERRORS: dict[int, type[Schema]] = {
    code: ErrorOut for code in (400, 401, 403, 404, 413, 422, 429, 503)
}


@v1.post(
    "/embeddings",
    auth=BearerAuth(),
    response={200: EmbeddingsOut, **ERRORS},
    tags=["embeddings"],
)
def embeddings(request: HttpRequest, body: EmbeddingsIn) -> HttpResponse:
    """Embed text or token ids. Headers: ``X-Truncated-Inputs`` (inputs cut to
    the model's window), ``X-Max-Input-Tokens`` (the window, in word pieces)."""
    who = principal(request)
    limit_headers = _rate_limit(request, who)
    result = embeddings_create(
        model=served_model_get(body.model),
        inputs=inputs_parse(body.input),
        encoding_format=body.encoding_format or "float",
        dimensions=body.dimensions,
        truncate=body.truncate,
    )
    who.record_usage(tokens=result.prompt_tokens)
    response = JsonResponse(result.body)
    response["X-Truncated-Inputs"] = str(result.truncated)
    response["X-Max-Input-Tokens"] = str(result.max_input_tokens)
    for name, value in limit_headers.items():
        response[name] = value
    return response


@v1.get("/models", auth=BearerAuth(), response={200: ModelsOut, **ERRORS})
def models_list(request: HttpRequest) -> dict[str, Any]:
    return {"object": "list", "data": [_model_out(m) for m in served_models()]}


@v1.get("/models/{path:model}", auth=BearerAuth(), response={200: ModelOut, **ERRORS})
def models_get(request: HttpRequest, model: str) -> dict[str, Any]:
    return _model_out(served_model_get(model))


@v1.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False
)
def unknown_url(request: HttpRequest, rest: str) -> HttpResponse:
    raise NotFound(f"Invalid URL ({request.method} {request.path})")


def _model_out(model: ServedModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": OWNER,
    }


def _rate_limit(request: HttpRequest, who: Principal) -> dict[str, str]:
    """Count the request against its key's ``EMBEDDINGS_API_RATE``; 429 past it."""
    rate = settings.EMBEDDINGS_API_RATE
    usage = rate_usage(
        request, group="v1-embeddings", rate=rate, key=lambda *_: who.rate_key
    )
    if usage is None:
        return {}
    if wait := wait_seconds(usage):
        raise RateLimited(
            f"Rate limit reached for this API key: {rate} requests "
            f"(EMBEDDINGS_API_RATE). Try again in {wait}s.",
            retry_after=wait,
        )
    return {
        "X-RateLimit-Limit-Requests": str(usage["limit"]),
        "X-RateLimit-Remaining-Requests": str(usage["limit"] - usage["count"]),
        "X-RateLimit-Reset-Requests": f"{max(1, int(usage['time_left']))}s",
    }


# --- errors, all in OpenAI's envelope -------------------------------------------


def _error_response(error: OpenAIError) -> HttpResponse:
    response = JsonResponse(error.envelope(), status=error.status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


@v1.exception_handler(OpenAIError)
def openai_error(request: HttpRequest, error: OpenAIError) -> HttpResponse:
    return _error_response(error)


@v1.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return _error_response(_validation_message(error.errors))


@v1.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    if error.status_code == 400:  # ninja could not parse the JSON body
        return _error_response(
            InvalidRequest(
                "We could not parse the JSON body of your request: send a JSON "
                "object with Content-Type: application/json."
            )
        )
    failure = OpenAIError(str(error))
    failure.status = error.status_code
    return _error_response(failure)


@v1.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: Exception) -> HttpResponse:
    if not request.headers.get("Authorization"):
        failure = Unauthenticated(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer "
            "YOUR_KEY).",
            code="missing_api_key",
        )
    else:
        failure = Unauthenticated(
            "Incorrect or revoked API key provided. Make a key with the embeddings "
            "permission in the admin, or with manage.py create_api_key NAME "
            "--permission embeddings."
        )
    return _error_response(failure)


@v1.exception_handler(Http404)
def not_found(request: HttpRequest, error: Exception) -> HttpResponse:
    return _error_response(NotFound(f"Invalid URL ({request.method} {request.path})"))


@v1.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, error: Exception) -> HttpResponse:
    return _error_response(
        TooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
            "bytes (DATA_UPLOAD_MAX_MEMORY_SIZE): send fewer inputs per request."
        )
    )


@v1.exception_handler(EncoderUnavailable)
def unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
    return _error_response(Unavailable(f"The model is unavailable: {error}"))


@v1.exception_handler(OperationalError)
@v1.exception_handler(InterfaceError)
def database_away(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.warning("/v1: the database is away: %s", error)
    return _error_response(
        Unavailable("The database is not answering; try again in a moment.")
    )


@v1.exception_handler(Exception)
def server_error(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.exception("/v1 failed: %s %s", request.method, request.path)
    failure = OpenAIError("The server had an error while processing your request.")
    failure.status, failure.type = 500, "server_error"
    return _error_response(failure)


FIELD_MESSAGES = {
    "model": "you must provide a model parameter (GET /v1/models lists them)",
    "encoding_format": "encoding_format must be 'float' or 'base64'",
    "dimensions": "dimensions must be an integer",
    "user": "user must be a string",
    "truncate": "truncate must be true or false",
    "input": "you must provide an input parameter",
}


def _validation_message(errors: list[dict[str, Any]]) -> InvalidRequest:
    """The first problem of a body that is not OpenAI's shape, named as OpenAI
    names it."""
    loc = [str(part) for part in errors[0].get("loc", ()) if part != "body"]
    field = loc[0] if loc else ""
    if field not in FIELD_MESSAGES:
        return InvalidRequest(
            "The body must be a JSON object with input and model "
            f"({json.dumps(errors[0].get('msg', ''))})."
        )
    return InvalidRequest(f"Invalid request: {FIELD_MESSAGES[field]}.", param=field)
