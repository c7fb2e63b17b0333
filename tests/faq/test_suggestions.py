"""Suggestions as one types: confident searches others made, then FAQ questions."""

import pytest
from django.test import Client
from ninja.testing import TestClient

from faq.models import Collection, SearchLog
from faq.suggestions import Suggestion, suggestions
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)


@pytest.fixture
def asked(collection, make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    make_faq("How do I rename a folder?", "Right-click it.")
    make_faq("Where are my invoices?", "Under Billing.")
    other = Collection.objects.create(name="Other", slug="other")
    logs = [
        ("how do I reset my password", collection, 3, 0.8),  # confident, asked 3x
        ("How do I reset my password", collection, 3, 0.7),
        ("how do I reset my password", collection, 3, 0.9),
        ("how do I rename", collection, 2, 0.5),  # confident once
        ("how do I reach support", collection, 2, 0.2),  # no confident answer
        ("how do I reach support", collection, 2, 0.1),
        ("how do I read", collection, 0, None),  # nothing found
        ("how do I refund", other, 2, 0.9),  # another collection's
    ]
    SearchLog.objects.bulk_create(
        SearchLog(
            query=q,
            collection=c,
            results=n,
            top_score=s,
            confident=s is not None and s >= c.confidence_threshold,
        )
        for q, c, n, s in logs
    )


def test_confident_searches_first_by_how_often_then_questions(asked):
    assert suggestions("how do I re", collection="help") == [
        Suggestion("how do i reset my password", "query"),
        Suggestion("how do i rename", "query"),
        Suggestion("How do I rename a folder?", "question"),
        Suggestion("How do I reset my password?", "question"),
    ]
    assert suggestions("INVOICE", collection="help") == [
        Suggestion("Where are my invoices?", "question")
    ]
    assert Suggestion("how do i refund", "query") in suggestions("how do I re")
    assert suggestions("h") == []  # under two characters: nothing yet
    assert len(suggestions("how do I re", collection="help", k=2)) == 2


def test_the_api_and_the_pages_datalist(asked):
    answer = client.get("/suggest", query_params={"q": "where", "collection": "help"})
    assert answer.status_code == 200
    assert answer.json() == {
        "suggestions": [{"text": "Where are my invoices?", "source": "question"}]
    }
    missing = client.get("/suggest", query_params={"q": "where", "collection": "nope"})
    assert missing.status_code == 404
    options = Client().get("/suggest/", {"q": "where", "collection": "help"})
    assert options.content.decode().strip() == (
        '<option value="Where are my invoices?"></option>'
    )
    page = Client().get("/").content.decode()
    assert 'list="suggestions"' in page and '<datalist id="suggestions">' in page
