"""The search log: what people typed on the search page, for topics and analytics.

A search never waits on the log: ``search_log_record`` hands the entry to a writer
thread of the process (a bounded queue: under a flood the excess is dropped and
counted, never the search), which writes it on its own connection. On SQLite a
writer holding the lock (a worker storing vectors) delays the log, not the page.
"""

import atexit
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Subquery
from django.utils import timezone
from prometheus_client import Counter

from faq.models import Collection, SearchLog
from faq.search import SearchResponse

logger = logging.getLogger(__name__)

PRUNE_EVERY = 100  # log rows between prunes of rows past SEARCH_LOG_DAYS
REFINE_SECONDS = 120  # a query typed on from another this recent replaces its row
QUEUE_SIZE = 10_000  # entries waiting to be written, at most
WRITE_TRIES = 3
DROPPED = Counter(
    "searchsite_search_log_dropped_total",
    "Search log entries dropped: the writer's queue full, or the database refusing.",
)


@dataclass(frozen=True)
class Entry:
    query: str
    results: int
    top_score: float | None
    collection_slug: str | None
    collection_id: int | None  # known when a result says it
    previous: str  # the query this tab searched last, in the same collection


def search_log_record(*, found: SearchResponse, previous_url: str = "") -> None:
    """Log a query the search page answered: one insert, or one update when it is
    the query before it typed on.

    Search-as-you-type asks at every pause in typing, so "how do" and "how do I
    export" would both be logged; ``previous_url`` (htmx's HX-Current-URL, whose
    ``q`` is what this tab searched last) tells when the new query extends or trims
    the last one, and then that row is rewritten instead of a new one added. The
    same query again in the same tab (a filter changed, Enter after typing) is not
    logged twice.
    """
    if settings.SEARCH_LOG_DAYS <= 0:
        return
    previous = _previous_query(previous_url, collection=found.query.collection)
    if previous.lower() == found.query.q.lower():
        return
    entry = Entry(
        query=found.query.q[: SearchLog._meta.get_field("query").max_length],
        results=len(found.results),
        top_score=max((r.cosine for r in found.results), default=None),
        collection_slug=found.query.collection,
        collection_id=(
            found.results[0].item.collection_id
            if found.query.collection and found.results
            else None
        ),
        previous=previous,
    )
    if settings.SEARCH_LOG_BACKGROUND:
        writer.put(entry)
    else:
        search_log_write(entry)


def search_log_write(entry: Entry) -> None:
    fields = {
        "query": entry.query,
        "results": entry.results,
        "top_score": entry.top_score,
    }
    if entry.previous and _refines(entry.previous, entry.query):
        recent = SearchLog.objects.filter(
            query=entry.previous,
            created_at__gte=timezone.now() - timedelta(seconds=REFINE_SECONDS),
        ).order_by("-pk")
        last = Subquery(recent.values("pk")[:1])
        if SearchLog.objects.filter(pk__in=last).update(**fields):
            return
    log = SearchLog.objects.create(collection_id=_collection_id(entry), **fields)
    if log.pk % PRUNE_EVERY == 0:
        search_log_prune()


def search_log_prune() -> int:
    """Delete logged queries older than ``SEARCH_LOG_DAYS``; return how many."""
    since = timezone.now() - timedelta(days=max(settings.SEARCH_LOG_DAYS, 0))
    deleted, _ = SearchLog.objects.filter(created_at__lt=since).delete()
    return deleted


def _previous_query(url: str, *, collection: str | None) -> str:
    """The query in the page's address, if it searched the same collection."""
    params = parse_qs(urlsplit(url).query)
    if (params.get("collection", [""])[0] or None) != (collection or None):
        return ""
    return " ".join(params.get("q", [""])[0].split())


def _refines(previous: str, query: str) -> bool:
    before, now = previous.lower(), query.lower()
    return now.startswith(before) or before.startswith(now)


def _collection_id(entry: Entry) -> int | None:
    if not entry.collection_slug or entry.collection_id is not None:
        return entry.collection_id
    found = Collection.objects.filter(slug=entry.collection_slug)
    return found.values_list("pk", flat=True).first()


class Writer:
    """One thread per process writing queued entries in order; started on first
    use (so after a fork, in the process that uses it)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=QUEUE_SIZE)
        self._pid = 0
        self._lock = threading.Lock()

    def put(self, entry: Entry) -> None:
        self._start()
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            DROPPED.inc()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued entry is written; False if time ran out."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(maxsize=QUEUE_SIZE)  # not a parent's
                threading.Thread(
                    target=self._run, name="search-log", daemon=True
                ).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            try:
                self._write(entry)
            finally:
                self._queue.task_done()

    def _write(self, entry: Entry) -> None:
        for attempt in range(WRITE_TRIES):
            close_old_connections()  # a connection the database dropped meanwhile
            try:
                search_log_write(entry)
                return
            except Exception:  # the log waits or gives up; no search ever does
                if attempt == WRITE_TRIES - 1:
                    logger.warning("search log entry dropped", exc_info=True)
                    DROPPED.inc()
                else:
                    time.sleep(0.5 * 2**attempt)


writer = Writer()
atexit.register(writer.flush, 5.0)
