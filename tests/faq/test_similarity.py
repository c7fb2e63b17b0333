"""Similarity of posted texts, paraphrase mining, similar items, collection
duplicates and related questions, through the API and the pages, on the real model."""

from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from ninja.testing import TestClient

from embeddings.encoders import get_encoder
from embeddings.models import Chunk
from faq.models import Collection, Document, Faq
from faq.services import api_key_create, items_bulk_upsert
from faq.similar import related_questions
from searchsite.api import api
from tests.encoding import batch_tolerance

pytestmark = pytest.mark.django_db
client = TestClient(api)

RESET = "How do I reset my password?"
RESET_TOO = "How can I reset my password?"
FORGOT = "I forgot my password and cannot log in"
HOURS = "What are your opening hours?"
INVOICE = "Where can I download my invoices?"
HIDDEN = "How do I reset my password quickly?"  # unpublished


def cosines(one: str, others: list[str]) -> list[float]:
    vectors = get_encoder().encode([one, *others])
    return [float(v @ vectors[0]) for v in vectors[1:]]


def stored(faq: Faq, field: str = "question") -> np.ndarray:
    """The vector the worker stored for one of ``faq``'s chunks."""
    chunk = Chunk.objects.get(source_type="faq.faq", source_id=faq.pk, field=field)
    return np.frombuffer(chunk.vector, dtype=np.float32)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def faqs(collection, committed) -> dict[str, Faq]:
    """Five published FAQs and a hidden one, embedded in one batch."""
    rows: list[dict[str, Any]] = [
        {"question": RESET, "answer": "Use the reset link on the login page."},
        {"question": RESET_TOO, "answer": "Click 'Forgot password', see the email."},
        {"question": FORGOT, "answer": "Ask for a new password from the login page."},
        {"question": HOURS, "answer": "Nine to five, Monday to Friday."},
        {"question": INVOICE, "answer": "Under Billing, then Invoices."},
        {"question": HIDDEN, "answer": "Hidden.", "published": False},
    ]
    with committed():
        assert items_bulk_upsert(collection=collection, items=rows).written
    return {faq.question: faq for faq in Faq.objects.all()}


# --- POST /api/similarity -----------------------------------------------------------


def test_similarity_scores_one_text_against_many_in_order():
    texts = [HOURS, RESET_TOO, FORGOT]
    response = client.post("/similarity", json={"text": RESET, "texts": texts})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["scores"] == pytest.approx(cosines(RESET, texts), abs=1e-5)
    assert body["scores"][1] > body["scores"][2] > body["scores"][0]


def test_similarity_scores_each_pair():
    pairs = [[RESET, RESET_TOO], [RESET, HOURS], [HOURS, HOURS]]
    response = client.post("/similarity", json={"pairs": pairs})
    assert response.status_code == 200, response.content
    expected = [cosines(a, [b])[0] for a, b in pairs]
    assert response.json()["scores"] == pytest.approx(expected, abs=batch_tolerance())
    assert response.json()["scores"][2] == pytest.approx(1.0, abs=1e-5)


