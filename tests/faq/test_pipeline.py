"""Write, embed, index, search: the whole path, in-process (tasks run eagerly)."""

import numpy as np
import pytest
from django.core.management import call_command

from embeddings import services
from embeddings.encoders import get_encoder
from embeddings.index import store
from embeddings.index.reader import reader
from embeddings.models import Chunk
from faq.models import Document, Faq
from faq.search import SearchQuery, search

pytestmark = pytest.mark.django_db


def titles(q: str, **filters: object) -> list[str]:
    return [r.title for r in search(SearchQuery(q=q, **filters)).results]


def test_a_new_faq_becomes_searchable_by_meaning(make_faq):
    make_faq(
        "How do I reset my password?",
        "Use the 'Forgot password' link on the login page.",
    )
    make_faq(
        "Where can I download my invoices?", "Invoices are under Billing, then History."
    )
    assert titles("I forgot my login credentials") == [
        "How do I reset my password?",
        "Where can I download my invoices?",
    ]


def test_chunks_store_unit_float32_vectors_with_the_model_name(make_faq):
    faq = make_faq(
        "What payment methods do you accept?", "Visa, Mastercard and PayPal."
    )
    chunks = Chunk.objects.filter(source_id=faq.pk).order_by("position")
    assert [(c.field, c.status, c.model_name) for c in chunks] == [
        ("question", "embedded", "all-MiniLM-L6-v2"),
        ("answer", "embedded", "all-MiniLM-L6-v2"),
    ]
    vector = np.frombuffer(chunks[0].vector, dtype=np.float32)
    assert vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # A text's vector is its own, whatever it was encoded with.
    assert chunks[0].text == faq.question
    assert np.allclose(vector, get_encoder().encode([faq.question])[0], atol=1e-6)


def test_both_question_and_answer_are_searchable(make_faq):
    make_faq(
        "Can I change my plan?",
        "Yes. Upgrades to the Enterprise tier take effect at once.",
    )
    make_faq("Do you have a mobile app?", "There are apps for iOS and Android.")
    assert titles("enterprise tier upgrade", k=1) == ["Can I change my plan?"]
    result = search(SearchQuery(q="enterprise tier upgrade", k=1)).results[0]
    assert result.matched == "answer"


def test_unchanged_text_is_never_embedded_again(make_faq, committed, monkeypatch):
    faq = make_faq("How long is shipping?", "Three to five working days.")
    before = dict(Chunk.objects.filter(source_id=faq.pk).values_list("field", "pk"))
    encoded: list[str] = []
    original = type(get_encoder()).encode
    monkeypatch.setattr(
        type(get_encoder()),
        "encode",
        lambda self, texts: encoded.extend(texts) or original(self, texts),
    )
    with committed():
        faq.category = "Delivery"
        faq.save()
    assert encoded == []
    with committed():
        faq.answer = "One to two working days."
        faq.save()
    after = dict(Chunk.objects.filter(source_id=faq.pk).values_list("field", "pk"))
    assert after["question"] == before["question"]  # kept, with its vector
    assert after["answer"] != before["answer"]
    assert encoded == ["How long is shipping? One to two working days."]


def test_unpublished_and_deleted_items_leave_the_results(make_faq, committed):
    refund = make_faq("How do I get a refund?", "Write to support within 30 days.")
    make_faq("How do I cancel?", "Cancel any time from your account page.")
    assert "How do I get a refund?" in titles("money back")
    with committed():
        refund.published = False
        refund.save()
    assert "How do I get a refund?" not in titles("money back")
    assert not Chunk.objects.filter(source_id=refund.pk, source_type="faq.faq").exists()
    with committed():
        refund.published = True
        refund.save()
    assert "How do I get a refund?" in titles("money back")
    with committed():
        refund.delete()
    assert titles("money back") == ["How do I cancel?"]
    assert store.read_manifest(refund.embedding_partition()).count == 2


def test_a_long_document_is_chunked_and_returned_once(collection, committed):
    paragraphs = [
        f"Section {i}. The warehouse in city number {i} handles returns for region {i}."
        for i in range(120)
    ]
    paragraphs[100] = (
        "Section 100. Pets are welcome in the office on Fridays if they are calm."
    )
    with committed():
        doc = Document.objects.create(
            collection=collection,
            title="Company handbook",
            body="\n\n".join(paragraphs),
        )
    chunks = Chunk.objects.filter(source_id=doc.pk, source_type="faq.document")
    assert chunks.count() >= 5
    results = search(SearchQuery(q="can I bring my dog to work")).results
    assert [(r.kind, r.title) for r in results] == [("document", "Company handbook")]
    best = Chunk.objects.get(pk=results[0].chunk_id)
    assert "Pets are welcome" in best.text  # the best chunk, deep in the text
    snippet = results[0].snippet.removeprefix("… ").removesuffix(" …")
    assert snippet in " ".join(best.text.split())  # a passage of the best chunk


