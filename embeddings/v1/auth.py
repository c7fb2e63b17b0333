"""Who may call ``/v1``: decided outside ``embeddings``.

``embeddings`` knows nothing of API keys (they live in ``faq``), so the class
named by ``EMBEDDINGS_API_AUTH`` is loaded by its dotted path. Its
``authenticate(token)`` returns a ``Principal`` for a good key, ``None`` for an
unknown or revoked one, and raises ``Forbidden`` for a key that may not embed.
"""

from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string
from ninja.security import HttpBearer


class Principal(Protocol):
    """The caller of a request, on whom usage is recorded."""

    @property
    def rate_key(self) -> str:
        """Stable and unique per caller: the rate limit counts under it."""
        ...

    def record_usage(self, *, tokens: int) -> None:
        """Count one embeddings request of ``tokens`` tokens."""
        ...


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Principal | None: ...


class BearerAuth(HttpBearer):
    """``Authorization: Bearer <key>``; the principal becomes ``request.auth``."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        authenticator: Authenticator = import_string(settings.EMBEDDINGS_API_AUTH)()
        return authenticator.authenticate(token)


def principal(request: Any) -> Principal:
    found: Principal = request.auth
    return found
