"""What the search log says, for the admin's analytics page: how many searched,
how many found nothing or no confident answer, what they searched for, which
failed searches to write answers for, which answers visitors said did not help,
and how far down the results they clicked.

A scope is a collection (its searches, and searches of every collection, as the
search page searches by default) or every collection, over the last ``days``,
from the search page, the API or both. Searches that read private collections
are counted only for those allowed to search them.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Lower, TruncDate
from django.http import HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone

from faq.access import Access
from faq.exceptions import ApplicationError
from faq.exports import csv_cell
from faq.models import ApiKey, Click, Collection, Faq, Feedback, SearchLog
from faq.topics import TopicMember, TopicReport, queries_topics

SOURCES = ("", "page", "api")
POSITIONS = 10  # click-through is shown for the first page's places
TOP = 20  # rows of each table
EXPORTS = ("days", "queries", "failed", "helpfulness", "positions", "sources")


@dataclass(frozen=True)
class Scope:
    collection: Collection | None  # None: every collection the viewer may see
    days: int
    source: str  # "", "page" or "api"
    access: Access

    def searches(self) -> QuerySet[SearchLog]:
        since = timezone.now() - timedelta(days=self.days)
        logs = SearchLog.objects.filter(created_at__gte=since)
        if self.collection is not None:
            logs = logs.filter(Q(collection=self.collection) | Q(collection=None))
        if self.source:
            logs = logs.filter(source=self.source)
        if self.access.private is None:
            return logs
        hidden = Collection.objects.filter(private=True).exclude(
            pk__in=self.access.private
        )
        return logs.filter(private=False).exclude(collection__in=hidden)


class Shares:
    """The shares of searches with no result and with no confident answer."""

    searches: int
    no_result: int
    unconfident: int  # no confident answer, no result included

    @property
    def no_result_share(self) -> float:
        return self.no_result / self.searches if self.searches else 0.0

    @property
    def unconfident_share(self) -> float:
        return self.unconfident / self.searches if self.searches else 0.0


@dataclass(frozen=True)
class Day(Shares):
    day: date
    searches: int
    no_result: int
    unconfident: int


@dataclass(frozen=True)
class Query:
    text: str  # lowercased
    searches: int
    unconfident: int


@dataclass(frozen=True)
class FailedTopic:
    searches: int
    labels: list[str]
    queries: list[TopicMember]
    write_url: str  # a new FAQ, its question the topic's most central query


@dataclass(frozen=True)
class Helpfulness:
    faq_id: int
    question: str
    url: str
    yes: int
    no: int
    reasons: dict[str, int]

    @property
    def no_share(self) -> float:
        return self.no / (self.yes + self.no)


@dataclass(frozen=True)
class Position:
    position: int
    shown: int  # page searches that showed a result at this place
    clicked: int  # of those, searches whose result at this place was opened

    @property
    def rate(self) -> float:
        return self.clicked / self.shown if self.shown else 0.0


@dataclass(frozen=True)
class Source:
    label: str
    searches: int


@dataclass
class Report(Shares):
    scope: Scope
    searches: int
    no_result: int
    unconfident: int
    days: list[Day]
    queries: list[Query]
    failed: list[FailedTopic]
    failed_searches: int  # distinct failed queries' searches, grouped or not
    helpfulness: list[Helpfulness]
    votes: int
    helpful: int
    positions: list[Position]
    sources: list[Source]
    charts: dict[str, Any] = field(default_factory=dict)

    @property
    def helpful_share(self) -> float:
        return self.helpful / self.votes if self.votes else 0.0


def analytics(scope: Scope, *, refresh: bool = False) -> Report:
    logs = scope.searches()
    failed = Q(confident=False)
    totals = logs.aggregate(
        searches=Count("pk"),
        no_result=Count("pk", filter=Q(results=0)),
        unconfident=Count("pk", filter=failed),
    )
    report = Report(
        scope=scope,
        searches=totals["searches"],
        no_result=totals["no_result"],
        unconfident=totals["unconfident"],
        days=_days(scope, logs),
        queries=_queries(logs),
        failed=[],
        failed_searches=0,
        helpfulness=[],
        votes=0,
        helpful=0,
        positions=_positions(logs),
        sources=_sources(logs),
    )
    report.failed, report.failed_searches = _failed(scope, logs, refresh=refresh)
    votes = Feedback.objects.filter(search__in=logs)
    counted = votes.aggregate(
        votes=Count("pk"), helpful=Count("pk", filter=Q(helpful=True))
    )
    report.votes, report.helpful = counted["votes"], counted["helpful"]
    report.helpfulness = _helpfulness(votes)
    report.charts = _charts(report)
    return report


def _days(scope: Scope, logs: QuerySet[SearchLog]) -> list[Day]:
    """Every day of the period, a day without searches included (a chart's gaps
    are days, not missing points)."""
    rows = (
        logs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            n=Count("pk"),
            none=Count("pk", filter=Q(results=0)),
            unsure=Count("pk", filter=Q(confident=False)),
        )
    )
    by_day = {row["day"]: row for row in rows}
    today = timezone.localdate()
    days = []
    for back in range(scope.days - 1, -1, -1):
        day = today - timedelta(days=back)
        row = by_day.get(day, {"n": 0, "none": 0, "unsure": 0})
        days.append(Day(day, row["n"], row["none"], row["unsure"]))
    return days


def _queries(logs: QuerySet[SearchLog]) -> list[Query]:
    rows = (
        logs.annotate(text=Lower("query"))
        .values("text")
        .annotate(n=Count("pk"), unsure=Count("pk", filter=Q(confident=False)))
        .order_by("-n", "text")[:TOP]
    )
    return [Query(row["text"], row["n"], row["unsure"]) for row in rows]


def _failed(
    scope: Scope, logs: QuerySet[SearchLog], *, refresh: bool
) -> tuple[list[FailedTopic], int]:
    """The failed searches' queries grouped into topics, the most searched topic
    first, each with a link that opens a new FAQ asking its central query.
    Grouping embeds the queries: cached ``CLUSTER_CACHE_SECONDS``, until a search
    is logged or with ``refresh``."""
    rows = (
        logs.filter(confident=False)
        .annotate(text=Lower("query"))
        .values("text")
        .annotate(n=Count("pk"))
        .order_by("-n", "text")
    )
    members = [
        TopicMember(row["text"], count=row["n"], unanswered=row["n"])
        for row in rows[: settings.CLUSTER_MAX_QUERIES]
    ]
    searches = sum(m.count for m in members)
    if not members:
        return [], 0
    stamp = logs.aggregate(last=Max("pk"), n=Count("pk"))
    key = "analytics:failed:" + ":".join(
        str(part)
        for part in (
            scope.collection.pk if scope.collection else "",
            scope.days,
            scope.source,
            scope.access.private is None,
            stamp["last"],
            stamp["n"],
            settings.CLUSTER_THRESHOLD,
            settings.CLUSTER_MIN_SIZE,
        )
    )
    report = None if refresh else cast(TopicReport | None, cache.get(key))
    if report is None:
        report = queries_topics(members, available=rows.count())
        cache.set(key, report, settings.CLUSTER_CACHE_SECONDS)
    topics = [
        FailedTopic(
            searches=topic.size,
            labels=topic.labels,
            queries=topic.representatives,
            write_url=faq_write_url(topic.representatives[0].text, scope.collection),
        )
        for topic in report.topics[:TOP]
    ]
    return topics, searches


def faq_write_url(question: str, collection: Collection | None) -> str:
    """The admin's new FAQ form, its question (and collection) filled in."""
    fields = {"question": question[:1].upper() + question[1:]}
    if collection is not None:
        fields["collection"] = str(collection.pk)
    return f"{reverse('admin:faq_faq_add')}?{urlencode(fields)}"


