"""Search modes, fusion, highlighting, grouping and thresholds."""

import pytest

from faq.models import Collection, Document
from faq.search import MODES, SearchQuery, search
from faq.snippets import best_passage, highlight

pytestmark = pytest.mark.django_db


def titles(q: str, **options: object) -> list[str]:
    return [r.title for r in search(SearchQuery(q=q, **options)).results]


@pytest.fixture
def faqs(make_faq):
    make_faq("How do I reset my password?", "Use the reset link on the login page.")
    make_faq("What does error E-4417 mean?", "The card issuer declined the payment.")
    make_faq("Can I change my billing address?", "Yes, under Account, then Billing.")


def test_each_mode_finds_what_it_is_good_at(faqs):
    # A paraphrase with no shared word: meaning wins.
    assert titles("I can't remember my login credentials", mode="dense")[0] == (
        "How do I reset my password?"
    )
    # A code the model has never seen: keywords win.
    assert titles("E-4417", mode="keyword")[0] == "What does error E-4417 mean?"
    # Hybrid gets both right.
    assert titles("I can't remember my login credentials", mode="hybrid")[0] == (
        "How do I reset my password?"
    )
    assert titles("E-4417", mode="hybrid")[0] == "What does error E-4417 mean?"


def test_every_result_carries_both_legs_and_an_explanation(faqs):
    [first, *_] = search(SearchQuery(q="reset password", explain=True)).results
    assert (first.dense_rank, first.keyword_rank) == (1, 1)
    assert first.keyword_score is not None and first.keyword_score > 0
    coverage = float(first.explanation.split("*")[1])
    assert first.explanation == f"boost: {first.cosine:.4f} + 0.15*{coverage:.4f}"
    assert first.score == pytest.approx(first.cosine + 0.15 * coverage, abs=1e-3)


def test_keyword_mode_embeds_the_query_only_when_a_cosine_is_asked_for(client, faqs):
    from embeddings.encoders import encode_query

    def api(**params: object) -> tuple[dict, int]:
        encode_query.cache_clear()
        found = client.get("/api/search", {"q": "E-4417", "mode": "keyword", **params})
        return found.json(), encode_query.cache_info().misses

    found, encoded = api()
    assert (
        encoded == 0 and found["results"][0]["title"] == "What does error E-4417 mean?"
    )
    assert found["results"][0]["cosine"] is None and found["confident"] is None
    assert found["contact_url"] is None  # nobody can say the answer is not confident
    for asked in ({"cosines": "true"}, {"min_score": "-1"}):
        found, encoded = api(**asked)
        assert encoded == 1 and isinstance(found["results"][0]["cosine"], float)
        assert isinstance(found["confident"], bool)
    # The page judges confidence, and so has its cosines.
    encode_query.cache_clear()
    client.get("/", {"q": "E-4417", "mode": "keyword"})
    assert encode_query.cache_info().misses == 1


@pytest.mark.parametrize("fusion", ["boost", "relative", "rrf", "distribution"])
def test_fusion_can_be_chosen_per_request(faqs, fusion):
    response = search(SearchQuery(q="reset password", fusion=fusion, explain=True))
    assert response.results[0].title == "How do I reset my password?"
    assert response.results[0].explanation.startswith(f"{fusion}: ")


@pytest.mark.parametrize("mode", MODES)
def test_min_score_is_a_cosine_threshold_in_every_mode(faqs, mode):
    results = search(SearchQuery(q="reset my password", mode=mode)).results
    threshold = (results[0].cosine + results[1].cosine) / 2 if len(results) > 1 else 0.5
    kept = search(SearchQuery(q="reset my password", mode=mode, min_score=threshold))
    assert [r.title for r in kept.results] == ["How do I reset my password?"]
    assert all(r.cosine >= threshold for r in kept.results)


