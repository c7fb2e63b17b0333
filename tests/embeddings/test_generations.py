"""A model change without downtime (embeddings.generations): the content
re-embedded with another model beside the vectors served, then switched at once.

The other model is the packaged one with its hidden dimensions permuted
(tests.permuted): the same cosines between texts, so the same answers, but a
query encoded by one model against vectors of the other finds nonsense, with
cosines near 0. A search that mixed the generations would show it.
"""

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from embeddings import generations, services
from embeddings.encoders import encode_query, get_encoder
from embeddings.index import store
from embeddings.index.reader import reader
from embeddings.models import Chunk, Generation
from faq.models import Collection
from faq.search import SearchQuery, search
from tests.encoding import batch_tolerance

pytestmark = pytest.mark.django_db

FAQS = [
    ("How do I reset my password?", "Use the 'Forgot password' link."),
    ("Where can I download my invoices?", "Invoices are under Billing."),
    ("Can I export my contacts?", "Yes: Contacts, then Export as CSV."),
    ("How do I delete my account?", "Settings, Account, then Delete."),
    ("Which browsers are supported?", "The last two versions of each."),
]
QUERIES = ["I forgot my login credentials", "get a copy of my bills", "remove profile"]


@pytest.fixture
def faqs(make_faq, settings, another_model):
    settings.EMBEDDINGS_MODELS = [another_model]
    return [make_faq(question, answer) for question, answer in FAQS]


def answers(collection: Collection) -> dict[str, list[tuple[str, float]]]:
    """Each query's results, as (title, cosine)."""
    return {
        q: [
            (r.title, r.cosine)
            for r in search(SearchQuery(q=q, collection=collection.slug)).results
        ]
        for q in QUERIES
    }


def assert_same(found: dict, expected: dict) -> None:
    """The same best answer, and every answer's cosine as before: the permuted
    model makes the same sums in another order, which int8's rounding of its
    activations turns into cosines a few 1e-4 apart (near-ties may swap)."""
    int8 = settings.EMBEDDINGS_BACKEND == "onnx-int8"
    tolerance = 2e-3 if int8 else 2 * batch_tolerance()
    for q, results in expected.items():
        assert found[q][0][0] == results[0][0], q
        cosines = dict(found[q])
        assert cosines.keys() == dict(results).keys(), q
        for title, before in results:
            assert cosines[title] == pytest.approx(before, abs=tolerance), (q, title)


def served_model(collection: Collection) -> str:
    loaded = reader.get(collection.partition)
    assert loaded is not None
    return loaded.manifest.model


def test_search_serves_the_old_generation_whole_until_the_switch(
    faqs, collection, another_model, committed, client
):
    before = answers(collection)
    own = get_encoder().name
    assert served_model(collection) == own
    assert before[QUERIES[0]][0] == (FAQS[0][0], pytest.approx(0.6, abs=0.3))

    generations.start(collection.partition, another_model)
    assert generations.fill(collection.partition, limit=3) == 3
    assert not generations.switch(collection.partition)  # not every chunk has one
    health = client.get("/api/health/ready").json()
    left = Chunk.objects.count() - 3
    assert health["index"]["reembedding"] == [
        {"partition": collection.partition, "model": another_model, "left": left}
    ]
    assert_same(answers(collection), before)  # the old vectors, all of them
    assert served_model(collection) == own
    collection.refresh_from_db()
    assert collection.embedding_model == own

    while generations.fill(collection.partition, limit=3):
        pass
    with committed():  # its sync runs on commit
        assert generations.switch(collection.partition)
    assert served_model(collection) == another_model
    assert set(Chunk.objects.values_list("model_name", flat=True)) == {another_model}
    assert not Chunk.objects.exclude(next_vector=None).exists()
    assert not Generation.objects.exists()
    collection.refresh_from_db()
    assert collection.embedding_model == another_model
    # The queries are encoded with the new model now: the same answers, the same
    # cosines (a query of the old model would score these vectors near 0).
    assert_same(answers(collection), before)
    vector = encode_query(QUERIES[0], another_model)
    old = encode_query(QUERIES[0])
    assert abs(float(vector @ old)) < 0.3  # the two models' vectors: unrelated


