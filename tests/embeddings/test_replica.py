"""A web host's replica of the indexes follows the change feed in the database.

The workers' side stores vectors and feed entries (``chunks_embed``, deletes); no
index of theirs is written here. Each test then plays the web host: its own
``INDEX_DIR``, brought in step by ``follow_once`` alone."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from embeddings import replica, services
from embeddings.encoders import encode_query
from embeddings.index import store
from embeddings.index.reader import reader
from embeddings.models import Change, Chunk
from faq.models import Faq

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(settings, tmp_path):
    """This test's web host: an INDEX_DIR of its own, nothing in it yet."""
    settings.INDEX_DIR = tmp_path / "web-host"
    settings.RECONCILE_INTERVAL = 3600  # no periodic full check unless a test asks
    reader.clear()
    return settings.INDEX_DIR


def add(collection, question: str, answer: str = "An answer.") -> Faq:
    """A FAQ saved and embedded as a worker would, writing no index."""
    with services.tasks_held():
        faq = Faq.objects.create(
            collection=collection, question=question, answer=answer
        )
    services.chunks_embed(services.pending_ids(partition=collection.partition))
    return faq


def found(collection, query: str, k: int = 3) -> list[int]:
    """FAQ ids of the host's nearest chunks to ``query``, best first."""
    reader.clear()  # what a process starting now would serve
    hits = reader.search(encode_query(query), partitions=[collection.partition], k=k)
    sources = dict(
        Chunk.objects.filter(pk__in=[i for i, _ in hits]).values_list("pk", "source_id")
    )
    return list(dict.fromkeys(sources[i] for i, _ in hits if i in sources))


def test_a_new_host_builds_from_the_stored_vectors_then_applies_each_change(
    host, collection
):
    refund = add(collection, "How do I get a refund?")
    add(collection, "How do I change my password?")
    assert not host.exists()  # the worker side wrote no index
    replica.follow_once()  # no state: everything built, position at the head
    manifest = store.read_manifest(collection.partition)
    assert manifest is not None and manifest.count == 4  # question and answer each
    assert found(collection, "money back please")[0] == refund.pk
    assert replica.lag()["entries"] == 0

    export = add(collection, "Can I export my contacts to a spreadsheet?")
    assert replica.lag()["entries"] == 2  # its two chunks, embedded
    assert replica.follow_once() == 2
    after = store.read_manifest(collection.partition)
    assert (after.version, after.count) == (manifest.version + 1, 6)
    assert found(collection, "download contacts as CSV")[0] == export.pk
    assert replica.lag() | {"seconds": 0} == {
        "position": replica._head(),
        "head": replica._head(),
        "entries": 0,
        "seconds": 0,
        "gaps": 0,
    }

    refund.delete()  # the chunks go, and two entries say so
    assert replica.follow_once() == 2
    assert store.read_manifest(collection.partition).count == 4
    assert refund.pk not in found(collection, "money back please", k=10)


def test_an_edit_replaces_the_old_text_in_both_legs(host, collection):
    faq = add(collection, "How do I reset my password?", "Use the account page.")
    replica.follow_once()
    (old_answer,) = Chunk.objects.filter(source_id=faq.pk, field="answer")
    with services.tasks_held():
        faq.answer = "Use the printer settings page."
        faq.save()
    services.chunks_embed(services.pending_ids(partition=collection.partition))
    replica.follow_once()
    (new_answer,) = Chunk.objects.filter(source_id=faq.pk, field="answer")
    assert new_answer.pk != old_answer.pk  # new text, new chunk
    reader.clear()
    loaded = reader.get(collection.partition)
    chunks = set(Chunk.objects.values_list("pk", flat=True))
    assert set(loaded.vectors.ids().tolist()) == chunks
    assert len(loaded.keywords) == len(chunks)
    matched = reader.match("printer", partitions=[collection.partition], k=5)
    assert [i for i, _, _ in matched] == [new_answer.pk]
    assert not reader.match("account", partitions=[collection.partition], k=5)


def test_an_entry_committed_after_a_later_one_was_read_is_not_missed(host, collection):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    position = replica.FeedState.read().position
    late = add(collection, "Where is my invoice?")
    late_chunks = list(
        Chunk.objects.filter(source_id=late.pk).values_list("pk", flat=True)
    )
    # As if its transaction took ids position+1.. and committed after another
    # transaction's entry (position+10) had been read.
    Change.objects.filter(pk__gt=position).delete()
    Change.objects.create(
        id=position + 10, partition=collection.partition, chunk_id=10**9
    )
    assert replica.follow_once() == 1
    state = replica.FeedState.read()
    assert (state.position, sorted(state.gaps)) == (
        position + 10,
        list(range(position + 1, position + 10)),
    )
    assert late.pk not in found(collection, "invoice")
    Change.objects.bulk_create(
        Change(id=position + 1 + i, partition=collection.partition, chunk_id=pk)
        for i, pk in enumerate(late_chunks)
    )
    assert replica.follow_once() == 2
    assert found(collection, "invoice")[0] == late.pk
    assert len(replica.FeedState.read().gaps) == 9 - len(late_chunks)


