"""Per-client limits on what anonymous visitors may ask of the site.

A client is its address: ``TRUSTED_PROXY_COUNT`` entries from the end of
``X-Forwarded-For`` behind that many proxies, else the connection's own. Requests
are counted per client and group over the shared cache (``embeddings.v1.limits``);
model work per request is capped separately (``faq.budget``).
"""

import contextlib
import fcntl
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from ninja.throttling import BaseThrottle

from embeddings.v1.limits import rate_usage, wait_seconds
from faq.exceptions import TooManyRequests


def client_ip(request: HttpRequest) -> str:
    """The client's address (``RATELIMIT_IP_META_KEY``): proxies in front append
    to X-Forwarded-For, so the entry ``TRUSTED_PROXY_COUNT`` from its end is the
    last one no client could forge."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops > 0 and forwarded:
        entries = [entry.strip() for entry in forwarded.split(",")]
        return entries[-min(hops, len(entries))]
    return str(request.META.get("REMOTE_ADDR", ""))


def client_wait(request: HttpRequest, group: str, *, key: str = "ip") -> int:
    """Count the request against its client's ``RATE_<GROUP>``: seconds to wait
    when over it, else 0."""
    rate = getattr(settings, f"RATE_{group.upper()}")
    return wait_seconds(rate_usage(request, group=group, rate=rate, key=key))


def client_check(request: HttpRequest, group: str, *, what: str) -> None:
    """``client_wait``, raising ``TooManyRequests`` (429) past the rate."""
    if wait := client_wait(request, group):
        raise TooManyRequests(
            f"Too many {what} from your address; try again in {wait} s.",
            retry_after=wait,
        )


class ClientThrottle(BaseThrottle):
    """A django-ninja throttle over ``client_wait``: it runs before the body is read
    and answers 429 with Retry-After."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._waits = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        self._waits.seconds = client_wait(request, self.group)
        return not self._waits.seconds

    def wait(self) -> float | None:
        return float(getattr(self._waits, "seconds", 0)) or None


@contextlib.contextmanager
def host_slot(group: str) -> Iterator[None]:
    """One of this host's ``PUBLIC_ANALYSIS_SLOTS`` for the request, or 429 at once:
    however many clients ask, heavy anonymous requests occupy that many web
    workers at most, and the others keep serving searches. A slot is a file lock
    under ``VAR_DIR``, released by the kernel if its process dies."""
    directory = Path(settings.VAR_DIR) / "slots"
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(settings.PUBLIC_ANALYSIS_SLOTS):
        with open(directory / f"{group}-{number}.lock", "a") as slot:
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            try:
                yield
                return
            finally:
                fcntl.flock(slot, fcntl.LOCK_UN)
    raise TooManyRequests(
        "The site is answering as many requests like this as it can; try again "
        "in a second.",
        retry_after=1,
    )


def declared_length(request: HttpRequest) -> int:
    """The body's length as its headers declare it (0: none, or unreadable, and
    then the server reads no body at all)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_limit(setting: str, *, advice: str) -> Callable[..., Any]:
    """A ninja ``decorate_view``: 413 for a body longer than the ``setting``'s bytes,
    from its declared length, before a byte of it is read or parsed."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            size = declared_length(request)
            limit = getattr(settings, setting)
            if size > limit:
                detail = f"The body is {size} bytes, over {limit} ({setting}): {advice}"
                return JsonResponse({"detail": detail}, status=413)
            return view(request, *args, **kwargs)

        return limited

    return decorator


public_body = body_limit(
    "PUBLIC_MAX_BODY_BYTES",
    advice="send larger requests as a job with an API key (POST /api/jobs/...).",
)
upload_body = body_limit(
    "UPLOAD_MAX_REQUEST_BYTES", advice="upload fewer or smaller files at a time."
)


def too_many(request: HttpRequest, wait: int, what: str) -> HttpResponse:
    response = render(request, "429.html", {"wait": wait, "what": what}, status=429)
    response["Retry-After"] = str(wait)
    return response


def login_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The admin's sign-in, with sign-in attempts limited per client and per
    username (``RATE_LOGIN``, ``RATE_LOGIN_USER``): a password cannot be guessed
    at the speed of the network."""

    @wraps(view)
    def throttled(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            wait = client_wait(request, "login") or client_wait(
                request, "login_user", key="post:username"
            )
            if wait:
                return too_many(request, wait, "sign-in attempts")
        return view(request, *args, **kwargs)

    return throttled