def _helpfulness(votes: QuerySet[Feedback]) -> list[Helpfulness]:
    """The FAQs visitors said did not answer their question, the most "no"s
    first (then the larger share of "no"), with the reasons they gave."""
    rows = (
        votes.filter(kind="faq")
        .values("item_id")
        .annotate(
            yes=Count("pk", filter=Q(helpful=True)),
            no=Count("pk", filter=Q(helpful=False)),
        )
        .filter(no__gt=0)
    )
    ranked = sorted(rows, key=lambda r: (-r["no"], r["yes"], r["item_id"]))[:TOP]
    ids = [row["item_id"] for row in ranked]
    questions = dict(Faq.objects.filter(pk__in=ids).values_list("pk", "question"))
    reasons: dict[int, dict[str, int]] = {}
    for item_id, reason, n in (
        votes.filter(kind="faq", item_id__in=ids, helpful=False)
        .exclude(reason="")
        .values_list("item_id", "reason")
        .annotate(n=Count("pk"))
    ):
        reasons.setdefault(item_id, {})[reason] = n
    labels = dict(Feedback.Reason.choices)
    return [
        Helpfulness(
            faq_id=row["item_id"],
            question=questions.get(row["item_id"], f"(deleted FAQ {row['item_id']})"),
            url=reverse("admin:faq_faq_change", args=[row["item_id"]])
            if row["item_id"] in questions
            else "",
            yes=row["yes"],
            no=row["no"],
            reasons={
                labels[r]: n for r, n in sorted(reasons.get(row["item_id"], {}).items())
            },
        )
        for row in ranked
    ]


def _positions(logs: QuerySet[SearchLog]) -> list[Position]:
    """Click-through by place: of the page's searches that showed a result at a
    place, the share whose result there was opened."""
    page = logs.filter(source=SearchLog.Source.PAGE)
    shown = page.aggregate(
        **{
            str(p): Count("pk", filter=Q(results__gte=p))
            for p in range(1, POSITIONS + 1)
        }
    )
    clicked = dict(
        Click.objects.filter(search__in=page, position__lte=POSITIONS)
        .values("position")
        .annotate(n=Count("search", distinct=True))
        .values_list("position", "n")
    )
    return [
        Position(p, shown[str(p)], clicked.get(p, 0)) for p in range(1, POSITIONS + 1)
    ]