def test_gaps_are_waited_for_only_so_long(settings):
    settings.INDEX_FEED_GAP_SECONDS = 60
    state = replica.FeedState(position=10)
    replica._advance(state, [13, 15], now=1000.0)
    assert (state.position, sorted(state.gaps)) == (15, [11, 12, 14])
    replica._advance(state, [12], now=1030.0)
    assert sorted(state.gaps) == [11, 14]
    replica._advance(state, [], now=1061.0)  # a rolled-back transaction's ids
    assert state.gaps == {}


def test_a_dropped_partition_goes_from_the_host_too(host, collection):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    assert collection.partition in store.partitions()
    services.partition_drop(collection.partition)
    replica.follow_once()
    assert collection.partition not in store.partitions()


def test_a_host_too_far_behind_rebuilds_instead(host, collection, settings, caplog):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    settings.INDEX_FEED_REBUILD_ABOVE = 3
    for question in ("Where is my invoice?", "Can I pay by card?"):
        add(collection, question)
    caplog.set_level("INFO", logger="embeddings.replica")
    replica.follow_once()
    assert "too far behind the feed" in caplog.text
    assert store.read_manifest(collection.partition).count == 6
    assert replica.FeedState.read().position == replica._head()


def test_a_host_away_longer_than_the_feed_is_kept_rebuilds(
    host, collection, settings, caplog
):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    state = replica.FeedState.read()
    state.polled = time.time() - settings.INDEX_FEED_KEEP_SECONDS
    state.write()
    caplog.set_level("INFO", logger="embeddings.replica")
    replica.follow_once()
    assert "too far behind the feed" in caplog.text


def test_the_emptied_index_dir_of_a_host_is_rebuilt(host, collection):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    store.remove_partition(collection.partition)
    (host / replica.STATE).unlink()
    replica.follow_once()
    assert store.read_manifest(collection.partition).count == 2


def test_a_damage_a_reader_found_is_repaired_by_the_hosts_follower(
    host, collection, settings
):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    manifest = store.read_manifest(collection.partition)
    path = store.partition_dir(collection.partition) / manifest.file
    path.write_bytes(b"damaged" + path.read_bytes()[7:])
    settings.INDEX_FOLLOW = True  # readers ask this host's follower
    reader.clear()
    reader.get(collection.partition)  # finds it damaged, serves around it
    assert list(host.glob(".repair-*"))
    replica.repairs_due()
    assert not list(host.glob(".repair-*"))
    assert store.read_manifest(collection.partition).version > manifest.version


def test_old_entries_are_pruned(collection, settings):
    add(collection, "How do I get a refund?")
    Change.objects.update(created_at=timezone.now() - timedelta(days=8))
    add(collection, "Where is my invoice?")
    assert replica.prune() == 2
    assert Change.objects.count() == 2


def test_a_partition_of_another_model_holds_up_no_other(host, collection, caplog):
    replica.follow_once()
    stranger = Chunk.objects.create(
        source_type="other.item", source_id=1, partition="other-model-partition",
        field="body", position=0, text="from elsewhere", content_hash="0" * 64,
        status=Chunk.Status.EMBEDDED, vector=bytes(4 * 384), model_name="another-model",
    )  # fmt: skip
    Change.objects.create(partition=stranger.partition, chunk_id=stranger.pk)
    refund = add(collection, "How do I get a refund?")
    replica.follow_once()
    assert "another-model" in caplog.text
    assert found(collection, "money back please")[0] == refund.pk
    assert replica.lag()["entries"] == 0


def test_readiness_reports_how_far_the_host_is_behind(
    host, collection, settings, client
):
    add(collection, "How do I get a refund?")
    replica.follow_once()
    add(collection, "Where is my invoice?")  # two entries not applied yet
    settings.INDEX_FOLLOW = True
    report = client.get("/api/health/ready").json()
    assert report["index"]["replica"] | {"seconds": 0} == {
        "position": replica._head() - 2,
        "head": replica._head(),
        "entries": 2,
        "seconds": 0,
        "gaps": 0,
    }
    settings.METRICS_CACHE_SECONDS = 0
    metrics = client.get("/metrics").content.decode()
    assert "searchsite_replica_lag_entries 2.0" in metrics
    assert "searchsite_replica_lag_seconds" in metrics
    settings.INDEX_FOLLOW = False
    assert client.get("/api/health/ready").json()["index"]["replica"] is None
