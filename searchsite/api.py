"""The one NinjaAPI: routers from the apps, domain errors mapped to HTTP here."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status

from faq.api import content, router
from faq.exceptions import ApplicationError
from searchsite.health import health_report

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


class HealthOut(Schema):
    status: str
    database: str
    broker: str
    model: str
    dimension: int
    index: dict[str, Any]
    chunks: dict[str, int]


@api.get("/health", response={200: HealthOut, 503: HealthOut}, tags=["health"])
def health(request: HttpRequest) -> Status[dict[str, Any]]:
    report = health_report()
    return Status(200 if report["status"] == "ok" else 503, report)


api.add_router("", router)
api.add_router("", content)
