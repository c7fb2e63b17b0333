"""API key authentication: the content API, and ``/v1/embeddings``.

Embedding needs a key with the ``embeddings`` permission: read and write keys
(content sync scripts) may not embed, and an embeddings key may not touch
content, so each can be handed out, metered and revoked on its own.
"""

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from embeddings.v1.errors import Forbidden
from faq.models import ApiKey
from faq.services import api_key_hash, api_key_record_usage


def api_key_find(token: str) -> ApiKey | None:
    """The live key whose secret is ``token``, or None."""
    key = ApiKey.objects.filter(prefix=token[:12], revoked=False).first()
    if key is None or not hmac.compare_digest(key.key_hash, api_key_hash(token)):
        return None
    return key


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer sk-...``; the key becomes ``request.auth``."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = api_key_find(token)
        if key is None:
            return None
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


def api_key(request: Any) -> ApiKey:
    key = request.auth
    assert isinstance(key, ApiKey)
    return key


@dataclass(frozen=True)
class EmbeddingsClient:
    """A key calling /v1 (``embeddings.v1.auth.Principal``)."""

    key_id: int
    prefix: str

    @property
    def rate_key(self) -> str:
        return f"api-key-{self.key_id}-{self.prefix}"

    def record_usage(self, *, tokens: int) -> None:
        api_key_record_usage(key_id=self.key_id, tokens=tokens)


class EmbeddingsKeyAuth:
    """``EMBEDDINGS_API_AUTH``: keys with the embeddings permission may embed."""

    def authenticate(self, token: str) -> EmbeddingsClient | None:
        key = api_key_find(token)
        if key is None:
            return None
        if key.permission != ApiKey.Permission.EMBEDDINGS:
            raise Forbidden(
                f"This API key has the {key.permission} permission; /v1 needs a "
                "key with the embeddings permission."
            )
        return EmbeddingsClient(key_id=key.pk, prefix=key.prefix)