SCHEMA = "The request does not match the API's schema: "
EITHER = "body.text: Field required; body.pairs: Field required"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"texts": ["a"]}, f"{SCHEMA}{EITHER}; body.texts: Extra inputs"),
        (
            {"text": "a", "texts": ["b"], "pairs": [["a", "b"]]},
            f"{SCHEMA}body.pairs: Extra inputs are not permitted",
        ),
        ({"text": "a"}, f"{SCHEMA}body.texts: Field required"),
        ({"pairs": [["a", "b", "c"]]}, f"{SCHEMA}body.text: Field required"),
        (
            {"text": "a", "texts": ["b", "  "]},
            f"{SCHEMA}body.texts.1: must have a character that is not a space",
        ),
        (
            {"pairs": [["a", "x" * 2001]]},
            f"{SCHEMA}body.text: Field required",
        ),
        (
            {"text": "a", "texts": ["b"] * 101},
            f"{SCHEMA}body.texts: List should have at most 100 items",
        ),
        ({"text": "a", "texts": "b"}, f"{SCHEMA}body.texts: Input should be a valid"),
    ],
)
def test_bad_similarity_requests_get_a_422_that_names_the_field(body, detail):
    response = client.post("/similarity", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert response.json()["errors"]


# --- POST /api/paraphrases ----------------------------------------------------------


def test_paraphrases_are_mined_from_posted_texts_most_similar_first():
    texts = [HOURS, RESET, INVOICE, RESET_TOO, FORGOT, "When are you open?"]
    response = client.post("/paraphrases", json={"texts": texts, "threshold": 0.6})
    assert response.status_code == 200, response.content
    body = response.json()
    vectors = get_encoder().encode(texts)
    scores = vectors @ vectors.T
    expected = sorted(
        (
            (float(scores[i, j]), i, j)
            for i in range(len(texts))
            for j in range(i + 1, len(texts))
            if scores[i, j] >= 0.6
        ),
        reverse=True,
    )
    assert [(p["first"], p["second"]) for p in body["pairs"]] == [
        (i, j) for _, i, j in expected
    ]
    assert [p["score"] for p in body["pairs"]] == pytest.approx(
        [s for s, _, _ in expected], abs=1e-5
    )
    assert (body["pairs"][0]["first"], body["pairs"][0]["second"]) == (1, 3)
    assert {(0, 5), (1, 3)} <= {(p["first"], p["second"]) for p in body["pairs"]}
    assert body["count"] == len(expected) and body["threshold"] == 0.6


def test_paraphrases_default_to_the_duplicate_threshold_and_limit_the_pairs(settings):
    settings.DUPLICATE_THRESHOLD = 0.9
    texts = [RESET, RESET_TOO, RESET, HOURS]
    body = client.post("/paraphrases", json={"texts": texts, "limit": 1}).json()
    assert body["threshold"] == 0.9
    assert body["count"] == 3  # the two copies of RESET, each with RESET_TOO
    assert body["pairs"] == [{"first": 0, "second": 2, "score": pytest.approx(1.0)}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"texts": []}, 422),
        ({"texts": ["a", "b"], "threshold": 1.5}, 422),
        ({"texts": ["a", "b"], "top_k": 0}, 422),
        ({"texts": ["a", ""]}, 422),
        ({"texts": ["a"] * 4}, 413),
    ],
)
def test_bad_paraphrase_requests_get_a_clear_4xx(settings, body, status):
    settings.PARAPHRASE_MAX_TEXTS = 3
    response = client.post("/paraphrases", json=body)
    assert response.status_code == status
    assert response.json()["detail"]


# --- GET /api/items/{id}/similar ----------------------------------------------------


def test_similar_items_are_published_nearest_first_without_the_item(faqs):
    reset = faqs[RESET]
    response = client.get(f"/items/{reset.pk}/similar", query_params={"k": 3})
    assert response.status_code == 200, response.content
    body = response.json()
    results = body.pop("results")
    assert body == {"kind": "faq", "id": reset.pk, "title": RESET}
    assert [r["title"] for r in results[:2]] == [RESET_TOO, FORGOT]
    assert len(results) == 3
    assert [r["score"] for r in results] == sorted(
        (r["score"] for r in results), reverse=True
    )
    for result in results:
        other = Faq.objects.get(pk=result["id"])
        expected = float(stored(reset) @ stored(other, result["matched"]))
        assert result["score"] == pytest.approx(expected, abs=1e-5)
        assert result["url"] == f"/faq/{other.pk}/" and result["kind"] == "faq"
    hidden = faqs[HIDDEN].pk
    everything = client.get(f"/items/{reset.pk}/similar", query_params={"k": 50})
    assert {r["id"] for r in everything.json()["results"]} == {
        faqs[q].pk for q in (RESET_TOO, FORGOT, HOURS, INVOICE)
    }
    assert hidden not in {r["id"] for r in everything.json()["results"]}


def test_similar_items_above_a_score_only(faqs):
    response = client.get(
        f"/items/{faqs[RESET].pk}/similar", query_params={"min_score": 0.9}
    )
    assert [r["title"] for r in response.json()["results"]] == [RESET_TOO]


