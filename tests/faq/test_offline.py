"""A web host answers searches from its own copy while the database is away
(faq.offline): the follower of the change feed keeps the copy beside the indexes.

The database is made unreachable for real, in-process: every query this
process sends fails as a dropped connection does (Django's execute wrapper)."""

import contextlib
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection

from embeddings import replica, services
from embeddings.index.reader import reader
from faq import offline
from faq.exceptions import NotFound
from faq.models import Document, Faq
from faq.search import SearchQuery, search

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(settings, tmp_path):
    """A web host that follows the feed, with an INDEX_DIR of its own."""
    settings.INDEX_DIR = tmp_path / "web-host"
    settings.INDEX_FOLLOW = True
    settings.RECONCILE_INTERVAL = 3600
    settings.OFFLINE_RETRY_SECONDS = 0  # every search tries the database first
    reader.clear()
    offline._away_until = 0.0
    yield settings.INDEX_DIR
    offline._away_until = 0.0


def add(collection, question: str, answer: str, **fields) -> Faq:
    """Saved and embedded as a worker would, writing no index."""
    with services.tasks_held():
        faq = Faq.objects.create(
            collection=collection, question=question, answer=answer, **fields
        )
    services.chunks_embed(services.pending_ids(partition=collection.partition))
    return faq


@contextlib.contextmanager
def database_away() -> Iterator[list[str]]:
    """Every query of this process fails, as against a database host cut off."""
    refused: list[str] = []

    def refuse(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        refused.append(sql)
        raise OperationalError("could not connect to server: No route to host")

    with connection.execute_wrapper(refuse):
        yield refused


def answers(q: str, **filters: object) -> list[tuple[str, str, str]]:
    return [
        (r.title, r.category, r.snippet)
        for r in search(SearchQuery(q=q, **filters)).results
    ]


def test_searches_are_answered_from_the_hosts_copy_while_the_database_is_away(
    host, collection
):
    add(
        collection,
        "How do I get a refund?",
        "Ask billing within 30 days.",
        category="billing",
    )
    add(collection, "How do I change my password?", "Use the account page.")
    with services.tasks_held():
        Document.objects.create(
            collection=collection, title="Refund policy", body="Refunds take a week."
        )
    services.chunks_embed(services.pending_ids(partition=collection.partition))
    replica.follow_once()  # a new host: the indexes and the copy, built
    online = answers("money back")
    billing = answers("money back", category="billing")
    assert online[0][0] in {"How do I get a refund?", "Refund policy"}

    with database_away() as refused:
        assert answers("money back") == online
        assert answers("money back", category="billing") == billing
        assert answers("money back", collection="help") == online
        with pytest.raises(NotFound):
            search(SearchQuery(q="money back", collection="nope"))
    assert refused  # the database was asked first, each time

    # What changes reaches the copy with the feed: a new FAQ, one unpublished.
    add(collection, "Can I pay by invoice?", "Yes, for yearly plans.")
    Faq.objects.filter(question="How do I get a refund?").update(published=False)
    services.sources_sync(list(Faq.objects.filter(question="How do I get a refund?")))
    replica.follow_once()
    with database_away():
        titles = [title for title, _, _ in answers("pay with an invoice")]
    assert titles[0] == "Can I pay by invoice?"
    assert "How do I get a refund?" not in titles


def test_a_category_changed_reaches_the_copy_at_the_full_check(host, collection):
    add(collection, "How do I get a refund?", "Ask billing.", category="billing")
    replica.follow_once()
    Faq.objects.update(category="payments")  # its chunks stay as they are
    replica.follow_once()
    with database_away():
        assert answers("refund", category="payments") == []
    replica.sync_all("the periodic check")
    with database_away():
        assert [t for t, _, _ in answers("refund", category="payments")] == [
            "How do I get a refund?"
        ]


def test_without_a_copy_the_database_away_is_still_an_error(settings, collection):
    settings.INDEX_FOLLOW = False  # the embedded default: no copy is kept
    with services.tasks_held():
        Faq.objects.create(collection=collection, question="Q?", answer="A.")
    with database_away(), pytest.raises(OperationalError):
        search(SearchQuery(q="question"))


def test_the_search_page_is_answered_from_the_copy_too(
    host, collection, client, settings
):
    settings.OFFLINE_RETRY_SECONDS = 5  # as shipped: the page's reads share a failure
    add(collection, "How do I get a refund?", "Ask billing.", category="billing")
    replica.follow_once()
    with database_away():
        page = client.get("/", {"q": "money back"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "How do I get a refund?" in html
    assert '<option value="billing">billing (1)</option>' in html  # and counts
    assert '<option value="help">Help</option>' in html


def test_the_api_is_answered_from_the_copy_and_logs_nothing_meanwhile(
    host, collection, client, settings
):
    settings.OFFLINE_RETRY_SECONDS = 5
    add(collection, "How do I get a refund?", "Ask billing.")
    replica.follow_once()
    with database_away():
        found = client.get("/api/search", {"q": "money back", "collection": "help"})
    assert found.status_code == 200, found.content
    assert found.json()["results"][0]["title"] == "How do I get a refund?"
    assert found.json()["search_id"] is None  # no log to write it to
    with database_away():  # a key cannot be checked: what anyone may read
        keyed = client.get(
            "/api/search", {"q": "money back"}, HTTP_AUTHORIZATION="Bearer sk-x"
        )
    assert keyed.status_code == 200
