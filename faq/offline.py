"""Searches answered from this web host's own copy while the database is away.

A web host's follower of the change feed (``embeddings.replica``) keeps, beside
the indexes, a copy of what a page of results shows: every collection, the
published items of each (documents without their bodies) and the field and text
of every chunk, in one SQLite file (``INDEX_DIR/content.sqlite3``), changed with
the same feed entries as the indexes (the ``replica_applied`` signal). When a
search cannot reach the database it is answered from that copy and the host's
indexes, and the database is tried again ``OFFLINE_RETRY_SECONDS`` later, not on
every request. A change to an item that leaves its chunks as they are (its
category) reaches the copy at the follower's next full check
(``RECONCILE_INTERVAL``). Only a host that follows the feed (``INDEX_FOLLOW``)
keeps one.
"""

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core import serializers
from django.db import InterfaceError, OperationalError

from embeddings.index import store
from embeddings.models import Chunk
from embeddings.selectors import chunks_shown
from faq.exceptions import NotFound
from faq.models import ITEMS, Collection, Document, Item, collection_of
from faq.selectors import categories_used, collections_searched, items_published

logger = logging.getLogger(__name__)
FILE = "content.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (pk INTEGER PRIMARY KEY, slug TEXT, row TEXT);
CREATE TABLE IF NOT EXISTS items (
    label TEXT, pk INTEGER, partition TEXT, category TEXT, row TEXT,
    PRIMARY KEY (label, pk));
CREATE INDEX IF NOT EXISTS items_partition ON items (partition);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, partition TEXT, label TEXT, source_id INTEGER,
    field TEXT, text TEXT);
