"""The search log: what people searched for (on the page, and programs through
the API), which answers they said helped, and which results they opened; for
topics and analytics (``faq.analytics``).

A search never waits on the log, nor a vote or a click: ``search_log_record``,
``feedback_record`` and ``click_record`` hand the entry to a writer thread of the
process (a bounded queue: under a flood the excess is dropped and counted, never
the request), which writes it on its own connection. On SQLite a writer holding
the lock (a worker storing vectors) delays the log, not the page. A vote or a
click names its search by the token the results were shown with; one whose
search is not written yet (logged by another process) waits for it a little.
"""

import atexit
import contextlib
import logging
import os
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Subquery
from django.utils import timezone
from prometheus_client import Counter

from faq import offline
from faq.models import ITEMS, ApiKey, Click, Collection, Feedback, SearchLog
from faq.search import SearchResponse

logger = logging.getLogger(__name__)

PRUNE_EVERY = 100  # log rows between prunes of rows past SEARCH_LOG_DAYS
REFINE_SECONDS = 120  # a query typed on from another this recent replaces its row
TOKEN_BYTES = 12  # a search's token: 16 URL-safe characters
TOKEN = re.compile(r"[A-Za-z0-9_-]{16}")
QUEUE_SIZE = 10_000  # entries waiting to be written, at most
WRITE_TRIES = 3
BATCH_SECONDS = 0.2  # the writer gathers entries this long, then writes them
BATCH_SIZE = 500
DROPPED = Counter(
    "searchsite_search_log_dropped_total",
    "Search log entries dropped: the writer's queue full, or the database refusing.",
)


@dataclass(frozen=True)
class Entry:
    token: str
    query: str
    mode: str
    results: int
    top_score: float | None
    confident: bool | None  # None: a keyword search without cosines
    collection_slug: str | None
    collection_id: int | None  # known when a result says it
    previous: str  # the query this tab searched last, in the same collection
    source: str = SearchLog.Source.PAGE
    api_key_id: int | None = None  # an API search's key
    private: bool = False  # it read private collections too

    @property
    def refining(self) -> bool:
        """Does it extend or trim the query this tab searched just before?"""
        return bool(self.previous) and _refines(self.previous, self.query)

    def write(self) -> None:
        search_log_write(self)


@dataclass(frozen=True)
class Searches:
    """New searches, written in one insert."""

    entries: list[Entry]

    @property
    def count(self) -> int:
        return len(self.entries)

    def write(self) -> None:
        SearchLog.objects.bulk_create(_row(entry) for entry in self.entries)
        _pruned(len(self.entries))


def search_log_record(
    *,
    found: SearchResponse,
    previous_url: str = "",
    shown: str = "",
    api_key: ApiKey | None = None,
    api: bool = False,
) -> str:
    """Log a query the search page (or with ``api`` the JSON API) answered: one
    insert, or one update when it is the query before it typed on. Returns the
    token that votes and clicks on its results name it by ("" when not logged).

    Search-as-you-type asks at every pause in typing, so "how do" and "how do I
    export" would both be logged; ``previous_url`` (htmx's HX-Current-URL, whose
    ``q`` is what this tab searched last) tells when the new query extends or trims
    the last one, and then that row is rewritten instead of a new one added. The
    same query again in the same tab (a filter changed, Enter after typing, the
    next page) is not logged twice: it keeps ``shown``, the token of the results
    the tab shows (the form sends it back).
    """
    if settings.SEARCH_LOG_DAYS <= 0 or offline.database_away():
        return ""  # off, or answered from this host's copy: nowhere to write it
    previous = _previous_query(previous_url, collection=found.query.collection)
    if previous.lower() == found.query.q.lower() and TOKEN.fullmatch(shown):
        return shown
    entry = Entry(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        query=found.query.q[: SearchLog._meta.get_field("query").max_length],
        mode=found.query.mode,
        results=found.total,
        top_score=max(
            (r.cosine for r in found.results if r.cosine is not None), default=None
        ),
        confident=found.confident,
        collection_slug=found.query.collection,
        collection_id=(
            found.results[0].item.collection_id
            if found.query.collection and found.results
            else None
        ),
        previous="" if api else previous,  # a program's queries: each its own
        source=SearchLog.Source.API if api else SearchLog.Source.PAGE,
        api_key_id=api_key.pk if api_key else None,
        private=found.private,
    )
    _put(entry)
    return entry.token


def _put(entry: "Entry | Vote | Opened") -> None:
    if settings.SEARCH_LOG_BACKGROUND:
        writer.put(entry)
        return
    with contextlib.suppress(LookupError):  # a vote for a search never logged
        entry.write()


def search_log_write(entry: Entry) -> None:
    """Write one search: a new row, or the row of the query it refines."""
    if entry.refining:
        recent = SearchLog.objects.filter(
            query=entry.previous,
            created_at__gte=timezone.now() - timedelta(seconds=REFINE_SECONDS),
            feedback__isnull=True,  # what a vote was for stays as it was
        ).order_by("-pk")
        last = Subquery(recent.values("pk")[:1])
        if SearchLog.objects.filter(pk__in=last).update(**_fields(entry)):
            return
    _row(entry).save()
    _pruned(1)


def _fields(entry: Entry) -> dict[str, Any]:
    """What a search's row says of it (its refinement rewrites them)."""
    return {
        "token": entry.token,
        "query": entry.query,
        "mode": entry.mode,
        "results": entry.results,
        "top_score": entry.top_score,
        "confident": entry.confident,
        "private": entry.private,
    }


def _row(entry: Entry) -> SearchLog:
    return SearchLog(
        collection_id=_collection_id(entry),
        source=entry.source,
        api_key_id=entry.api_key_id,
        **_fields(entry),
    )