def test_a_document_is_similar_by_the_mean_of_its_chunks(faqs, collection, committed):
    with committed():
        guide = Document.objects.create(
            collection=collection,
            title="Passwords",
            body="To reset a forgotten password, open the login page and use the "
            "reset link we email you.",
        )
    response = client.get(
        f"/items/{guide.pk}/similar", query_params={"kind": "document", "k": 2}
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert {r["title"] for r in results} <= {RESET, RESET_TOO, FORGOT}
    vector = get_encoder().encode([f"Passwords\n\n{guide.body}"])[0]
    blob = Chunk.objects.get(source_type="faq.document", source_id=guide.pk).vector
    stored = np.frombuffer(bytes(blob or b""), np.float32)
    assert float(stored @ vector) > 0.95  # one chunk: its mean is itself
    faq_link = client.get(
        f"/items/{faqs[RESET].pk}/similar", query_params={"k": 50}
    ).json()
    assert ("document", guide.pk) in {(r["kind"], r["id"]) for r in faq_link["results"]}


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/items/999999/similar", {}, 404, "There is no published FAQ 999999."),
        (
            "/items/999999/similar",
            {"kind": "document"},
            404,
            "There is no published document 999999.",
        ),
        ("/items/1/similar", {"kind": "video"}, 422, None),
        ("/items/1/similar", {"k": 0}, 422, None),
        ("/items/1/similar", {"k": 51}, 422, None),
        ("/items/1/similar", {"min_score": 2}, 422, None),
    ],
)
def test_bad_similar_requests_get_a_clear_4xx(path, params, status, detail):
    response = client.get(path, query_params=params)
    assert response.status_code == status
    if detail:
        assert response.json() == {"detail": detail}


def test_an_unpublished_item_has_no_similar_items(faqs):
    hidden = faqs[HIDDEN].pk
    response = client.get(f"/items/{hidden}/similar")
    assert response.status_code == 404
    assert response.json() == {"detail": f"There is no published FAQ {hidden}."}


# --- GET /api/collections/{slug}/duplicates -----------------------------------------


@pytest.fixture
def reader(collection) -> str:
    return api_key_create(name="r", permission="read", collection=collection)[1]


def test_duplicates_list_pairs_most_similar_first(faqs, reader):
    response = client.get(
        "/collections/help/duplicates",
        query_params={"threshold": 0.6},
        headers=bearer(reader),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    pairs = body.pop("pairs")
    questions = [RESET, RESET_TOO, FORGOT, HOURS, INVOICE]
    vectors = np.stack([stored(faqs[q]) for q in questions])
    scores = vectors @ vectors.T
    expected = sorted(
        (
            (float(scores[i, j]), questions[i], questions[j])
            for i in range(len(questions))
            for j in range(i + 1, len(questions))
            if scores[i, j] >= 0.6
        ),
        reverse=True,
    )
    assert body == {
        "collection": "help",
        "kind": "faq",
        "threshold": 0.6,
        "count": len(expected),
    }
    assert [(p["first"]["title"], p["second"]["title"]) for p in pairs] == [
        (a, b) for _, a, b in expected
    ]
    assert [p["score"] for p in pairs] == pytest.approx(
        [s for s, _, _ in expected], abs=1e-5
    )
    assert pairs[0]["first"] == {
        "id": faqs[RESET].pk,
        "title": RESET,
        "url": f"/faq/{faqs[RESET].pk}/",
    }


def test_duplicates_use_the_default_threshold_and_page(faqs, reader, settings):
    settings.DUPLICATE_THRESHOLD = 0.9
    first = client.get("/collections/help/duplicates", headers=bearer(reader)).json()
    assert first["threshold"] == 0.9
    assert [(p["first"]["id"], p["second"]["id"]) for p in first["pairs"]] == [
        (faqs[RESET].pk, faqs[RESET_TOO].pk)
    ]
    low = {"threshold": 0.3, "limit": 1, "offset": 1}
    page = client.get(
        "/collections/help/duplicates", query_params=low, headers=bearer(reader)
    ).json()
    every = client.get(
        "/collections/help/duplicates",
        query_params={"threshold": 0.3},
        headers=bearer(reader),
    ).json()
    assert page["count"] == every["count"] >= 2
    assert page["pairs"] == every["pairs"][1:2]


def test_duplicates_of_documents_by_their_mean_vectors(collection, committed, reader):
    with committed():
        for title, body in [
            ("Refunds", "We refund any order within thirty days of delivery."),
            ("Returns", "Orders can be refunded within 30 days after they arrive."),
            ("Shipping", "Parcels leave our warehouse every weekday at noon."),
        ]:
            Document.objects.create(collection=collection, title=title, body=body)
    body = client.get(
        "/collections/help/duplicates",
        query_params={"kind": "document", "threshold": 0.6},
        headers=bearer(reader),
    ).json()
    assert [(p["first"]["title"], p["second"]["title"]) for p in body["pairs"]] == [
        ("Refunds", "Returns")
    ]


def test_duplicates_follow_the_read_rules_of_the_content_api(faqs, reader):
    other = Collection.objects.create(name="Other", slug="other")
    elsewhere = api_key_create(name="o", permission="read", collection=other)[1]
    assert client.get("/collections/help/duplicates").status_code == 401
    denied = client.get("/collections/help/duplicates", headers=bearer(elsewhere))
    assert denied.status_code == 403
    missing = client.get("/collections/nope/duplicates", headers=bearer(reader))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "There is no collection 'nope'."}
    for params in ({"threshold": 1.5}, {"limit": 0}, {"kind": "video"}):
        response = client.get(
            "/collections/help/duplicates", query_params=params, headers=bearer(reader)
        )
        assert response.status_code == 422


