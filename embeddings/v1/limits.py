"""Rate limits over the shared cache: django-ratelimit's fixed windows, counted with
the cache's atomic increment (Redis when set), failing open when the cache is away
(a request is served unthrottled rather than refused for the cache's fault)."""

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)


def rate_usage(
    request: HttpRequest,
    *,
    group: str,
    rate: str,
    key: str | Callable[[str, HttpRequest], str] = "ip",
) -> dict[str, Any] | None:
    """Count this request in ``group``; its usage (``should_limit``, ``limit``,
    ``count``, ``time_left``), or None when there is no limit to apply."""
    if not rate:
        return None
    try:
        return get_usage(request, group=group, key=key, rate=rate, increment=True)
    except Exception as error:  # the cache backend's own errors (Redis away)
        logger.warning("rate limit %s not applied: %s", group, error)
        return None


def wait_seconds(usage: dict[str, Any] | None) -> int:
    """Seconds until the limit lifts; 0 when the request may go on."""
    if usage is None or not usage["should_limit"]:
        return 0
    return max(1, int(usage["time_left"]))