def test_search_filters_by_collection_kind_category_and_min_score(
    make_faq, collection, committed
):
    from faq.models import Collection

    other = Collection.objects.create(name="Other", slug="other")
    make_faq("How do I reset my password?", "Use the reset link.", category="Account")
    make_faq("How do I change my password?", "Go to settings.", collection=other)
    with committed():
        Document.objects.create(
            collection=collection,
            title="Password policy",
            body="At least 12 characters.",
        )
    query = "password"
    assert len(titles(query)) == 3
    assert titles(query, collection="other") == ["How do I change my password?"]
    assert titles(query, kind="document") == ["Password policy"]
    assert titles(query, category="Account") == ["How do I reset my password?"]
    cosines = sorted(
        (r.cosine for r in search(SearchQuery(q=query)).results), reverse=True
    )
    threshold = (cosines[0] + cosines[1]) / 2
    assert len(titles(query, min_score=threshold)) == 1


def test_embedding_twice_changes_nothing(make_faq):
    faq = make_faq("Is there a free trial?", "Yes, 14 days.")
    ids = list(Chunk.objects.filter(source_id=faq.pk).values_list("pk", flat=True))
    manifest = store.read_manifest(faq.embedding_partition())
    assert services.chunks_embed(ids) == {}
    assert (
        services.index_sync(faq.embedding_partition()) == manifest
    )  # nothing to publish


def test_failures_are_recorded_and_capped(make_faq, monkeypatch, settings):
    settings.EMBEDDINGS_MAX_ATTEMPTS = 2

    def broken(self, texts):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(type(get_encoder()), "encode", broken)
    with pytest.raises(RuntimeError):
        make_faq("Why?", "Because.")
    chunk = Chunk.objects.get(field="question")
    assert (chunk.status, chunk.attempts, chunk.last_error) == (
        "pending",
        1,
        "RuntimeError: model exploded",
    )
    with pytest.raises(RuntimeError):
        services.chunks_embed([chunk.pk])
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == ("failed", 2)


def test_a_chunk_a_worker_keeps_dying_on_is_given_up(collection, settings):
    settings.EMBEDDINGS_MAX_ATTEMPTS = 3
    faq = Faq.objects.create(collection=collection, question="Poison?", answer="Pill.")
    chunks = Chunk.objects.filter(source_id=faq.pk)
    chunks.update(attempts=3)  # three deliveries that never came back
    assert services.chunks_embed(list(chunks.values_list("pk", flat=True))) == {}
    assert set(chunks.values_list("status", flat=True)) == {"failed"}


def test_rebuild_index_restores_search_from_stored_vectors(make_faq, index_dir):
    make_faq("How do I export my data?", "Use Settings, then Export.")
    before = titles("download everything I have")
    for path in index_dir.rglob("*"):
        if path.is_file():
            path.unlink()
    reader.clear()
    assert titles("download everything I have") == []
    call_command("rebuild_index")
    assert titles("download everything I have") == before


def test_rebuild_with_reembed_encodes_everything_again(make_faq, monkeypatch):
    make_faq("How do I export my data?", "Use Settings, then Export.")
    encoded: list[str] = []
    original = type(get_encoder()).encode
    monkeypatch.setattr(
        type(get_encoder()),
        "encode",
        lambda self, texts: encoded.extend(texts) or original(self, texts),
    )
    call_command("rebuild_index", "--reembed")
    assert sorted(encoded) == sorted(Chunk.objects.values_list("text", flat=True))
    assert set(Chunk.objects.values_list("status", flat=True)) == {"embedded"}
    assert titles("download everything I have") == ["How do I export my data?"]


def test_reconcile_queues_what_was_left_pending(make_faq, collection):
    # Created with its message lost: no on-commit hook ran.
    faq = Faq.objects.create(
        collection=collection, question="Lost?", answer="Found again."
    )
    assert set(
        Chunk.objects.filter(source_id=faq.pk).values_list("status", flat=True)
    ) == {"pending"}
    call_command("reconcile")
    assert set(
        Chunk.objects.filter(source_id=faq.pk).values_list("status", flat=True)
    ) == {"embedded"}
    assert titles("Lost?") == ["Lost?"]