def test_unpublished_items_are_never_duplicates(faqs, reader, committed):
    with committed():
        hidden = Faq.objects.get(pk=faqs[RESET_TOO].pk)
        hidden.published = False
        hidden.save()
    body = client.get(
        "/collections/help/duplicates",
        query_params={"threshold": 0.3},
        headers=bearer(reader),
    ).json()
    ids = {p[side]["id"] for p in body["pairs"] for side in ("first", "second")}
    assert ids and not ids & {faqs[RESET_TOO].pk, faqs[HIDDEN].pk}


# --- related questions on the pages -------------------------------------------------


def test_the_search_page_lists_related_questions_under_each_faq(client, faqs):
    html = client.get("/", {"q": "I lost my password", "kind": "faq"}).content.decode()
    first = html.index('<li class="result faq"')
    second = html.index('<li class="result faq"', first + 1)
    block = html[first:second]
    assert "Related questions" in block
    assert f'<a href="/faq/{faqs[RESET_TOO].pk}/">{RESET_TOO}</a>' in block
    assert HIDDEN not in html


def test_related_questions_take_the_same_queries_for_any_number_of_results(
    client, faqs, settings
):
    settings.RELATED_MIN_SCORE = 0.0  # every result has three
    counts = []
    for min_score, shown in ((0.9, 1), (-1, 5)):
        params = {"q": HOURS, "kind": "faq", "min_score": min_score}
        with CaptureQueriesContext(connection) as queries:
            page = client.get("/", params)
        assert page.content.decode().count("Related questions</h3>") == shown
        counts.append(len(queries))
    assert counts[0] == counts[1]
    ids = [faqs[q].pk for q in (RESET, HOURS, INVOICE)]
    with CaptureQueriesContext(connection) as queries:
        related = related_questions(faq_ids=ids)
    assert len(queries) == 3  # vectors, chunk owners and the published FAQs
    assert [len(related[pk]) for pk in ids] == [3, 3, 3]
    assert related[faqs[RESET].pk][0].title == RESET_TOO


def test_the_item_page_lists_related_questions(client, faqs):
    html = client.get(f"/faq/{faqs[RESET].pk}/").content.decode()
    assert "Related questions" in html
    assert f'<a href="/faq/{faqs[RESET_TOO].pk}/">{RESET_TOO}</a>' in html
    assert f">{HOURS}</a>" not in html  # below RELATED_MIN_SCORE