def _sources(logs: QuerySet[SearchLog]) -> list[Source]:
    """Searches by where they came from: the page, the API without a key, and
    each API key."""
    rows = logs.values("source", "api_key").annotate(n=Count("pk")).order_by("-n")
    names = dict(
        (key.pk, str(key))
        for key in ApiKey.objects.filter(
            pk__in=[r["api_key"] for r in rows if r["api_key"]]
        )
    )
    found = []
    for row in rows:
        if row["source"] == SearchLog.Source.PAGE:
            label = "Search page"
        elif row["api_key"]:
            label = f"API key {names.get(row['api_key'], row['api_key'])}"
        else:
            label = "API without a key"
        found.append(Source(label, row["n"]))
    return found


# --- charts: server-rendered SVG, no script ------------------------------------------

CHART_WIDTH = 720
CHART_HEIGHT = 160


def _charts(report: Report) -> dict[str, Any]:
    days = report.days
    step = CHART_WIDTH / max(len(days), 1)
    top = max((d.searches for d in days), default=0) or 1
    bars = [
        {
            "x": round(i * step, 1),
            "width": max(round(step * 0.8, 1), 1),
            "height": round(CHART_HEIGHT * d.searches / top, 1),
            "y": round(CHART_HEIGHT - CHART_HEIGHT * d.searches / top, 1),
            "day": d.day,
            "searches": d.searches,
        }
        for i, d in enumerate(days)
    ]

    def line(shares: Iterable[float]) -> str:
        return " ".join(
            f"{round(i * step + step * 0.4, 1)},{round(CHART_HEIGHT * (1 - s), 1)}"
            for i, s in enumerate(shares)
        )

    positions = report.positions
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "top": top,
        "no_result": line(d.no_result_share for d in days),
        "unconfident": line(d.unconfident_share for d in days),
        "positions": [
            {
                "x": round((p.position - 1) * CHART_WIDTH / POSITIONS, 1),
                "width": round(CHART_WIDTH / POSITIONS * 0.8, 1),
                "height": round(CHART_HEIGHT * p.rate, 1),
                "y": round(CHART_HEIGHT * (1 - p.rate), 1),
                "position": p.position,
                "rate": p.rate,
            }
            for p in positions
        ],
    }


# --- the page and its CSV -------------------------------------------------------------


def scope_from(params: QueryDict, *, access: Access) -> Scope:
    """The scope the page's query string asks for: ``collection`` (a pk, or none
    for every one), ``days`` (1 to 3650) and ``source``."""
    days = params.get("days") or "30"
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise ApplicationError("days must be a whole number from 1 to 3650.")
    source = params.get("source") or ""
    if source not in SOURCES:
        raise ApplicationError("source must be page, api or empty (both).")
    collection = None
    if pk := params.get("collection"):
        collection = next(
            (c for c in collections_shown(access) if str(c.pk) == pk), None
        )
        if collection is None:
            raise ApplicationError(f"There is no collection {pk!r}.")
    return Scope(collection, int(days), source, access)


def collections_shown(access: Access) -> list[Collection]:
    return [c for c in Collection.objects.order_by("name") if access.reads(c)]


def analytics_csv(report: Report, table: str) -> HttpResponse:
    """One of the page's tables as CSV (``EXPORTS``)."""
    if table not in EXPORTS:
        raise ApplicationError(f"export must be one of {', '.join(EXPORTS)}.")
    rows: list[list[object]]
    if table == "days":
        rows = [["day", "searches", "no_result", "no_confident_answer"]]
        rows += [[d.day, d.searches, d.no_result, d.unconfident] for d in report.days]
    elif table == "queries":
        rows = [["query", "searches", "no_confident_answer"]]
        rows += [[q.text, q.searches, q.unconfident] for q in report.queries]
    elif table == "failed":
        rows = [["topic", "searches", "keywords", "queries"]]
        rows += [
            [n, t.searches, " ".join(t.labels), " | ".join(q.text for q in t.queries)]
            for n, t in enumerate(report.failed, start=1)
        ]
    elif table == "helpfulness":
        rows = [["faq_id", "question", "yes", "no", "reasons"]]
        rows += [
            [
                h.faq_id,
                h.question,
                h.yes,
                h.no,
                "; ".join(f"{r}: {n}" for r, n in h.reasons.items()),
            ]
            for h in report.helpfulness
        ]
    elif table == "positions":
        rows = [["position", "searches_shown", "searches_clicked", "rate"]]
        rows += [
            [p.position, p.shown, p.clicked, round(p.rate, 4)] for p in report.positions
        ]
    else:
        rows = [["source", "searches"]]
        rows += [[s.label, s.searches] for s in report.sources]
    out = io.StringIO()
    csv.writer(out).writerows([csv_cell(cell) for cell in row] for row in rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="search-{table}.csv"'
    return response