_written = 0  # rows this process added since it last pruned


def _pruned(added: int) -> None:
    """Prune once every ``PRUNE_EVERY`` rows this process adds."""
    global _written
    _written += added
    if _written >= PRUNE_EVERY:
        _written = 0
        search_log_prune()


@dataclass(frozen=True)
class Shown:
    """A result as the visitor saw it: of which search, where, and what."""

    token: str
    position: int  # 1 for the first result
    kind: str
    item_id: int

    def search_id(self) -> int:
        """The search's row; LookupError while it is not written (yet)."""
        found = SearchLog.objects.filter(token=self.token).values_list("pk", flat=True)
        pk = found.order_by("-pk").first()
        if pk is None:
            raise LookupError(f"no search {self.token!r} (yet)")
        return pk


def shown_check(token: str, position: int, kind: str, item_id: int) -> Shown:
    """A result's reference as a form or the API posts it; ValueError if it
    cannot be one (what the page renders always is)."""
    if not TOKEN.fullmatch(token):
        raise ValueError("search: the token the results came with.")
    if not 1 <= position <= settings.SEARCH_MAX_OFFSET + settings.SEARCH_MAX_RESULTS:
        raise ValueError("position: the result's place, 1 for the first.")
    if kind not in ITEMS:
        raise ValueError(f"kind must be one of {', '.join(ITEMS)}.")
    if not 1 <= item_id < 2**63:
        raise ValueError("id: the result's id.")
    return Shown(token, position, kind, item_id)


@dataclass(frozen=True)
class Vote:
    shown: Shown
    helpful: bool
    reason: str = ""

    def write(self) -> None:
        Feedback.objects.update_or_create(
            search_id=self.shown.search_id(),
            kind=self.shown.kind,
            item_id=self.shown.item_id,
            defaults={
                "position": self.shown.position,
                "helpful": self.helpful,
                "reason": "" if self.helpful else self.reason,
            },
        )


@dataclass(frozen=True)
class Opened:
    shown: Shown

    def write(self) -> None:
        Click.objects.create(
            search_id=self.shown.search_id(),
            kind=self.shown.kind,
            item_id=self.shown.item_id,
            position=self.shown.position,
        )


def feedback_record(shown: Shown, *, helpful: bool, reason: str = "") -> None:
    """Record "Did this answer your question?" for a result (again: replaced)."""
    if reason and reason not in Feedback.Reason.values:
        raise ValueError(f"reason must be one of {', '.join(Feedback.Reason.values)}.")
    _put(Vote(shown, helpful, reason))


def click_record(shown: Shown) -> None:
    """Record that a result was opened."""
    _put(Opened(shown))


def search_log_prune() -> int:
    """Delete logged queries older than ``SEARCH_LOG_DAYS``; return how many.
    With logging off (0) nothing: what was kept stays until it is turned on."""
    if settings.SEARCH_LOG_DAYS <= 0:
        return 0
    since = timezone.now() - timedelta(days=settings.SEARCH_LOG_DAYS)
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
        self._queue: queue.Queue[Entry | Vote | Opened] = queue.Queue(
            maxsize=QUEUE_SIZE
        )
        self._pid = 0
        self._lock = threading.Lock()

    def put(self, entry: "Entry | Vote | Opened") -> None:
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
        """Write what came in the last ``BATCH_SECONDS`` at once: the searches in
        one insert, then each refinement, vote and click in order (a vote after
        the search it names). A vote or click whose search is not written yet is
        tried once more a second later (it may be in another process's queue),
        never waited for: fake ones must not hold the log up."""
        later: list[tuple[float, Entry | Vote | Opened]] = []
        while True:
            try:
                batch = [self._queue.get(timeout=1.0 if later else None)]
            except queue.Empty:
                batch = []
            time.sleep(BATCH_SECONDS)  # a burst gathers: one insert for many
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            due = [entry for at, entry in later if at <= time.monotonic()]
            later = [(at, entry) for at, entry in later if at > time.monotonic()]
            try:
                missing = self._write(batch)
                if dropped := self._write(due):
                    logger.info("%d votes or clicks for unknown searches", len(dropped))
                    DROPPED.inc(len(dropped))
                later += [(time.monotonic() + 1.0, entry) for entry in missing]
            finally:
                if self._queue.empty() and not later:
                    connection.close()  # idle: no connection held (nor a test's)
                for _ in batch:
                    self._queue.task_done()

    def _write(self, batch: "list[Entry | Vote | Opened]") -> "list[Vote | Opened]":
        """Write the batch; return the votes and clicks whose search was not found."""
        new: list[Entry] = []
        rest: list[Entry | Vote | Opened] = []
        for queued in batch:
            if isinstance(queued, Entry) and not queued.refining:
                new.append(queued)
            else:
                rest.append(queued)
        writes: list[Searches | Entry | Vote | Opened] = [Searches(new)] if new else []
        missing: list[Vote | Opened] = []
        for entry in writes + rest:
            try:
                self._try(entry)
            except LookupError:
                missing.append(cast(Vote | Opened, entry))
        return missing

    def _try(self, entry: "Searches | Entry | Vote | Opened") -> None:
        for attempt in range(WRITE_TRIES):
            close_old_connections()  # a connection the database dropped meanwhile
            try:
                entry.write()
                return
            except LookupError:
                raise
            except Exception:  # the log waits or gives up; no search ever does
                if attempt == WRITE_TRIES - 1:
                    logger.warning("search log entries dropped", exc_info=True)
                    DROPPED.inc(entry.count if isinstance(entry, Searches) else 1)
                else:
                    time.sleep(0.5 * 2**attempt)


writer = Writer()
atexit.register(writer.flush, 5.0)
