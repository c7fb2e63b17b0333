from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.utils import timezone
from ninja.testing import TestClient

from faq.models import Faq, SearchLog
from faq.searchlog import search_log_prune
from faq.topics import collection_faq_topics
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)

PASSWORDS = [
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "The password reset email never arrives",
]
REFUNDS = [
    "How do I get a refund for my order?",
    "Can I return an item and get my money back?",
    "How long does a refund take to reach my card?",
]
OUTLIER = "What is the capital of Mongolia?"


@pytest.fixture(autouse=True)
def own_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    cache.clear()


@pytest.fixture
def faqs(make_faq) -> list[Faq]:
    return [make_faq(q, "An answer.") for q in [*PASSWORDS, *REFUNDS, OUTLIER]]


def topics_url(collection, query: str = "") -> str:
    return f"/admin/faq/collection/{collection.pk}/topics/{query}"


# --- POST /api/clusters ---------------------------------------------------------


def test_clusters_groups_posted_texts_into_labelled_topics():
    texts = [PASSWORDS[0], REFUNDS[0], OUTLIER, *PASSWORDS[1:], *REFUNDS[1:]]
    response = client.post("/clusters", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    topics = body.pop("topics")
    assert body == {
        "model": "all-MiniLM-L6-v2",
        "threshold": 1.4,
        "min_size": 2,
        "unclustered": [2],
    }
    assert [(t["size"], t["members"]) for t in topics] == [
        (3, [0, 3, 4]),
        (3, [1, 5, 6]),
    ]
    assert topics[0]["labels"][0] == "password"
    assert topics[1]["labels"][0] == "refund"
    assert sorted(topics[0]["representatives"]) == [0, 3, 4]


def test_clusters_takes_a_threshold_and_a_min_size():
    texts = [*PASSWORDS, *REFUNDS[:2]]
    response = client.post("/clusters", json={"texts": texts, "min_size": 3})
    assert [t["members"] for t in response.json()["topics"]] == [[0, 1, 2]]
    assert response.json()["unclustered"] == [3, 4]
    response = client.post("/clusters", json={"texts": texts, "threshold": 0.01})
    assert response.json()["topics"] == []
    assert response.json()["unclustered"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"texts": ["a", "b", "c", "d"]}, 413, "At most 3 texts per request; got 4."),
        (
            {"texts": ["a", " "]},
            422,
            "The request does not match the API's schema: body.texts.1: must have "
            "a character that is not a space (and no NUL)",
        ),
        ({"texts": ["x" * 41]}, 400, "texts[0] is longer than 40 characters."),
        ({"texts": []}, 422, None),
        ({"texts": ["a"], "threshold": 0}, 422, None),
        ({"texts": ["a"], "min_size": 0}, 422, None),
        ({"texts": "a"}, 422, None),
    ],
)
def test_clusters_refuses_bad_requests_with_a_clear_4xx(
    settings, payload, status, message
):
    settings.CLUSTER_MAX_TEXTS = 3
    settings.CLUSTER_MAX_TEXT_LENGTH = 40
    response = client.post("/clusters", json=payload)
    assert response.status_code == status
    if message:
        assert response.json()["detail"] == message
    else:
        assert response.json()["detail"]


# --- the admin page ---------------------------------------------------------------


def test_the_topics_page_shows_a_collections_faq_topics_to_staff(
    admin_client, collection, faqs
):
    response = admin_client.get(topics_url(collection))
    assert response.status_code == 200
    report = response.context["report"]
    assert [(t.size, t.labels[0]) for t in report.topics] == [
        (3, "password"),
        (3, "refund"),
    ]
    assert (report.clustered, report.unclustered, report.available) == (7, 1, 7)
    assert {m.text for m in report.topics[0].representatives} == set(PASSWORDS)
    html = response.content.decode()
    assert "7 FAQ questions" in html and "<b>2</b> topics" in html
    assert '<td class="size">3</td>' in html
    assert html.count("<rect ") == 2  # the chart of sizes
    assert f'href="/admin/faq/faq/{faqs[0].pk}/change/"' in html


def test_the_topics_page_says_when_it_grouped_only_the_first_faqs(
    settings, admin_client, collection, faqs
):
    settings.CLUSTER_MAX_ITEMS = 4
    response = admin_client.get(topics_url(collection))
    report = response.context["report"]
    assert (report.clustered, report.available) == (4, 7)
    assert sum(t.size for t in report.topics) + report.unclustered == 4
    assert "Only the first 4 of 7 were grouped" in response.content.decode()