CREATE INDEX IF NOT EXISTS chunks_partition ON chunks (partition);
"""
LABELS = {model._meta.label_lower: model for model in ITEMS.values()}


def path() -> Path:
    return store.index_dir() / FILE


@contextlib.contextmanager
def _copy(*, write: bool = False) -> Iterator[sqlite3.Connection]:
    """The copy, in one transaction when writing (readers see it whole)."""
    path().parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path(), timeout=10)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if write:
            db.executescript(SCHEMA)
            with db:
                yield db
        else:
            yield db
    finally:
        db.close()


# --- kept current by the follower -----------------------------------------------------


def copy_update(partition: str, chunk_ids: set[int] | None) -> None:
    """Bring the copy of the partition's chunks (those, or with None all of them)
    and of their items in step with the database, and every collection."""
    if collection_of(partition) is None:
        return
    chunks = Chunk.objects.filter(partition=partition)
    if chunk_ids is not None:
        chunks = chunks.filter(pk__in=chunk_ids)
    rows = list(chunks.values_list("pk", "source_type", "source_id", "field", "text"))
    with _copy(write=True) as db:
        if chunk_ids is None:
            db.execute("DELETE FROM chunks WHERE partition = ?", [partition])
            sources = None
        else:
            sources = set()
            for ids in _batches(sorted(chunk_ids)):
                marks = ", ".join("?" * len(ids))
                sources |= set(
                    db.execute(
                        f"SELECT label, source_id FROM chunks WHERE id IN ({marks})",
                        ids,
                    )
                )
                db.execute(f"DELETE FROM chunks WHERE id IN ({marks})", ids)
            sources |= {(label, source_id) for _, label, source_id, _, _ in rows}
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            [(pk, partition, *rest) for pk, *rest in rows],
        )
        _items_copy(db, partition, sources)
        _collections_copy(db)


def _items_copy(
    db: sqlite3.Connection, partition: str, sources: set[tuple[str, int]] | None
) -> None:
    """The published items of the partition (a collection's) among ``sources``;
    with None, all of them in place of those copied."""
    collection = collection_of(partition)
    assert collection is not None  # the callers copy collections' partitions only
    if sources is None:
        db.execute("DELETE FROM items WHERE partition = ?", [partition])
    for label, model in LABELS.items():
        items = model._default_manager.filter(collection_id=collection, published=True)
        if sources is not None:
            pks = [pk for kind, pk in sources if kind == label]
            if not pks:
                continue
            db.executemany(
                "DELETE FROM items WHERE label = ? AND pk = ?",
                [(label, pk) for pk in pks],
            )
            items = items.filter(pk__in=pks)
        if model is Document:  # a body can be a book, and results never show it
            items = cast(Any, items).defer("body")
        fields = [f.name for f in model._meta.concrete_fields if f.name != "body"]
        db.executemany(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)",
            [
                (label, item.pk, partition, item.category, _row(item, fields))
                for item in items
            ],
        )


def _collections_copy(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM collections")
    db.executemany(
        "INSERT INTO collections VALUES (?, ?, ?)",
        [(c.pk, c.slug, _row(c)) for c in Collection.objects.all()],
    )


def copy_check(partitions: list[str]) -> None:
    """The follower's full check: each partition's chunks that the copy lacks or
    holds too many of (by id), every item and every collection again (what
    changed without touching a chunk); partitions no longer stored forgotten."""
    with _copy(write=True) as db:
        kept = set(partitions)
        for (partition,) in list(db.execute("SELECT DISTINCT partition FROM chunks")):
            if partition not in kept:
                db.execute("DELETE FROM chunks WHERE partition = ?", [partition])
                db.execute("DELETE FROM items WHERE partition = ?", [partition])
        _collections_copy(db)
    for partition in partitions:
        if collection_of(partition) is None:
            continue
        with _copy(write=True) as db:
            copied = {
                pk
                for (pk,) in db.execute(
                    "SELECT id FROM chunks WHERE partition = ?", [partition]
                )
            }
        stored = set(
            Chunk.objects.filter(partition=partition).values_list("pk", flat=True)
        )
        if stored ^ copied:  # all of it again when the copy has none, or far off
            differ = stored ^ copied
            whole = not copied or len(differ) > len(stored) // 2
            copy_update(partition, None if whole else differ)
        with _copy(write=True) as db:
            _items_copy(db, partition, None)


def on_replica_applied(
    sender: Any, *, partition: str, chunk_ids: set[int] | None, **_: Any
) -> None:
    try:
        copy_update(partition, chunk_ids)
    except (sqlite3.Error, OSError) as error:  # the indexes went on: so does this
        logger.error("offline copy of %s not updated: %s", partition, error)


def on_replica_checked(sender: Any, *, partitions: list[str], **_: Any) -> None:
    try:
        copy_check(partitions)
    except (sqlite3.Error, OSError) as error:
        logger.error("offline copy not checked: %s", error)


def _batches(ids: list[int], size: int = 900) -> Iterator[list[int]]:
    """Ids a statement at a time: SQLite takes a bounded number of parameters."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _row(instance: Any, fields: list[str] | None = None) -> str:
    return serializers.serialize("json", [instance], fields=fields)


def _instance(row: str) -> Any:
    return next(iter(serializers.deserialize("json", row))).object


# --- read when the database is away ---------------------------------------------------

T = TypeVar("T")
_away_until = 0.0


class Content:
    """What a search reads of the content besides the indexes: the database's;
    ``Copy`` reads this host's copy of it instead."""

    def collections(self, slug: str | None) -> list[Collection]:
        return collections_searched(slug)

    def categories(self, collections: list[Collection]) -> list[str]:
        return categories_used(collections)

    def items(
        self,
        model: type[Item],
        pks: list[int],
        *,
        category: str | None = None,
        deferred: tuple[str, ...] = (),
    ) -> list[Item]:
        return items_published(model, pks, category=category, deferred=deferred)

    def chunks_shown(
        self, chunk_ids: list[int], *, text: bool
    ) -> dict[int, tuple[str, str]]:
        return chunks_shown(chunk_ids, text=text)


DATABASE = Content()


def read(reading: Callable[[Content], T]) -> T:
    """``reading`` of the database; of this host's copy when the database cannot
    be reached and the host keeps one."""
    copy = Copy() if available() else None
    if copy is not None and database_away():
        return reading(copy)
    try:
        return reading(DATABASE)
    except (OperationalError, InterfaceError) as error:
        if copy is None:
            raise
        went_away(error)
        return reading(copy)


def database_away() -> bool:
    """Whether a read failed to reach the database within the last
    ``OFFLINE_RETRY_SECONDS`` (reads then go straight to the copy)."""
    return time.monotonic() < _away_until


def went_away(error: Exception) -> None:
    global _away_until
    if not database_away():
        logger.warning("searches served from this host's copy: %s", error)
    _away_until = time.monotonic() + settings.OFFLINE_RETRY_SECONDS


def available() -> bool:
    return bool(settings.INDEX_FOLLOW) and path().exists()


class Copy(Content):
    """What a search reads of the content, from this host's copy."""

    def collections(self, slug: str | None) -> list[Collection]:
        with _copy() as db:
            if slug:
                rows = list(
                    db.execute("SELECT row FROM collections WHERE slug = ?", [slug])
                )
                if not rows:
                    raise NotFound(f"There is no collection {slug!r}.")
            else:
                rows = list(db.execute("SELECT row FROM collections"))
        return sorted((_instance(row) for (row,) in rows), key=lambda c: c.name)

    def categories(self, collections: list[Collection]) -> list[str]:
        partitions = [c.partition for c in collections]
        marks = ", ".join("?" * len(partitions))
        with _copy() as db:
            rows = db.execute(
                "SELECT DISTINCT category FROM items WHERE category != '' "
                f"AND partition IN ({marks})",
                partitions,
            )
            return sorted(category for (category,) in rows)

    def items(
        self,
        model: type[Item],
        pks: list[int],
        *,
        category: str | None = None,
        deferred: tuple[str, ...] = (),
    ) -> list[Item]:
        label = model._meta.label_lower
        marks = ", ".join("?" * len(pks))
        sql = f"SELECT row FROM items WHERE label = ? AND pk IN ({marks})"
        params: list[Any] = [label, *pks]
        if category:
            sql += " AND category = ?"
            params.append(category)
        with _copy() as db:
            return [_instance(row) for (row,) in db.execute(sql, params)]

    def chunks_shown(
        self, chunk_ids: list[int], *, text: bool
    ) -> dict[int, tuple[str, str]]:
        if not chunk_ids:
            return {}
        marks = ", ".join("?" * len(chunk_ids))
        with _copy() as db:
            rows = db.execute(
                f"SELECT id, field, text FROM chunks WHERE id IN ({marks})", chunk_ids
            )
            return {pk: (field, body if text else "") for pk, field, body in rows}
