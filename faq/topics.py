"""Topics of help content and of what people search for (``faq.searchlog``).

A collection's FAQs are grouped by their stored question vectors (nothing is
embedded again); logged search queries are embedded with the site's encoder. Both
are cached: Ward clustering grows with the square of the count (1.5 s for 2,000
items, 10-19 s for 5,000 on two busy cores) and embedding queries costs more, more
than a page view should wait for each time.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Lower
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from embeddings.clustering import Topics, topics_find
from embeddings.encoders import EncoderUnavailable, get_encoder
from embeddings.models import Chunk, vectors_decode
from faq.exceptions import ApplicationError, TooLarge, Unavailable
from faq.models import Collection, Faq, SearchLog
from faq.posted import posted_check, posted_encode
from faq.selectors import question_chunks

SOURCES = ("faqs", "queries")
REPRESENTATIVES = 3


@dataclass(frozen=True)
class TopicMember:
    text: str
    count: int = 1  # searches of this query; 1 for a FAQ
    url: str = ""  # the FAQ's admin page
    unanswered: int = 0  # searches of this query without a confident answer


@dataclass(frozen=True)
class TopicSummary:
    size: int  # FAQs, or searches
    distinct: int  # FAQs, or distinct queries
    labels: list[str]
    representatives: list[TopicMember]
    unanswered: int = 0  # searches without a confident answer (queries only)


@dataclass(frozen=True)
class TopicReport:
    source: str  # faqs or queries
    topics: list[TopicSummary]  # largest first
    clustered: int  # items grouped (FAQs, or distinct queries)
    unclustered: int  # of those, in no topic
    available: int  # items there were before the cap (CLUSTER_MAX_ITEMS, _QUERIES)
    took_s: float
    computed_at: datetime = field(default_factory=timezone.now)


# --- posted texts (POST /api/clusters) ------------------------------------------


def texts_topics(
    *,
    texts: Sequence[str],
    threshold: float | None,
    min_size: int | None,
    budget: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> Topics:
    """Topics of posted texts, within the request limits of the settings."""
    topics_check(texts=texts)
    return topics_find(
        texts,
        posted_encode(texts, budget=budget, job="clusters", progress=progress),
        threshold=settings.CLUSTER_THRESHOLD if threshold is None else threshold,
        min_size=settings.CLUSTER_MIN_SIZE if min_size is None else min_size,
        representatives=REPRESENTATIVES,
    )


def topics_check(*, texts: Sequence[str]) -> None:
    limit = settings.CLUSTER_MAX_TEXTS
    if len(texts) > limit:
        raise TooLarge(f"At most {limit} texts per request; got {len(texts)}.")
    names = [f"texts[{i}]" for i in range(len(texts))]
    posted_check(texts, names=names, max_length=settings.CLUSTER_MAX_TEXT_LENGTH)


# --- a collection's FAQs --------------------------------------------------------


def collection_faq_topics(
    *, collection: Collection, refresh: bool = False
) -> TopicReport:
    """Topics of the collection's FAQ questions, from their stored vectors; cached
    until a question chunk is added or removed."""
    chunks = question_chunks().filter(
        partition=collection.partition, status=Chunk.Status.EMBEDDED
    )
    stamp = chunks.aggregate(
        last=Max("pk"), count=Count("pk"), faqs=Count("source_id", distinct=True)
    )
    key = _cache_key("faqs", collection.pk, stamp["last"], stamp["count"])
    report = None if refresh else cast(TopicReport | None, cache.get(key))
    if report is None:
        report = _faq_report(collection, chunks, available=stamp["faqs"])
        cache.set(key, report, settings.CLUSTER_CACHE_SECONDS)
    return report


def _faq_report(
    collection: Collection, chunks: QuerySet[Chunk], *, available: int
) -> TopicReport:
    started = time.perf_counter()
    vectors: dict[int, bytes] = {}
    # A long question can have several chunks: its first stands for it.
    for source_id, blob in chunks.order_by("source_id", "position").values_list(
        "source_id", "vector"
    ):
        if len(vectors) >= settings.CLUSTER_MAX_ITEMS and source_id not in vectors:
            break
        vectors.setdefault(source_id, cast(bytes, blob))
    questions = dict(
        Faq.objects.filter(collection=collection, pk__in=list(vectors)).values_list(
            "pk", "question"
        )
    )
    ids = [pk for pk in vectors if pk in questions]
    members = [
        TopicMember(questions[pk], url=reverse("admin:faq_faq_change", args=[pk]))
        for pk in ids
    ]
    matrix = vectors_decode([vectors[pk] for pk in ids])
    return _report("faqs", members, matrix, available=available, started=started)


# --- the queries people searched for ---------------------------------------------


def collection_query_topics(
    *, collection: Collection, days: int, refresh: bool = False
) -> TopicReport:
    """Topics of the queries searched in the last ``days`` in this collection or
    in all collections (the search page's default), the most frequent distinct
    queries first up to ``CLUSTER_MAX_QUERIES``; cached ``CLUSTER_CACHE_SECONDS``."""
    key = _cache_key("queries", collection.pk, days)
    report = None if refresh else cast(TopicReport | None, cache.get(key))
    if report is None:
        report = _query_report(collection, days)
        cache.set(key, report, settings.CLUSTER_CACHE_SECONDS)
    return report


def _query_report(collection: Collection, days: int) -> TopicReport:
    started = time.perf_counter()
    since = timezone.now() - timedelta(days=days)
    unanswered = Q(top_score__isnull=True) | Q(
        top_score__lt=collection.confidence_threshold
    )
    grouped = (
        SearchLog.objects.filter(created_at__gte=since)
        .filter(Q(collection=collection) | Q(collection__isnull=True))
        .annotate(text=Lower("query"))
        .values("text")
        .annotate(n=Count("pk"), unanswered=Count("pk", filter=unanswered))
        .order_by("-n", "text")
    )
    available = grouped.count()
    members = [
        TopicMember(row["text"], count=row["n"], unanswered=row["unanswered"])
        for row in grouped[: settings.CLUSTER_MAX_QUERIES]
    ]
    matrix = _encode([m.text for m in members])
    return _report("queries", members, matrix, available=available, started=started)


def queries_topics(members: list[TopicMember], *, available: int) -> TopicReport:
    """Topics of these queries (``faq.analytics``: the failed ones)."""
    started = time.perf_counter()
    matrix = _encode([m.text for m in members])
    return _report("queries", members, matrix, available=available, started=started)


def _encode(texts: list[str]) -> np.ndarray:
    try:
        return get_encoder().encode(texts)
    except EncoderUnavailable as error:
        raise Unavailable(f"The embedding model cannot answer now: {error}") from None


def _report(
    source: str,
    members: list[TopicMember],
    matrix: np.ndarray,
    *,
    available: int,
    started: float,
) -> TopicReport:
    found = topics_find(
        [m.text for m in members],
        matrix,
        threshold=settings.CLUSTER_THRESHOLD,
        min_size=settings.CLUSTER_MIN_SIZE,
        representatives=REPRESENTATIVES,
    )
    topics = [
        TopicSummary(
            size=sum(members[i].count for i in topic.members),
            distinct=topic.size,
            labels=topic.labels,
            representatives=[members[i] for i in topic.representatives],
            unanswered=sum(members[i].unanswered for i in topic.members),
        )
        for topic in found.topics
    ]
    topics.sort(key=lambda t: (-t.size, -t.distinct))
    return TopicReport(
        source=source,
        topics=topics,
        clustered=len(members),
        unclustered=len(found.unclustered),
        available=available,
        took_s=round(time.perf_counter() - started, 2),
    )


def _cache_key(*parts: object) -> str:
    tuning = (
        settings.CLUSTER_THRESHOLD,
        settings.CLUSTER_MIN_SIZE,
        settings.CLUSTER_MAX_ITEMS,
        settings.CLUSTER_MAX_QUERIES,
    )
    return "topics:" + ":".join(str(p) for p in (*parts, *tuning))


# --- the admin page ---------------------------------------------------------------


CHART_TOPICS = 20  # bars in the chart of topic sizes
CHART_BAR_WIDTH = 400  # pixels of the largest bar
PAGE_TOPICS = 100  # topics listed in full


def topics_page(*, collection: Collection, params: QueryDict) -> dict[str, object]:
    """What the admin's topics page shows for its query string: ``source`` (faqs
    or queries), ``days`` (queries' window) and ``refresh`` (skip the cache)."""
    source = params.get("source") or "faqs"
    if source not in SOURCES:
        raise ApplicationError(f"source must be one of {', '.join(SOURCES)}.")
    days = _days(params.get("days"))
    refresh = bool(params.get("refresh"))
    report = (
        collection_faq_topics(collection=collection, refresh=refresh)
        if source == "faqs"
        else collection_query_topics(collection=collection, days=days, refresh=refresh)
    )
    return {
        "source": source,
        "days": days,
        "report": report,
        "topics": report.topics[:PAGE_TOPICS],
        "more": max(0, len(report.topics) - PAGE_TOPICS),
        "chart": topics_chart(report.topics[:CHART_TOPICS]),
    }


def _days(value: str | None) -> int:
    if not value:
        return settings.CLUSTER_QUERY_DAYS
    if not value.isdigit() or not 1 <= int(value) <= 3650:
        raise ApplicationError("days must be a whole number from 1 to 3650.")
    return int(value)


def topics_chart(topics: list[TopicSummary]) -> dict[str, object]:
    """Bars of topic sizes for a server-rendered SVG (no script, no network)."""
    top = max((t.size for t in topics), default=1)
    bars = [
        {
            "y": 24 * row,
            "width": max(1, round(CHART_BAR_WIDTH * topic.size / top)),
            "label": ", ".join(topic.labels[:3]) or "(no keywords)",
            "size": topic.size,
        }
        for row, topic in enumerate(topics)
    ]
    return {"bars": bars, "height": 24 * len(bars), "bar_width": CHART_BAR_WIDTH}
