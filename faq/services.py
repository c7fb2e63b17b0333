"""Writes to help content. Each call is one transaction; embedding follows on commit."""

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from faq.exceptions import ApplicationError, Conflict, TooLarge
from faq.importers import ImportReport, RowError, import_rows, parse_row
from faq.models import ITEMS, ApiKey, Collection, Item, collection_of


def collection_get_or_create(*, slug: str, name: str = "") -> Collection:
    collection, _ = Collection.objects.get_or_create(
        slug=slug, defaults={"name": name or slug.replace("-", " ").title()}
    )
    return collection


def collection_create(
    *, slug: str, name: str, description: str = "", contact_url: str = ""
) -> Collection:
    if Collection.objects.filter(slug=slug).exists():
        raise Conflict(f"A collection {slug!r} exists already.")
    return Collection.objects.create(
        slug=slug, name=name, description=description, contact_url=contact_url
    )


@transaction.atomic
def item_create(*, collection: Collection, kind: str, data: dict[str, Any]) -> Item:
    item = ITEMS[kind](collection=collection, **data)
    _save_valid(item)
    return item


@transaction.atomic
def item_update(*, item: Item, data: dict[str, Any]) -> Item:
    for field, value in data.items():
        setattr(item, field, value)
    _save_valid(item)
    return item


@transaction.atomic
def item_delete(*, item: Item) -> None:
    item.delete()


def items_bulk_upsert(
    *, collection: Collection, items: list[dict[str, Any]], skip_invalid: bool = False
) -> ImportReport:
    """The content API's bulk write: each item checked as an import row is."""
    if len(items) > settings.BULK_MAX_ITEMS:
        raise TooLarge(f"At most {settings.BULK_MAX_ITEMS} items per request.")
    rows, errors = [], []
    for number, item in enumerate(items, start=1):
        try:
            rows.append(parse_row(number, item, source="items"))
        except ValueError as error:
            errors.append(RowError(number, str(error), "items"))
    return import_rows(
        rows, collection=collection, errors=errors, skip_invalid=skip_invalid
    )


def _save_valid(item: Item) -> None:
    """Save a checked item: a field that is off is a 400, a clash with another
    item (an external id taken) a 409."""
    try:
        item.full_clean()
    except ValidationError as error:
        fields = error.message_dict
        message = "; ".join(f"{f}: {' '.join(m)}" for f, m in fields.items())
        if set(fields) == {NON_FIELD_ERRORS}:
            raise Conflict(message.removeprefix(f"{NON_FIELD_ERRORS}: ")) from None
        raise ApplicationError(message) from None
    item.save()


def api_key_create(
    *, name: str, permission: str, collection: Collection | None = None
) -> tuple[ApiKey, str]:
    """Make a key; return it with the only copy of its secret."""
    secret = "sk-" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=secret[:12],
        key_hash=api_key_hash(secret),
        collection=collection,
        permission=permission,
    )
    return key, secret


def api_key_hash(secret: str) -> str:
    # The secret has 256 random bits: a fast hash cannot be brute-forced back.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_record_usage(*, key_id: int, tokens: int) -> None:
    """Count one /v1/embeddings request on its key, in one UPDATE: concurrent
    requests add up instead of overwriting each other."""
    ApiKey.objects.filter(pk=key_id).update(
        requests_count=F("requests_count") + 1,
        tokens_used=F("tokens_used") + tokens,
        last_used_at=timezone.now(),
    )


def collection_record_model(*, partition: str, model: str, dimension: int) -> None:
    """Record which model a collection's vectors came from (one UPDATE, a no-op
    when it is unchanged); the embeddings app has already refused mixing."""
    if (collection := collection_of(partition)) is None:
        return
    Collection.objects.filter(pk=collection).exclude(
        embedding_model=model, embedding_dimension=dimension
    ).update(embedding_model=model, embedding_dimension=dimension)


def on_partition_embedded(
    sender: Any, *, partition: str, model: str, dimension: int, **_: Any
) -> None:
    collection_record_model(partition=partition, model=model, dimension=dimension)