def test_content_embedded_during_a_reembed_gets_both_vectors(
    faqs, collection, another_model, make_faq, committed
):
    generations.start(collection.partition, another_model)
    late = make_faq("Is there a mobile app?", "Yes, for iOS and Android.")
    chunks = Chunk.objects.filter(source_id=late.pk)
    assert {c.model_name for c in chunks} == {get_encoder().name}
    assert all(c.next_vector is not None for c in chunks)
    assert generations.left(collection.partition) == len(Chunk.objects.all()) - len(
        chunks
    )
    with committed():
        generations.run(collection.partition, another_model)
    question = "is there an app for my phone"
    results = search(SearchQuery(q=question, collection=collection.slug)).results
    assert results[0].title == "Is there a mobile app?"


def test_abort_forgets_the_next_generation_and_search_keeps_the_old(
    faqs, collection, another_model
):
    before = answers(collection)
    generations.start(collection.partition, another_model)
    generations.fill(collection.partition, limit=4)
    assert generations.abort(collection.partition)
    assert not Generation.objects.exists()
    assert not Chunk.objects.exclude(next_vector=None).exists()
    with pytest.raises(generations.GenerationError):
        generations.fill(collection.partition, limit=4)
    with pytest.raises(generations.GenerationError):
        generations.switch(collection.partition)
    services.index_sync(collection.partition)
    assert served_model(collection) == get_encoder().name
    assert_same(answers(collection), before)
    assert not generations.abort(collection.partition)  # none left


def test_a_batch_encoded_before_a_switch_is_encoded_again(
    faqs, collection, another_model, monkeypatch
):
    """A worker encoded a batch with the old model; the switch committed before
    it stored it: it must not store old vectors into the new generation."""
    late = Chunk.objects.create(
        source_type="faq.faq",
        source_id=faqs[0].pk,
        partition=collection.partition,
        field="answer",
        position=9,
        text="Passwords can also be reset by the support team.",
        content_hash="late",
    )
    encoded = services._encoded

    def switched_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = encoded(*args, **kwargs)
        generations.run(collection.partition, another_model)
        return found

    monkeypatch.setattr(services, "_encoded", switched_meanwhile)
    with pytest.raises(services.ModelSwitched):
        services.chunks_embed([late.pk])
    late.refresh_from_db()
    assert (late.status, late.attempts, late.vector) == ("pending", 0, None)
    monkeypatch.setattr(services, "_encoded", encoded)
    services.chunks_embed([late.pk])  # the task's retry
    late.refresh_from_db()
    assert (late.status, late.model_name) == ("embedded", another_model)


def test_rebuild_index_reembeds_with_another_model_and_aborts(
    faqs, collection, another_model, settings
):
    before = answers(collection)
    call_command("rebuild_index", "--reembed", "--model", another_model)
    assert served_model(collection) == another_model
    assert_same(answers(collection), before)
    collection.refresh_from_db()
    assert collection.embedding_model == another_model

    # And back to the site's own model, resumed after an abort part-way.
    own = get_encoder().name
    generations.start(collection.partition, own)
    generations.fill(collection.partition, limit=2)
    call_command("rebuild_index", "--abort")
    assert not Generation.objects.exists()
    call_command("rebuild_index", "--reembed", "--partition", collection.partition)
    assert served_model(collection) == own
    assert_same(answers(collection), before)

    settings.EMBEDDINGS_MODELS = []
    with pytest.raises(CommandError, match="name it in EMBEDDINGS_MODELS"):
        call_command("rebuild_index", "--reembed", "--model", another_model)
    with pytest.raises(CommandError, match="--model goes with --reembed"):
        call_command("rebuild_index", "--model", another_model)


def test_a_collection_of_a_model_the_site_cannot_load_is_refused(
    faqs, collection, another_model, settings, client
):
    call_command("rebuild_index", "--reembed", "--model", another_model)
    settings.EMBEDDINGS_MODELS = []  # the site dropped it before re-embedding back
    answer = client.get("/api/search", {"q": "password"})
    assert answer.status_code == 409
    assert f"name {another_model} in EMBEDDINGS_MODELS" in answer.json()["detail"]
    assert store.read_manifest(collection.partition).model == another_model
