import pytest
from ninja.testing import TestClient

from faq.models import ApiKey, Collection, Faq
from faq.services import api_key_create
from searchsite.api import api

pytestmark = pytest.mark.django_db
client = TestClient(api)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def writer(collection) -> str:
    return api_key_create(name="sync", permission="write", collection=collection)[1]


def test_search_returns_ranked_results_with_every_score(make_faq):
    make_faq("How do I reset my password?", "Use the reset link.", category="Account")
    make_faq("Where is my invoice?", "Under Billing.")
    response = client.get(
        "/search", query_params={"q": "forgot my password", "k": 1, "explain": True}
    )
    assert response.status_code == 200
    body = response.json()
    [hit] = body.pop("results")
    assert len(body.pop("search_id")) == 16  # logged: votes and clicks name it
    assert body | {"took_ms": 0} == {
        "query": "forgot my password",
        "mode": "hybrid",
        "fusion": "boost",
        "took_ms": 0,
        "confident": True,
        "total": 2,  # both FAQs are among the candidates: a page of one, of two
        "offset": 0,
        "facets": None,  # not asked for
        "contact_url": None,  # a confident answer: nobody need be asked
    }
    faq = Faq.objects.get(question__startswith="How do I reset")
    assert hit | {"cosine": 0, "keyword_score": 0, "score": 0, "explanation": ""} == {
        "kind": "faq",
        "id": faq.pk,
        "title": "How do I reset my password?",
        "answer": "Use the reset link.",
        "snippet": "How do I reset my password?",
        "snippet_html": "How do I reset my <mark>password</mark>?",
        "matched": "question",
        "url": f"/faq/{faq.pk}/",
        "category": "Account",
        "collection": "help",
        "score": 0,
        "cosine": 0,
        "dense_rank": 1,
        "keyword_score": 0,
        "keyword_rank": 1,
        "explanation": "",
        "pinned": False,
    }
    assert 0.5 < hit["cosine"] <= 1 and hit["keyword_score"] > 0
    assert hit["explanation"] == (
        f"boost: {hit['cosine']:.4f} + 0.15*{hit['explanation'].split('*')[1]}"
    )
    assert hit["score"] > hit["cosine"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"q": ""}, 422, None),
        (
            {"q": "   "},
            422,
            "The request does not match the API's schema: query.q: must have "
            "a character that is not a space (and no NUL)",
        ),
        ({"q": "x" * 501}, 422, None),
        ({"q": "hi", "k": 0}, 422, None),
        ({"q": "hi", "k": 101}, 422, None),
        ({"q": "hi", "min_score": 2}, 422, None),
        ({"q": "hi", "kind": "video"}, 422, None),
        ({"q": "hi", "mode": "magic"}, 422, None),
        ({"q": "hi", "fusion": "magic"}, 422, None),
        ({"q": "hi", "weight": 1.5}, 422, None),
        ({"q": "hi", "collection": "nope"}, 404, "There is no collection 'nope'."),
    ],
)
def test_bad_searches_get_a_clear_4xx(params, status, message):
    response = client.get("/search", query_params=params)
    assert response.status_code == status
    if message:
        assert response.json()["detail"] == message
    else:
        assert response.json()["detail"]


def test_health_reports_database_broker_index_and_model(make_faq):
    make_faq("Q?", "A.")
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["database"], body["broker"], body["model"], body["dimension"]) == (
        "ok",
        "ok",
        "all-MiniLM-L6-v2",
        384,
    )
    assert body["index"] == {
        "partitions": 1,
        "vectors": 2,
        "version": 1,
        "damaged": [],
        "replica": None,  # this process follows no change feed (INDEX_FOLLOW off)
        "reembedding": [],
    }
    assert (body["worker"], body["reasons"]) == ("ok", [])


def test_content_can_be_created_read_updated_and_deleted(writer, committed):
    with committed():
        created = client.post(
            "/collections/help/faqs",
            json={
                "question": "Can I pay by invoice?",
                "answer": "Yes, on annual plans.",
            },
            headers=bearer(writer),
        )
    assert created.status_code == 201, created.content
    faq = created.json()
    assert (faq["question"], faq["collection"], faq["embedding_status"]) == (
        "Can I pay by invoice?",
        "help",
        "pending",  # as the API answered, before the commit ran the task
    )
    got = client.get(f"/faqs/{faq['id']}", headers=bearer(writer)).json()
    assert got["embedding_status"] == "embedded"
    with committed():
        patched = client.patch(
            f"/faqs/{faq['id']}", json={"category": "Billing"}, headers=bearer(writer)
        )
    assert patched.json()["category"] == "Billing"
    listed = client.get("/collections/help/faqs", headers=bearer(writer)).json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == faq["id"]
    with committed():
        assert (
            client.delete(f"/faqs/{faq['id']}", headers=bearer(writer)).status_code
            == 204
        )
    assert client.get(f"/faqs/{faq['id']}", headers=bearer(writer)).status_code == 404


def test_invalid_content_is_refused_with_a_message(writer):
    response = client.post(
        "/collections/help/documents",
        json={"title": "Guide", "body": "Text", "url": "not a url"},
        headers=bearer(writer),
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "The request does not match the API's schema: body.url: Enter a web "
        "address that starts with http:// or https://."
    )


def test_an_external_id_taken_in_the_collection_is_a_conflict(writer):
    body = {"question": "Q?", "answer": "A.", "external_id": "kb-1"}
    first = client.post("/collections/help/faqs", json=body, headers=bearer(writer))
    assert first.status_code == 201
    again = client.post("/collections/help/faqs", json=body, headers=bearer(writer))
    assert again.status_code == 409
    assert again.json() == {
        "detail": "Constraint “faq_unique_external_id” is violated."
    }


def test_keys_are_checked(collection, writer):
    other = Collection.objects.create(name="Other", slug="other")
    reader = api_key_create(name="r", permission="read", collection=collection)[1]
    elsewhere = api_key_create(name="o", permission="write", collection=other)[1]
    body = {"question": "Q?", "answer": "A."}
    assert client.post("/collections/help/faqs", json=body).status_code == 401
    assert (
        client.post(
            "/collections/help/faqs", json=body, headers=bearer("sk-wrong")
        ).status_code
        == 401
    )
    denied = client.post("/collections/help/faqs", json=body, headers=bearer(reader))
    assert denied.status_code == 403
    assert denied.json() == {"detail": "This API key cannot write."}
    assert (
        client.post(
            "/collections/help/faqs", json=body, headers=bearer(elsewhere)
        ).status_code
        == 403
    )
    assert (
        client.get("/collections/help/faqs", headers=bearer(reader)).status_code == 200
    )
    revoked = ApiKey.objects.get(name="r")
    revoked.revoked = True
    revoked.save()
    assert (
        client.get("/collections/help/faqs", headers=bearer(reader)).status_code == 401
    )


def test_keys_are_stored_only_as_hashes(writer):
    key = ApiKey.objects.get(name="sync")
    stored = [str(getattr(key, f.attname)) for f in ApiKey._meta.concrete_fields]
    assert not any(writer in value for value in stored)
    assert key.prefix == writer[:12]


def test_openapi_document_lists_every_operation():
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/search",
        "/api/health",
        "/api/collections/{slug}/faqs",
        "/api/faqs/{pk}",
    } <= set(paths)
