"""A damaged or missing index file never stops a process: it serves what checks out
and the writer rebuilds the rest from the database. Chunks heal too: transient
errors spend no attempt, failed chunks are tried again, a re-save starts afresh."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from embeddings import services
from embeddings.index import reader as reader_module
from embeddings.index import store
from embeddings.index.reader import reader
from embeddings.models import Chunk
from faq.models import Faq
from tests.damage import DAMAGES, flip

pytestmark = pytest.mark.django_db
QUESTIONS = [
    ("How do I reset my password?", "Use the reset link on the sign-in page."),
    ("Where are my invoices?", "Under Billing, in your account settings."),
    ("Can I export my contacts?", "Yes: Contacts, then Export, as CSV."),
]


@pytest.fixture
def indexed(make_faq) -> str:
    """Three FAQs published twice (two versions on disk); the partition's name."""
    faqs = [make_faq(q, a) for q, a in QUESTIONS]
    partition = faqs[0].embedding_partition()
    services.index_rebuild(partition)
    return partition


def search_titles(partition: str, query: str) -> list[str]:
    from faq.search import SearchQuery, search

    return [r.title for r in search(SearchQuery(q=query, k=3)).results]


@pytest.fixture
def repairs(monkeypatch) -> list[str]:
    """Repairs the reader asks for (in tests a queued task would run at once)."""
    asked: list[str] = []
    monkeypatch.setattr(reader_module, "repair_request", asked.append)
    return asked


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_file_is_served_around_then_rebuilt_by_the_writer(
    indexed, index_dir, damage, repairs
):
    manifest = store.read_manifest(indexed)
    DAMAGES[damage](index_dir / indexed)
    reader.clear()  # a process starting now

    # It answers, from an older version or without the damaged part, and says so.
    assert search_titles(indexed, "I forgot my password")[0] == QUESTIONS[0][0]
    assert indexed in reader.problems
    assert repairs == [indexed]

    # Reconcile's check finds it and rebuilds from the database.
    rebuilt = services.index_sync(indexed, verify=True)
    assert rebuilt.version > manifest.version and rebuilt.count == 6
    reader.clear()
    assert search_titles(indexed, "export contacts")[0] == QUESTIONS[2][0]
    assert reader.problems == {}
    assert len(store.keywords_of(indexed)) == 6
    assert services.index_sync(indexed, verify=True) == rebuilt  # nothing more to do


def test_a_partition_with_no_version_that_checks_out_is_reported_not_served(
    indexed, index_dir, repairs
):
    for path in (index_dir / indexed).glob("vectors-*.faiss"):
        flip(path)
    reader.clear()
    assert reader.get(indexed) is None
    assert "does not match its manifest checksum" in reader.problems[indexed]
    assert search_titles(indexed, "password") == []  # answers, with nothing
    call_command("rebuild_index")  # a damaged manifest or file does not stop it
    reader.clear()
    assert search_titles(indexed, "password")[0] == QUESTIONS[0][0]


def test_a_change_applied_twice_leaves_one_keyword_document_per_chunk(indexed):
    """A writer killed between the keyword commit and the vector publish applies
    the same change again on its next sync."""
    chunk = Chunk.objects.filter(partition=indexed).first()
    with store.writer_lock(indexed):
        for _ in range(2):
            store.keywords_of(indexed).apply(added=[(chunk.pk, chunk.text)])
    assert len(store.keywords_of(indexed)) == 6


def test_the_writer_removes_what_a_dead_writer_left(indexed, index_dir):
    left = index_dir / indexed / ".vectors-00000009.faiss.4242.tmp"
    left.write_bytes(b"half a file")
    services.index_sync(indexed)
    assert not left.exists()


# --- chunks --------------------------------------------------------------------------


def test_an_error_of_one_batch_fails_it_alone_and_the_others_are_stored(
    settings, collection, monkeypatch
):
    settings.EMBEDDINGS_COMMIT_EVERY = 2
    with services.tasks_held():
        for question, answer in QUESTIONS:
            Faq.objects.create(collection=collection, question=question, answer=answer)
    real = services.get_encoder()

    class Poisoned:
        name, dimension = real.name, real.dimension

        def encode(self, texts: list[str]) -> np.ndarray:
            if any("invoices" in text for text in texts):
                raise ValueError("this text breaks the model")
            return real.encode(texts)

    ids = list(Chunk.objects.values_list("pk", flat=True))
    poisoned = set(
        Chunk.objects.filter(text__contains="invoices").values_list("pk", flat=True)
    )
    with pytest.raises(ValueError, match="breaks the model"):
        services.chunks_embed(ids, encoder=Poisoned())  # type: ignore[arg-type]
    # Only the batches with a poisoned text wait, charged one attempt each.
    waiting = set(Chunk.objects.filter(status="pending").values_list("pk", flat=True))
    assert poisoned <= waiting and len(waiting) <= 2 * len(poisoned)
    assert set(Chunk.objects.filter(pk__in=waiting).values_list("attempts")) == {(1,)}
    # The next delivery encodes them one at a time: only the poisoned still wait.
    with pytest.raises(ValueError):
        services.chunks_embed(ids, encoder=Poisoned())  # type: ignore[arg-type]
    left = Chunk.objects.exclude(status="embedded").values_list("pk", flat=True)
    assert set(left) == poisoned


def test_a_chunk_out_of_attempts_fails_then_reconcile_tries_it_again_later(
    settings, make_faq
):
    settings.EMBEDDINGS_MAX_ATTEMPTS, settings.EMBEDDINGS_RETRY_SECONDS = 2, 60
    with services.tasks_held():
        faq = make_faq(*QUESTIONS[0])
    chunks = Chunk.objects.filter(source_id=faq.pk)
    chunks.update(attempts=2)  # two workers died on it
    services.chunks_embed(list(chunks.values_list("pk", flat=True)))
    failed = chunks.first()
    assert (failed.status, failed.failures) == ("failed", 1)
    assert failed.last_error == "the worker stopped while embedding it 2 times"
    assert (
        timedelta(seconds=59) < failed.retry_at - timezone.now() < timedelta(seconds=61)
    )

    assert services.chunks_due() == []  # not yet
    chunks.update(retry_at=timezone.now())
    assert sorted(services.chunks_due()) == sorted(chunks.values_list("pk", flat=True))
    assert set(chunks.values_list("status", "attempts", "failures")) == {
        ("pending", 0, 1)
    }


def test_a_failed_chunk_saved_again_starts_afresh(make_faq, committed):
    faq = make_faq(*QUESTIONS[1])
    Chunk.objects.update(status="failed", attempts=5, failures=3, last_error="x")
    with committed():
        faq.save()  # its text unchanged: the same chunks, tried again now
    assert set(Chunk.objects.values_list("status", "attempts", "failures")) == {
        ("embedded", 1, 0)
    }


def test_reconcile_queues_a_pending_chunk_once_per_wait(make_faq):
    with services.tasks_held():
        make_faq(*QUESTIONS[2])
    Chunk.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert len(services.chunks_due(older_than_s=600)) == 2
    assert services.chunks_due(older_than_s=600) == []  # queued: it waits again
