"""Pages of results: offset or page, with the total, on the API and the page."""

import pytest
from django.test import Client
from ninja.testing import TestClient

from embeddings import services
from faq.models import Faq
from faq.search import SearchQuery, search
from searchsite.api import api as site_api

pytestmark = pytest.mark.django_db
api = TestClient(site_api)


@pytest.fixture
def faqs(make_faq):
    return [
        make_faq(
            f"How do I export report number {n}?", f"Open report {n}, then Export."
        )
        for n in range(25)
    ]


def test_pages_walk_through_every_result_once_in_order(faqs):
    whole = search(SearchQuery(q="export a report", k=30))
    assert whole.total == 25 and len(whole.results) == 25
    paged = []
    for offset in (0, 10, 20):
        page = search(SearchQuery(q="export a report", offset=offset))
        assert page.total == 25
        paged += [r.id for r in page.results]
    assert paged == [r.id for r in whole.results]


def test_the_api_takes_an_offset_and_says_the_total(faqs):
    first = api.get("/search", query_params={"q": "export a report"}).json()
    assert (first["total"], first["offset"], len(first["results"])) == (25, 0, 10)
    third = api.get("/search", query_params={"q": "export a report", "offset": 20})
    assert third.json()["offset"] == 20 and len(third.json()["results"]) == 5
    deep = api.get("/search", query_params={"q": "export", "offset": 501})
    assert deep.status_code == 422  # past SEARCH_MAX_OFFSET, as the schema says


def test_a_category_filter_counts_only_what_passes_it(make_faq):
    for n in range(6):
        make_faq(
            f"Billing question {n}?", "An answer.", category="billing" if n % 2 else ""
        )
    found = search(SearchQuery(q="billing question", category="billing", k=2))
    assert found.total == 3 and len(found.results) == 2


def test_the_page_links_to_the_pages_before_and_after_without_javascript(faqs):
    browser = Client()
    first = browser.get("/", {"q": "export a report"}).content.decode()
    assert "Results 1–10 of 25" in first
    assert 'rel="next" href="?q=export+a+report&amp;page=2&amp;s=' in first
    assert 'rel="prev"' not in first
    last = browser.get("/", {"q": "export a report", "page": 3}).content.decode()
    assert "Results 21–25 of 25" in last
    assert 'rel="prev" href="?q=export+a+report&amp;page=2&amp;s=' in last
    assert 'rel="next"' not in last


def test_facets_count_each_kind_and_category_with_the_other_filter(make_faq):
    from faq.models import Document

    for n in range(4):
        make_faq(f"Billing question {n}?", "An answer.", category="billing")
    make_faq("Account question?", "An answer.", category="account")
    Document.objects.create(
        collection=Faq.objects.first().collection,
        title="Billing guide",
        body="All about billing questions.",
        category="billing",
    )
    services.chunks_embed(services.pending_ids())
    services.index_rebuild_all()
    every = search(SearchQuery(q="billing question", facets=True))
    assert every.facets == {
        "kind": {"faq": 5, "document": 1},
        "category": {"account": 1, "billing": 5},
    }
    # A filter leaves its own facet counted without it, the other one with it.
    faqs = search(SearchQuery(q="billing question", kind="faq", facets=True))
    assert faqs.facets == {
        "kind": {"faq": 5, "document": 1},
        "category": {"account": 1, "billing": 4},
    }
    billing = search(SearchQuery(q="billing question", category="billing", facets=True))
    assert billing.facets["kind"] == {"faq": 4, "document": 1}
    assert search(SearchQuery(q="billing question")).facets is None  # not asked
    page = Client().get("/", {"q": "billing question", "kind": "faq"}).content.decode()
    assert '<option value="billing">billing (4)</option>' in page
    assert '<option value="document">Documents (1)</option>' in page
