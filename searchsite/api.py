"""The one NinjaAPI: routers from the apps, domain errors mapped to HTTP here."""

import logging
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import Throttled

from embeddings.encoders import EncoderUnavailable
from faq.api import content, router
from faq.exceptions import ApplicationError
from searchsite.health import health_report

logger = logging.getLogger(__name__)
api = NinjaAPI(
    title="Semantic search",
    version="1",
    description="Search help content by meaning, and keep it in sync from programs.",
)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": error.message, **error.extra}, status=error.status
    )


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


class IndexHealth(Schema):
    partitions: int
    vectors: int
    version: int
    damaged: list[str] = Field(
        ..., description="Partitions served as before while a worker rebuilds them."
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
