"""The one NinjaAPI: routers from the apps, domain errors mapped to HTTP here."""

import logging
from typing import Any, Literal

import orjson
from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import Throttled, ValidationError
from ninja.parser import Parser
from ninja.renderers import BaseRenderer
from ninja.responses import NinjaJSONEncoder
from pydantic_core import to_jsonable_python as jsonable

from embeddings.encoders import EncoderUnavailable
from faq import fields
from faq.api import content, router
from faq.exceptions import ApplicationError, TooManyRequests
from searchsite.health import health_report
from searchsite.middleware import MESSAGE as DATABASE_MESSAGE

logger = logging.getLogger(__name__)


class ObjectParser(Parser):
    """Bodies of this API are JSON objects: an array or a scalar is a 400 before
    any schema sees it."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        return data


class JSONRenderer(BaseRenderer):
    """JSON by orjson: a page of search results in 3 us, where the standard
    library's json takes 40; what orjson does not know (a lazy string, a Decimal)
    goes to ninja's own encoder."""

    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        return orjson.dumps(
            data, default=_ninja_encoder.default, option=orjson.OPT_NON_STR_KEYS
        )


_ninja_encoder = NinjaJSONEncoder()

api = NinjaAPI(
    parser=ObjectParser(),
    renderer=JSONRenderer(),
    title="Semantic search",
    version="1",
    description="Search help content by meaning, and keep it in sync from programs.",
)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = api.create_response(
        request, {"detail": error.message, **error.extra}, status=error.status
    )
    if isinstance(error, TooManyRequests):
        response["Retry-After"] = str(error.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    """422, as ninja answers, with a sentence a person can read beside the list."""
    problems = list(dict.fromkeys(f"{_where(e)}: {_said(e)}" for e in error.errors))
    detail = "The request does not match the API's schema: " + "; ".join(problems)
    body = {"detail": detail, "errors": jsonable(error.errors)}
    return api.create_response(request, body, status=422)


PATTERNS = {
    fields.NONBLANK: "must have a character that is not a space (and no NUL)",
    fields.NO_NUL: "must not contain a NUL character",
    fields.WEB_URL_OR_EMPTY: fields.URL_MESSAGE,
    fields.SLUG: "may hold only letters, digits, hyphens and underscores",
}


def _where(error: dict[str, Any]) -> str:
    """``body.texts.1``: where the value is, without the body parameter's name or
    pydantic's validator frames."""
    loc = [str(part) for part in error.get("loc", ())]
    if loc[:1] == ["body"]:
        del loc[1:2]
    return ".".join(part for part in loc if "[" not in part)


def _said(error: dict[str, Any]) -> str:
    pattern = (error.get("ctx") or {}).get("pattern")
    return (
        PATTERNS.get(pattern, str(error.get("msg", "")))
        if pattern
        else str(error.get("msg", ""))
    )


@api.exception_handler(TooManyFilesSent)
@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, error: Exception) -> HttpResponse:
    detail = (
        f"At most {settings.UPLOAD_MAX_FILES} files per request."
        if isinstance(error, TooManyFilesSent)
        else f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    )
    return api.create_response(request, {"detail": detail}, status=413)


@api.exception_handler(SuspiciousOperation)
@api.exception_handler(MultiPartParserError)
def unreadable(request: HttpRequest, error: Exception) -> HttpResponse:
    detail = "The request's body cannot be read as the content type it declares."
    return api.create_response(request, {"detail": detail}, status=400)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_away(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.warning("%s %s: %s", request.method, request.path, error)
    response = api.create_response(request, {"detail": DATABASE_MESSAGE}, status=503)
    response["Retry-After"] = "5"
    return response


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, error: Throttled) -> HttpResponse:
    wait = max(1, round(error.wait or 1))
    detail = f"Too many requests from your address; try again in {wait} s."
    response = api.create_response(request, {"detail": detail}, status=429)
    response["Retry-After"] = str(wait)
    return response


@api.exception_handler(EncoderUnavailable)
def encoder_unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
    logger.warning(
        "%s %s: the encoder is away: %s", request.method, request.path, error
    )
    detail = "The embedding model cannot answer right now; try again in a minute."
    return api.create_response(request, {"detail": detail}, status=503)


class ReplicaLag(Schema):
    position: int = Field(..., description="The last change feed entry applied here.")
    head: int = Field(..., description="The newest entry of the feed.")
    entries: int = Field(..., description="Entries this host has not applied yet.")
    seconds: float = Field(..., description="How long the oldest of them has waited.")
    gaps: int = Field(..., description="Ids skipped, looked for again at each poll.")


class Reembedding(Schema):
    partition: str
    model: str = Field(..., description="The model it is being re-embedded with.")
    left: int = Field(..., description="Chunks with no vector of that model yet.")


class IndexHealth(Schema):
    partitions: int
    vectors: int
    version: int
    damaged: list[str] = Field(
        ..., description="Partitions served as before while a worker rebuilds them."
    )
    replica: ReplicaLag | None = Field(
        None,
        description="This host's indexes against the change feed (INDEX_FOLLOW).",
    )
    reembedding: list[Reembedding] = Field(
        default_factory=list,
        description="Partitions being re-embedded (rebuild_index --reembed): searched "
        "with the vectors they have until every chunk has a new one.",
    )


class HealthOut(Schema):
    status: Literal["ok", "unavailable"]
    reasons: list[str] = Field(..., description="Why it is unavailable, if it is.")
    database: Literal["ok", "unavailable"]
    broker: Literal["ok", "unavailable"]
    worker: Literal["ok", "stalled", "unknown"]
    model: str
    dimension: int
    index: IndexHealth


class LiveOut(Schema):
    status: Literal["alive"]


def _ready(request: HttpRequest) -> Status[dict[str, Any]]:
    report = health_report()
    return Status(200 if report["status"] == "ok" else 503, report)


api.get("/health", response={200: HealthOut, 503: HealthOut}, tags=["health"])(_ready)
api.get(
    "/health/ready",
    response={200: HealthOut, 503: HealthOut},
    tags=["health"],
    operation_id="health_ready",
    summary="Ready: the database, broker, indexes and workers answer",
)(_ready)


@api.get("/health/live", response={200: LiveOut}, tags=["health"])
def health_live(request: HttpRequest) -> dict[str, str]:
    """The process answers (it touches nothing else: restart it if this fails)."""
    return {"status": "alive"}


api.add_router("", router)
api.add_router("", content)
