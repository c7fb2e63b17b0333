"""The admin's search analytics, on a seeded log of 1,000 searches whose outcomes,
votes and clicks are known: every rate, ranking and topic is what they make."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from faq.access import EVERY, PUBLIC
from faq.analytics import Scope, analytics
from faq.models import ApiKey, Click, Collection, Faq, Feedback, SearchLog

URL = "/admin/faq/searchlog/analytics/"

# Failed queries in three topics (paraphrases of one need each), and how often.
FAILED = {
    "cancel": [
        ("how do i cancel my subscription", 60),
        ("cancel my subscription", 50),
        ("how to cancel subscription", 40),
        ("i want to cancel my subscription plan", 30),
        ("cancelling a subscription", 20),
    ],  # 200 searches
    "export": [
        ("export invoices to pdf", 50),
        ("how do i export my invoices as pdf", 40),
        ("download invoice pdf export", 30),
    ],  # 120
    "language": [
        ("change the language of the app", 40),
        ("how do i change the app language", 25),
        ("switch app language", 15),
    ],  # 80
}
NO_RESULT = {"cancel": 60, "export": 50, "language": 40}  # of those, with no result


@pytest.fixture
def seeded(db):
    """1,000 searches over 5 days: 600 confident, 400 failed (150 with no
    result); 150 through the API (100 with a key); votes and clicks."""
    help_ = Collection.objects.create(name="Help", slug="help")
    faqs = {
        name: Faq.objects.create(collection=help_, question=q, answer="…")
        for name, q in [
            ("a", "How do I reset my password?"),
            ("b", "Where are my invoices?"),
            ("c", "How do I delete my account?"),
        ]
    }
    key = ApiKey.objects.create(name="Widget", prefix="sk-widget", key_hash="x")
    logs: list[SearchLog] = []
    for n in range(600):
        logs.append(
            SearchLog(
                token=f"confident{n:07d}",
                query=("reset my password", "where are my invoices")[n % 2],
                collection=help_,
                results=10,
                top_score=0.8,
                confident=True,
            )
        )
    for topic, queries in FAILED.items():
        empty = NO_RESULT[topic]
        for query, count in queries:
            for _ in range(count):
                none = empty > 0
                empty -= 1
                logs.append(
                    SearchLog(
                        token=f"failed{len(logs):010d}",
                        query=query,
                        collection=help_,
                        results=0 if none else 3,
                        top_score=None if none else 0.3,
                        confident=False,
                    )
                )
    assert len(logs) == 1000
    for n, log in enumerate(logs):
        if n % 20 in (1, 3, 5):  # 150 through the API: 100 with the key
            log.source = SearchLog.Source.API
            log.api_key = key if n % 20 != 5 else None
    SearchLog.objects.bulk_create(logs)
    now = timezone.now()
    saved = list(SearchLog.objects.order_by("pk"))
    for n, log in enumerate(saved):  # 200 a day, 4 days ago to today
        log.created_at = now - timedelta(days=4 - n // 200)
    SearchLog.objects.bulk_update(saved, ["created_at"])
    page = [log for log in saved if log.source == "page" and log.confident]
    votes = [("a", False, 30, "outdated"), ("a", True, 10, ""), ("b", False, 20, "")]
    votes += [("b", True, 40, ""), ("c", False, 5, "not_related")]
    rows, at = [], 0
    for name, helpful, count, reason in votes:
        for _ in range(count):
            rows.append(
                Feedback(
                    search=page[at],
                    kind="faq",
                    item_id=faqs[name].pk,
                    position=1,
                    helpful=helpful,
                    reason=reason,
                )
            )
            at += 1
    Feedback.objects.bulk_create(rows)
    # Clicks: 100 page searches opened their first result, 50 their second (of
    # those, 10 twice), 20 their tenth.
    clicks = [
        Click(search=page[i], kind="faq", item_id=1, position=1) for i in range(100)
    ]
    clicks += [
        Click(search=page[i], kind="faq", item_id=2, position=2) for i in range(50)
    ]
    clicks += [
        Click(search=page[i], kind="faq", item_id=2, position=2) for i in range(10)
    ]
    clicks += [
        Click(search=page[i], kind="faq", item_id=3, position=10) for i in range(20)
    ]
    Click.objects.bulk_create(clicks)
    return help_, faqs, key


def test_rates_per_day_and_sources_are_what_the_log_holds(seeded):
    help_, _, key = seeded
    report = analytics(Scope(help_, 30, "", EVERY))
    assert (report.searches, report.no_result, report.unconfident) == (1000, 150, 400)
    assert (report.no_result_share, report.unconfident_share) == (0.15, 0.4)
    assert [d.searches for d in report.days[-5:]] == [200] * 5
    assert sum(d.searches for d in report.days) == 1000 and len(report.days) == 30
    # The first 600 searches (4 to 2 days ago) were all confident.
    assert [d.unconfident for d in report.days[-5:]] == [0, 0, 0, 200, 200]
    assert [d.no_result_share for d in report.days[-5:]] == [0, 0, 0, 0.3, 0.45]
    sources = {s.label: s.searches for s in report.sources}
    assert sources == {
        "Search page": 850,
        f"API key {key}": 100,
        "API without a key": 50,
    }
    api = analytics(Scope(help_, 30, "api", EVERY))
    assert api.searches == 150


def test_failed_searches_are_grouped_into_topics_most_searched_first(seeded):
    help_, _, _ = seeded
    report = analytics(Scope(help_, 30, "", EVERY))
    assert report.failed_searches == 400
    found = [
        ({q.text for q in topic.queries}, topic.searches) for topic in report.failed
    ]
    expected = [(dict(FAILED[t]), sum(n for _, n in FAILED[t])) for t in FAILED]
    assert [searches for _, searches in found] == [200, 120, 80]
    for (texts, _), (queries, _) in zip(found, expected, strict=True):
        assert texts <= set(queries)  # the topic's representatives are its own
    write = report.failed[0].write_url
    assert write.startswith("/admin/faq/faq/add/?question=")
    assert f"collection={help_.pk}" in write


def test_helpfulness_ranks_the_faqs_most_voted_no_first(seeded):
    help_, faqs, _ = seeded
    report = analytics(Scope(help_, 30, "", EVERY))
    assert (report.votes, report.helpful) == (105, 50)
    ranked = [(h.faq_id, h.no, h.yes, h.reasons) for h in report.helpfulness]
    assert ranked == [
        (faqs["a"].pk, 30, 10, {"Out of date": 30}),
        (faqs["b"].pk, 20, 40, {}),
        (faqs["c"].pk, 5, 0, {"Not related to my question": 5}),
    ]
    assert report.helpfulness[0].no_share == 0.75


def test_click_through_by_position_counts_searches_not_clicks(seeded):
    help_, _, _ = seeded
    report = analytics(Scope(help_, 30, "", EVERY))
    # 850 page searches: 510 confident ones with 10 results, 340 failed ones of
    # which 3 results for those with any (the first 150 failed had none).
    page_failed = [
        log for log in SearchLog.objects.filter(source="page", confident=False)
    ]
    with_three = sum(1 for log in page_failed if log.results == 3)
    shown_first = 510 + with_three
    positions = {p.position: p for p in report.positions}
    assert (positions[1].shown, positions[1].clicked) == (shown_first, 100)
    assert (positions[2].shown, positions[2].clicked) == (shown_first, 50)
    assert (positions[4].shown, positions[4].clicked) == (510, 0)
    assert (positions[10].shown, positions[10].clicked) == (510, 20)
    assert positions[10].rate == 20 / 510


def test_the_page_shows_it_and_exports_each_table(seeded, admin_client):
    help_, faqs, _ = seeded
    page = admin_client.get(URL, {"collection": help_.pk, "days": 30})
    assert page.status_code == 200
    html = page.content.decode()
    assert "15.0 %" in html and "40.0 %" in html  # no result, no confident answer
    assert "Write an FAQ" in html and "How do I reset my password?" in html
    exported = admin_client.get(URL, {"collection": help_.pk, "export": "helpfulness"})
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0] == ["faq_id", "question", "yes", "no", "reasons"]
    assert rows[1][:4] == [str(faqs["a"].pk), "How do I reset my password?", "10", "30"]
    days = admin_client.get(URL, {"export": "days", "days": 5}).content.decode()
    assert list(csv.reader(io.StringIO(days)))[1:] == [
        [str(d), "200", str(none), str(unsure)]
        for d, none, unsure in zip(
            [timezone.localdate() - timedelta(days=b) for b in range(4, -1, -1)],
            [0, 0, 0, 60, 90],
            [0, 0, 0, 200, 200],
            strict=True,
        )
    ]


def test_bad_scopes_are_form_errors(admin_client):
    for params in (
        {"days": "0"},
        {"days": "x"},
        {"source": "mail"},
        {"collection": "99"},
    ):
        response = admin_client.get(URL, params)
        assert response.status_code == 400
        assert (
            "errornote" in response.content.decode()
            or "error" in response.content.decode()
        )
    assert admin_client.get(URL, {"export": "secrets"}).status_code == 400


def test_private_searches_are_counted_only_for_those_allowed(seeded, client):
    help_, _, _ = seeded
    secret = Collection.objects.create(name="Staff", slug="staff", private=True)
    SearchLog.objects.bulk_create(
        SearchLog(
            token=f"private{n:09d}",
            query="salary bands",
            collection=secret,
            private=True,
            results=1,
            confident=True,
        )
        for n in range(20)
    )
    assert analytics(Scope(None, 30, "", EVERY)).searches == 1020
    assert analytics(Scope(None, 30, "", PUBLIC)).searches == 1000
    editor = User.objects.create_user("editor", password="pw", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="view_searchlog"))
    client.force_login(editor)
    page = client.get(URL).content.decode()
    assert "salary bands" not in page and "Staff" not in page
    assert client.get(URL, {"collection": secret.pk}).status_code == 400
    editor.user_permissions.add(Permission.objects.get(codename="search_private"))
    editor = User.objects.get(pk=editor.pk)  # permissions are cached per instance
    client.force_login(editor)
    page = client.get(URL).content.decode()
    assert "salary bands" in page and "Staff (private)" in page