def test_the_collection_list_links_to_its_topics(admin_client, collection):
    html = admin_client.get("/admin/faq/collection/").content.decode()
    assert f'href="{topics_url(collection)}"' in html


def test_the_topics_page_refuses_visitors_and_staff_without_permission(
    client, collection
):
    assert client.get(topics_url(collection)).status_code == 302  # to the login
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(topics_url(collection)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_collection"))
    assert client.get(topics_url(collection)).status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?source=nope", "source must be one of faqs, queries."),
        ("?source=queries&days=abc", "days must be a whole number from 1 to 3650."),
        ("?source=queries&days=0", "days must be a whole number from 1 to 3650."),
    ],
)
def test_the_topics_page_refuses_bad_parameters(
    admin_client, collection, query, message
):
    response = admin_client.get(topics_url(collection, query))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_faq_topics_are_cached_until_a_question_changes(
    collection, make_faq, faqs, committed
):
    first = collection_faq_topics(collection=collection)
    assert collection_faq_topics(collection=collection) == first
    make_faq("Where is my refund?", "On its way.")
    second = collection_faq_topics(collection=collection)
    assert [(t.size, t.labels[0]) for t in second.topics] == [
        (4, "refund"),
        (3, "password"),
    ]
    with committed():
        faqs[0].question = "Can I bring my dog to the office?"
        faqs[0].save()
    third = collection_faq_topics(collection=collection)
    assert [t.size for t in third.topics] == [4, 2]
    assert (third.clustered, third.unclustered) == (8, 2)


def test_the_topics_page_groups_what_people_searched_for(
    admin_client, client, collection, faqs
):
    for q in [*PASSWORDS, PASSWORDS[0], *REFUNDS, OUTLIER]:
        client.get("/", {"q": q})
    old = SearchLog.objects.create(query="an old search about passwords")
    SearchLog.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    response = admin_client.get(topics_url(collection, "?source=queries&days=30"))
    assert response.status_code == 200
    report = response.context["report"]
    assert [(t.size, t.distinct, t.labels[0]) for t in report.topics] == [
        (4, 3, "password"),
        (3, 3, "refund"),
    ]
    assert (report.clustered, report.unclustered, report.available) == (7, 1, 7)
    assert "Searches" in response.content.decode()


# --- the search log ---------------------------------------------------------------


def test_the_search_page_and_the_api_log_each_query_marked_by_where(client, faqs):
    client.get("/", {"q": "reset my password"})
    client.get("/api/search", {"q": "refund please"})
    client.get("/", {"q": "  "})  # nothing searched
    page, api = SearchLog.objects.order_by("pk")
    assert (page.query, page.collection, page.results) == ("reset my password", None, 7)
    assert page.top_score == pytest.approx(0.85, abs=0.1)
    assert (page.source, page.mode, page.confident) == ("page", "hybrid", True)
    assert (api.query, api.source, api.api_key) == ("refund please", "api", None)


def test_typing_on_rewrites_the_last_query_instead_of_adding_one(
    client, collection, faqs
):
    def typed(q: str, previous: str) -> None:
        client.get(
            "/",
            {"q": q, "collection": "help"},
            headers={
                "HX-Request": "true",
                "HX-Current-URL": f"http://testserver/?q={previous}&collection=help",
            },
        )

    client.get("/", {"q": "how do", "collection": "help"})
    typed("how do I reset", previous="how+do")
    typed("how do I reset my password", previous="how+do+I+reset")
    typed("how do I reset my password", previous="how+do+I+reset+my+password")
    typed("refund", previous="how+do+I+reset+my+password")
    rows = SearchLog.objects.order_by("pk").values_list("query", "collection")
    assert list(rows) == [
        ("how do I reset my password", collection.pk),
        ("refund", collection.pk),
    ]


def test_logging_can_be_turned_off(settings, client, faqs):
    settings.SEARCH_LOG_DAYS = 0
    client.get("/", {"q": "reset my password"})
    assert not SearchLog.objects.exists()


def test_old_queries_are_pruned(settings, client):
    settings.SEARCH_LOG_DAYS = 30
    kept = SearchLog.objects.create(query="recent")
    old = SearchLog.objects.create(query="old")
    SearchLog.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert search_log_prune() == 1
    assert list(SearchLog.objects.all()) == [kept]


def test_the_search_log_is_read_only_in_the_admin(admin_client):
    SearchLog.objects.create(query="reset my password", results=3, top_score=0.8)
    assert (
        "reset my password"
        in admin_client.get("/admin/faq/searchlog/").content.decode()
    )
    assert admin_client.get("/admin/faq/searchlog/add/").status_code == 403
