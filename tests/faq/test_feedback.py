"""Votes on answers and clicks on results: named by the search's token, written
in the background, refused with a message when they cannot be right."""

import re

import pytest
from django.test import Client

from faq.models import Click, Feedback, SearchLog


@pytest.fixture
def faqs(make_faq):
    return [
        make_faq(
            "How do I reset my password?", "Use the reset link on the login page."
        ),
        make_faq("Where are my invoices?", "Under Billing, in your account."),
    ]


def token_of(html: str) -> str:
    return re.search(r'name="s" value="([\w-]{16})"', html).group(1)


def test_every_answer_asks_and_a_vote_is_stored_with_the_search(client, faqs):
    html = client.get("/", {"q": "forgot my password"}).content.decode()
    assert html.count("Did this answer your question?") == 2
    token = token_of(html)
    search = SearchLog.objects.get(token=token)
    answer = {"search": token, "position": 1, "kind": "faq", "id": faqs[0].pk}
    thanks = client.post(
        "/feedback/", answer | {"helpful": "yes"}, HTTP_HX_REQUEST="true"
    )
    assert thanks.status_code == 200 and "glad it helped" in thanks.content.decode()
    # A no asks why; the reason replaces the vote, not adds one.
    asked = client.post(
        "/feedback/", answer | {"helpful": "no"}, HTTP_HX_REQUEST="true"
    )
    assert "What was wrong with it?" in asked.content.decode()
    client.post("/feedback/", answer | {"helpful": "no", "reason": "outdated"})
    vote = Feedback.objects.get()
    assert (vote.search, vote.position, vote.helpful, vote.reason) == (
        search,
        1,
        False,
        "outdated",
    )
    assert (vote.search.query, vote.search.mode) == ("forgot my password", "hybrid")


def test_without_javascript_the_vote_is_a_page_with_a_way_back(client, faqs):
    html = client.get("/", {"q": "forgot my password"}).content.decode()
    token = token_of(html)
    page = client.post(
        "/feedback/",
        {
            "search": token,
            "position": 2,
            "kind": "faq",
            "id": faqs[1].pk,
            "helpful": "no",
            "back": "/?q=forgot+my+password",
        },
    )
    text = page.content.decode()
    assert page.status_code == 200 and "<h1>Your feedback</h1>" in text
    assert 'href="/?q=forgot+my+password"' in text
    elsewhere = client.post(
        "/feedback/",
        {
            "search": token,
            "position": 2,
            "kind": "faq",
            "id": faqs[1].pk,
            "helpful": "yes",
            "back": "https://evil.example/",
        },
    )
    assert "evil.example" not in elsewhere.content.decode()  # no open redirect


@pytest.mark.parametrize(
    "posted",
    [
        {"search": "short", "position": 1, "kind": "faq", "id": 1, "helpful": "yes"},
        {"search": "A" * 16, "position": 0, "kind": "faq", "id": 1, "helpful": "yes"},
        {"search": "A" * 16, "position": 1, "kind": "page", "id": 1, "helpful": "yes"},
        {"search": "A" * 16, "position": 1, "kind": "faq", "id": 1, "helpful": "maybe"},
        {
            "search": "A" * 16,
            "position": 1,
            "kind": "faq",
            "id": 1,
            "helpful": "no",
            "reason": "boring",
        },
    ],
)
def test_a_vote_that_cannot_be_right_is_refused_with_a_message(db, client, posted):
    response = client.post("/feedback/", posted, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "could not be recorded" in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_vote_for_a_search_never_logged_is_dropped(client, faqs):
    posted = {"search": "A" * 16, "position": 1, "kind": "faq", "id": faqs[0].pk}
    assert client.post("/feedback/", posted | {"helpful": "yes"}).status_code == 200
    assert client.post("/click/", posted).status_code == 204
    assert not Feedback.objects.exists() and not Click.objects.exists()


def test_a_click_is_recorded_with_its_position(client, faqs):
    token = token_of(client.get("/", {"q": "invoices"}).content.decode())
    posted = {"search": token, "position": 1, "kind": "faq", "id": faqs[1].pk}
    assert client.post("/click/", posted).status_code == 204
    assert client.post("/click/", posted | {"position": "x"}).status_code == 400
    click = Click.objects.get()
    assert (click.search.token, click.position, click.item_id) == (token, 1, faqs[1].pk)


def test_the_next_page_and_a_filter_change_are_the_same_search(client, faqs):
    token = token_of(client.get("/", {"q": "forgot my password"}).content.decode())
    again = client.get(
        "/",
        {"q": "forgot my password", "kind": "faq", "s": token},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://testserver/?q=forgot+my+password",
        },
    ).content.decode()
    assert token_of(again) == token and SearchLog.objects.count() == 1


def test_the_api_logs_searches_by_key_and_takes_votes_and_clicks(faqs):
    api = Client()
    found = api.get("/api/search", {"q": "forgot my password"}).json()
    search_id, first = found["search_id"], found["results"][0]
    shown = {
        "search_id": search_id,
        "position": 1,
        "kind": first["kind"],
        "id": first["id"],
    }
    vote = api.post(
        "/api/feedback",
        shown | {"helpful": False, "reason": "not_answered"},
        content_type="application/json",
    )
    assert vote.status_code == 202 and vote.json() == {"recorded": True}
    # JSON Schema's integers: 1.0 is one; "1" and true are not.
    click = shown | {"position": 1.0, "id": float(first["id"])}
    assert api.post("/api/clicks", click, content_type="application/json").json() == {
        "recorded": True
    }
    for wrong in ({"position": "1"}, {"id": True}):
        refused = api.post(
            "/api/clicks", shown | wrong, content_type="application/json"
        )
        assert refused.status_code == 422
    log = SearchLog.objects.get(token=search_id)
    assert (log.source, log.feedback_set.get().reason) == ("api", "not_answered")
    assert log.click_set.count() == 1
    bad = api.post(
        "/api/feedback",
        shown | {"helpful": True, "position": 0},
        content_type="application/json",
    )
    assert bad.status_code == 422
    wrong_key = api.get(
        "/api/search", {"q": "password"}, HTTP_AUTHORIZATION="Bearer sk-nope"
    )
    assert wrong_key.status_code == 401 and "not valid" in wrong_key.json()["detail"]


def test_with_the_log_off_nothing_asks_and_nothing_is_stored(client, faqs, settings):
    settings.SEARCH_LOG_DAYS = 0
    html = client.get("/", {"q": "forgot my password"}).content.decode()
    assert "Did this answer your question?" not in html and 'name="s"' not in html
    assert Client().get("/api/search", {"q": "password"}).json()["search_id"] is None
    assert not SearchLog.objects.exists()
