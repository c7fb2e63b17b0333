"""API key authentication for the content API."""

import hmac
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from faq.models import ApiKey
from faq.services import api_key_hash


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer sk-...``; the key becomes ``request.auth``."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = ApiKey.objects.filter(prefix=token[:12], revoked=False).first()
        if key is None or not hmac.compare_digest(key.key_hash, api_key_hash(token)):
            return None
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


def api_key(request: Any) -> ApiKey:
    key = request.auth
    assert isinstance(key, ApiKey)
    return key
