"""The database away is a 503 with a page that says so, never a 500 and a trace.

Django closes a connection that errored at the end of the request, and checks a
kept one before the next (``conn_health_checks``): when the database is back, the
next request simply works, with no restart of anything.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)
DATABASE_AWAY = (OperationalError, InterfaceError)
MESSAGE = "The database is not answering; try again in a moment."


class DatabaseUnavailable:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_AWAY):
            return None
        logger.warning("%s %s: %s", request.method, request.path, exception)
        response = render(request, "503.html", {"message": MESSAGE}, status=503)
        response["Retry-After"] = "5"
        return response