@pytest.mark.parametrize("mode", MODES)
def test_a_20_chunk_document_returns_once_in_every_mode(collection, committed, mode):
    sections = [
        f"Section {i}. Our warehouse in region {i} ships parcels and handles returns."
        for i in range(400)
    ]
    with committed():
        doc = Document.objects.create(
            collection=collection, title="Logistics handbook", body=" ".join(sections)
        )
    assert doc.embedding_passages()
    from embeddings.models import Chunk

    assert Chunk.objects.filter(source_id=doc.pk).count() >= 20
    found = search(SearchQuery(q="returns warehouse parcels", mode=mode, k=10))
    assert [r.title for r in found.results] == ["Logistics handbook"]


def test_a_pdf_result_names_its_page(collection, committed):
    pages = ["Installing the app.", "Pairing the speaker with your phone.", "Warranty."]
    with committed():
        Document.objects.create(
            collection=collection, title="Speaker manual", body="\f".join(pages)
        )
    [result] = search(SearchQuery(q="connect speaker to my phone", k=1)).results
    assert result.matched == "page 2"
    assert result.snippet == "Pairing the speaker with your phone."


def test_keyword_index_follows_edits_and_deletes(make_faq, committed):
    faq = make_faq("What is the zorblax setting?", "It controls the frobnicator.")
    assert titles("zorblax", mode="keyword") == ["What is the zorblax setting?"]
    with committed():
        faq.question = "What is the turbo setting?"
        faq.save()
    assert titles("zorblax", mode="keyword") == []
    assert titles("turbo", mode="keyword") == ["What is the turbo setting?"]
    with committed():
        faq.delete()
    assert titles("turbo", mode="keyword") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<script>alert("password")</script>',
            "&lt;script&gt;alert(&quot;<mark>password</mark>&quot;)&lt;/script&gt;",
        ),
        (
            '" onmouseover="alert(1)" data-password="x',
            "&quot; onmouseover=&quot;alert(1)&quot; "
            "data-<mark>password</mark>=&quot;x",
        ),
        (
            "Resetting &amp; passwords",
            "<mark>Resetting</mark> &amp;amp; <mark>passwords</mark>",
        ),
        ("<mark>not ours</mark>", "&lt;mark&gt;not ours&lt;/mark&gt;"),
    ],
)
def test_highlighting_escapes_first_then_marks_stems(text, expected):
    assert highlight(text, ["password", "reset"]) == expected


def test_hostile_stored_text_is_escaped_on_the_page(client, make_faq):
    make_faq('<img src=x onerror="alert(1)"> password?', "<b>Reset</b> & retry.")
    html = client.get("/", {"q": "password reset"}).content.decode()
    assert "<img src=x" not in html and "<b>Reset</b>" not in html
    assert (
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <mark>password</mark>?" in html
    )
    assert "&lt;b&gt;<mark>Reset</mark>&lt;/b&gt; &amp; retry." in html


def test_the_snippet_is_the_passage_that_answers(collection):
    text = (
        "Our company was founded in 1999. We sell speakers. "
        "To pair a speaker, hold the button for five seconds. "
        "Returns are accepted for thirty days."
    )
    passage = best_passage(" ".join([text] * 3), "how do I pair the speaker")
    assert passage.startswith("… To pair a speaker, hold the button")


def test_the_page_says_when_no_answer_is_confident(client, make_faq):
    make_faq("How do I reset my password?", "Use the reset link.")
    html = client.get("/", {"q": "best pizza toppings in naples"}).content.decode()
    assert "No confident answer" in html
    assert "How do I reset my password?" in html  # the nearest, still shown
    html = client.get("/", {"q": "reset my password"}).content.decode()
    assert "No confident answer" not in html


def test_the_threshold_is_the_collections(client, make_faq, collection):
    make_faq("How do I reset my password?", "Use the reset link.")
    Collection.objects.filter(pk=collection.pk).update(confidence_threshold=0.99)
    html = client.get("/", {"q": "reset my password"}).content.decode()
    assert "No confident answer" in html
