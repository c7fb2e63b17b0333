"""Who may read which collections.

A private collection is read only by signed-in users with the ``search_private``
permission and by API keys of that collection (or of every collection): it is
never in an anonymous search, its suggestions, similar items or the analytics
shown to others. A search names what its caller may read with an ``Access``.
"""

from dataclasses import dataclass
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

from faq.exceptions import Unauthorized
from faq.models import ApiKey, Collection
from faq.offline import went_away


@dataclass(frozen=True)
class Access:
    private: frozenset[int] | None = frozenset()  # private ones it reads; None: all

    def reads(self, collection: Collection) -> bool:
        return (
            not collection.private
            or self.private is None
            or collection.pk in self.private
        )

    @property
    def public_only(self) -> bool:
        return self.private is not None and not self.private


PUBLIC = Access()
EVERY = Access(None)
PERMISSION = "faq.search_private"


def user_access(user: Any) -> Access:
    return EVERY if user.is_active and user.has_perm(PERMISSION) else PUBLIC


def key_access(key: ApiKey | None) -> Access:
    """A content key reads its collection (a key of every collection: all); an
    embeddings key, and no key, the public ones."""
    if key is None or key.permission == ApiKey.Permission.EMBEDDINGS:
        return PUBLIC
    if key.collection_id is None:
        return EVERY
    return Access(frozenset({key.collection_id}))


def request_key(request: HttpRequest) -> ApiKey | None:
    """The API key a public endpoint was called with, if any (``Authorization:
    Bearer``): none reads public collections; a wrong one is refused, not
    silently read as none. While the database cannot be reached, none."""
    from faq.auth import api_key_find

    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    try:
        key = api_key_find(token.strip()) if scheme.lower() == "bearer" else None
    except (OperationalError, InterfaceError) as error:
        # The database away (a web host serving from its copy): no key can be
        # checked, and the request reads what anyone may.
        went_away(error)
        return None
    if key is None:
        raise Unauthorized("The API key is not valid (or has been revoked).")
    return key
