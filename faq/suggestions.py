"""Questions to suggest as a visitor types: what others asked and found an answer
to, then the collection's own FAQ questions that contain what was typed."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils import timezone

from faq.access import PUBLIC
from faq.models import Collection, Faq, SearchLog
from faq.search import collections_readable

MIN_LENGTH = 2  # characters typed before anything is suggested
RECENT_DAYS = 30  # the searches popular queries are counted over


@dataclass(frozen=True)
class Suggestion:
    text: str
    source: str  # "query": others searched it and got a confident answer; "question"


def suggestions(
    q: str, *, collection: str | None = None, k: int = 8
) -> list[Suggestion]:
    """Up to ``k`` suggestions for the text typed so far, the most asked first."""
    typed = " ".join(q.split())
    if len(typed) < MIN_LENGTH:
        return []
    collections = collections_readable(collection, PUBLIC)  # shown to anyone
    popular = _popular(typed, collections, k, every=not collection)
    found = [Suggestion(text, "query") for text in popular]
    found += [
        Suggestion(text, "question") for text in _questions(typed, collections, k)
    ]
    seen: set[str] = set()
    unique = []
    for suggestion in found:
        if suggestion.text.lower() not in seen:
            seen.add(suggestion.text.lower())
            unique.append(suggestion)
    return unique[:k]


def _popular(
    typed: str, collections: list[Collection], k: int, *, every: bool
) -> list[str]:
    """Queries of the search page that start with ``typed`` and found a confident
    answer, lowercased, by how often they were asked in the last ``RECENT_DAYS``;
    searches of every collection count when every collection is searched (not
    those that read private collections: what those found stays theirs)."""
    since = timezone.now() - timedelta(days=min(RECENT_DAYS, settings.SEARCH_LOG_DAYS))
    where = Q(collection__in=collections)
    if every:
        where |= Q(collection=None)
    logs = SearchLog.objects.filter(
        where,
        created_at__gte=since,
        query__istartswith=typed,
        source=SearchLog.Source.PAGE,
        confident=True,
        private=False,
    )
    rows = (
        logs.annotate(lowered=Lower("query"))
        .values("lowered")
        .annotate(asked=Count("id"))
        .order_by("-asked", "lowered")[:k]
    )
    return [row["lowered"] for row in rows]


def _questions(typed: str, collections: list[Collection], k: int) -> list[str]:
    """Published FAQ questions that contain ``typed``, the shortest first."""
    questions = Faq.objects.filter(
        collection__in=collections, published=True, question__icontains=typed
    ).values_list("question", flat=True)
    return sorted(set(questions[: k * 4]), key=lambda text: (len(text), text))[:k]
