"""Writes: chunk sources, embed chunks, keep each partition's index in step."""

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError, models, transaction
from django.db.models import F
from django.utils import timezone

from embeddings.chunking import chunk_text, content_hash
from embeddings.encoders import (
    Encoder,
    EncoderUnavailable,
    LocalEncoder,
    ModelUnavailable,
    get_encoder,
)
from embeddings.index import store
from embeddings.index.base import IndexCorrupt
from embeddings.models import Change, Chunk, Generation, vector_bytes, vectors_decode
from embeddings.provenance import partition_check, partition_provenance
from embeddings.queueing import enqueue, enqueue_on_commit
from embeddings.signals import chunks_indexed, partition_embedded
from embeddings.sources import Embeddable, source_type

logger = logging.getLogger(__name__)
RETRY_MAX_SECONDS = 24 * 3600  # the longest a failed chunk waits to be tried again


# --- chunks ---------------------------------------------------------------------


def source_chunks(
    instance: Embeddable, *, encoder: Encoder | None = None
) -> list[tuple[str, str]]:
    """The (field, text) chunks a source should have now, in order.

    ``EMBEDDINGS_MAX_CHUNKS`` (0: no limit) keeps only the first windows of each
    passage; 1 indexes exactly what the model reads of a whole text when it
    truncates, as the published benchmark figures do.
    """
    encoder = encoder or get_encoder()
    overlap = settings.EMBEDDINGS_CHUNK_OVERLAP
    limit = settings.EMBEDDINGS_MAX_CHUNKS or None
    return [
        (passage.field, text)
        for passage in instance.embedding_passages()
        for text in chunk_text(
            passage.text, encoder=encoder, prefix=passage.prefix, overlap=overlap
        )[:limit]
    ]


class _Pretokenized(Encoder):
    """An encoder whose word pieces of known texts were found in one batched call:
    chunking an import batch then tokenises on every core at once instead of one
    text at a time (it was half of an import's time)."""

    def __init__(self, encoder: Encoder, texts: Iterable[str]) -> None:
        self.name, self.dimension = encoder.name, encoder.dimension
        self.max_tokens = encoder.max_tokens
        self._encoder = encoder
        unique = list(dict.fromkeys(text.strip() for text in texts))
        self._spans = dict(zip(unique, _spans_batch(encoder, unique), strict=True))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        spans = self._spans.get(text)
        return self._encoder.token_spans(text) if spans is None else spans


def _spans_batch(encoder: Encoder, texts: list[str]) -> list[list[tuple[int, int]]]:
    if not isinstance(encoder, LocalEncoder):
        return [encoder.token_spans(text) for text in texts]
    encodings = encoder.tokenizer.encode_batch(texts, add_special_tokens=False)
    return [encoding.offsets for encoding in encodings]


def _chunker(instances: Sequence[Embeddable]) -> Encoder:
    texts = (
        text
        for instance in instances
        if instance.embedding_enabled()
        for passage in instance.embedding_passages()
        for text in (passage.text, passage.prefix)
    )
    return _Pretokenized(get_encoder(), texts)


def source_sync(instance: models.Model) -> None:
    sources_sync([instance])


def sources_sync(instances: Sequence[models.Model]) -> None:
    """Make the sources' chunk rows match their text; queue what needs embedding.

    Chunks whose text is unchanged keep their row and vector; only new text is
    embedded. Runs inside the caller's transaction; tasks go out on commit.
    """
    if not instances:
        return
    kind = source_type(instances[0])
    existing: dict[int, dict[str, list[Chunk]]] = {}
    for chunk in Chunk.objects.filter(
        source_type=kind, source_id__in=[i.pk for i in instances]
    ).only(
        "pk", "source_id", "content_hash", "field", "position", "partition", "status"
    ):
        existing.setdefault(chunk.source_id, {}).setdefault(
            chunk.content_hash, []
        ).append(chunk)
    chunker = _chunker(cast(Sequence[Embeddable], instances))
    created: list[Chunk] = []
    moved: list[Chunk] = []
    stale: list[Chunk] = []
    retried: list[int] = []  # failed, and saved again: tried afresh
    moved_from: dict[int, str] = {}  # chunks moved to another partition
    reindex: set[str] = set()
    for instance in instances:
        assert isinstance(instance, Embeddable) and source_type(instance) == kind
        by_hash = existing.get(instance.pk, {})
        partition = instance.embedding_partition()
        wanted = (
            source_chunks(instance, encoder=chunker)
            if instance.embedding_enabled()
            else []
        )
        for position, (field, text) in enumerate(wanted):
            digest = content_hash(text)
            place = (field, position, partition)
            if not by_hash.get(digest):
                chunk = Chunk(source_type=kind, source_id=instance.pk, text=text)
                chunk.content_hash = digest
                created.append(chunk)
            else:
                chunk = by_hash[digest].pop()
                if chunk.status == Chunk.Status.FAILED:
                    retried.append(chunk.pk)
                if (chunk.field, chunk.position, chunk.partition) == place:
                    continue
                if chunk.partition != partition:  # moved to another collection
                    reindex |= {chunk.partition, partition}
                    moved_from[chunk.pk] = chunk.partition
                moved.append(chunk)
            chunk.field, chunk.position, chunk.partition = place
        stale.extend(chunk for chunks in by_hash.values() for chunk in chunks)
    reindex.update(chunk.partition for chunk in stale)
    feed_add((chunk.partition, chunk.pk) for chunk in stale)
    feed_add(  # out of the collection it was in, into the other
        (place, chunk.pk)
        for chunk in moved
        if chunk.pk in moved_from
        for place in (moved_from[chunk.pk], chunk.partition)
    )
    Chunk.objects.filter(pk__in=[chunk.pk for chunk in stale]).delete()
    Chunk.objects.bulk_update(moved, ["field", "position", "partition"], batch_size=500)
    Chunk.objects.bulk_create(created, batch_size=500)
    Chunk.objects.filter(pk__in=retried).update(**AFRESH)
    index_sync_on_commit(reindex)
    _on_commit_embed([chunk.pk for chunk in created] + retried)


# A chunk to be embedded as if new (a failed one saved again, or re-embedded).
AFRESH = {
    "status": Chunk.Status.PENDING,
    "attempts": 0,
    "failures": 0,
    "retry_at": None,
    "last_error": "",
}


def source_remove(instance: models.Model) -> None:
    chunks = Chunk.objects.filter(
        source_type=source_type(instance), source_id=instance.pk
    )
    rows = list(chunks.values_list("partition", "pk"))
    touched = {partition for partition, _ in rows}
    feed_add(rows)
    chunks.delete()
    index_sync_on_commit(touched)


_held = threading.local()


@contextlib.contextmanager
def tasks_held() -> Iterator[None]:
    """Queue nothing inside: the caller embeds and indexes in-process itself."""
    _held.on = True
    try:
        yield
    finally:
        _held.on = False


def _on_commit_embed(chunk_ids: list[int]) -> None:
    from embeddings.tasks import embed_chunks

    if getattr(_held, "on", False):
        return

    batch = settings.EMBEDDINGS_TASK_BATCH
    for start in range(0, len(chunk_ids), batch):
        enqueue_on_commit(embed_chunks, chunk_ids[start : start + batch])


def index_sync_on_commit(partitions: Iterable[str]) -> None:
    from embeddings.tasks import sync_index

    if getattr(_held, "on", False):
        return

    for partition in sorted(set(partitions)):
        enqueue_on_commit(sync_index, partition)


# --- embedding --------------------------------------------------------------------


class ModelSwitched(Exception):
    """A partition's vectors were switched to another model while a batch of it
    was being encoded: the batch is encoded again."""


# Errors a later try can outlive: the database, the broker or a remote encoder
# away, a model switched under a batch. They neither count against a chunk's
# attempts nor fail it.
TRANSIENT = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
    EncoderUnavailable,
    ModelSwitched,
)


def chunks_index(chunk_ids: list[int]) -> None:
    """Embed the pending chunks among ``chunk_ids`` and publish them: those embedded
    before a later batch failed too."""
    embedded: dict[str, list[int]] = {}
    try:
        chunks_embed(chunk_ids, into=embedded)
    finally:
        for partition, ids in sorted(embedded.items()):
            index_sync(partition)
            chunks_indexed.send(sender=Chunk, partition=partition, chunk_ids=ids)
            if provenance := partition_provenance(partition):
                model, dimension = provenance
                partition_embedded.send(
                    sender=Chunk, partition=partition, model=model, dimension=dimension
                )


def chunks_embed(
    chunk_ids: list[int],
    *,
    encoder: Encoder | None = None,
    into: dict[str, list[int]] | None = None,
) -> dict[str, list[int]]:
    """Embed the pending chunks among ``chunk_ids``, each by its partition's model
    (``encoder`` in place of the process's for its model); return their ids by
    partition (also gathered in ``into`` as each
    batch is stored, so that a caller keeps what was done before an error).

    Safe to run twice: only pending rows are read and written, and a chunk's text
    never changes under its id. Vectors are stored every ``EMBEDDINGS_COMMIT_EVERY``
    chunks, and a batch is charged an attempt only while it is being encoded: a
    worker killed mid-task loses one batch's work, and only that batch's chunks
    count it. Chunks a worker already died on are encoded one at a time, so that
    one text that kills it fails alone.
    """
    done = {} if into is None else into
    pending = Chunk.objects.filter(pk__in=chunk_ids, status=Chunk.Status.PENDING)
    _fail_exhausted(pending)
    chunks = list(pending.only("pk", "text", "partition", "attempts", "failures"))
    # Similar lengths in one batch waste less on padding.
    chunks.sort(key=lambda chunk: len(chunk.text))
    failure: Exception | None = None
    for batch in _embedding_batches(chunks):
        try:
            _embed_batch(batch, encoder)
        except TRANSIENT:
            raise  # everything else waits too: retried with backoff
        except Exception as error:  # this batch's own: the others go on
            failure = failure or error
            continue
        for chunk in batch:
            done.setdefault(chunk.partition, []).append(chunk.pk)
    if failure is not None:
        raise failure
    return done


def _fail_exhausted(pending: Any) -> None:
    """Out of attempts without a recorded failure: the worker died on it each time."""
    cap = settings.EMBEDDINGS_MAX_ATTEMPTS
    exhausted = list(pending.filter(attempts__gte=cap).values_list("pk", flat=True))
    if exhausted:
        _chunks_fail(exhausted, f"the worker stopped while embedding it {cap} times")


def _embedding_batches(chunks: list[Chunk]) -> Iterator[list[Chunk]]:
    suspects = [c for c in chunks if c.attempts or c.failures]
    for chunk in suspects:
        yield [chunk]
    healthy = [c for c in chunks if not (c.attempts or c.failures)]
    step = settings.EMBEDDINGS_COMMIT_EVERY
    for start in range(0, len(healthy), step):
        yield healthy[start : start + step]


EMBEDDED_FIELDS = [
    "vector", "model_name", "next_vector", "status", "last_error", "updated_at"
]  # fmt: skip


def _embed_batch(chunks: list[Chunk], encoder: Encoder | None) -> None:
    """Encode and store a batch: each chunk by its partition's model, and by the
    model of the partition's next generation too while there is one."""
    ids = [chunk.pk for chunk in chunks]
    Chunk.objects.filter(pk__in=ids).update(
        attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    partitions = {chunk.partition for chunk in chunks}
    try:
        encoded = _encoded(chunks, _models_wanted(partitions), encoder)
    except TRANSIENT as error:
        _chunks_wait(ids, error)
        raise
    except Exception as error:
        _chunks_failed_by(ids, error)
        raise
    now = timezone.now()  # when it was embedded: the throughput metrics count it
    try:
        with transaction.atomic():
            # Locked: a generation's switch waits for this batch, or this batch
            # sees what the switch made.
            wanted = _models_wanted(partitions, lock=True)
            for row, chunk in enumerate(chunks):
                model, upcoming = wanted[chunk.partition]
                if (row, model) not in encoded:
                    raise ModelSwitched(f"{chunk.partition} is now of {model}")
                chunk.vector = vector_bytes(encoded[row, model])
                chunk.model_name = model
                following = encoded.get((row, upcoming)) if upcoming else None
                chunk.next_vector = (
                    None if following is None else vector_bytes(following)
                )
                chunk.status = Chunk.Status.EMBEDDED
                chunk.last_error = ""
                chunk.updated_at = now
            Chunk.objects.bulk_update(chunks, EMBEDDED_FIELDS, batch_size=500)
            feed_add((chunk.partition, chunk.pk) for chunk in chunks)
            if settings.VECTOR_BACKEND == "pgvector":  # the vectors every host searches
                _pg_store(chunks)
    except ModelSwitched as error:
        _chunks_wait(ids, error)
        raise


def _models_wanted(
    partitions: set[str], *, lock: bool = False
) -> dict[str, tuple[str, str | None]]:
    """Each partition's model, and its next generation's (None: none)."""
    generations = Generation.objects.filter(partition__in=partitions)
    if lock:
        generations = generations.select_for_update()
    upcoming = dict(generations.values_list("partition", "model"))
    return {p: (partition_check(p), upcoming.get(p)) for p in partitions}


def _encoded(
    chunks: list[Chunk],
    wanted: dict[str, tuple[str, str | None]],
    encoder: Encoder | None,
) -> dict[tuple[int, str], np.ndarray]:
    """Each chunk's vector by every model its partition wants, keyed (row, model).
    ``encoder`` stands in for its own model; a next generation's model this
    process cannot load is left to the generation's run to fill."""
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        model, upcoming = wanted[chunk.partition]
        for name in {model, upcoming} - {None}:
            rows.setdefault(cast(str, name), []).append(row)
    encoded: dict[tuple[int, str], np.ndarray] = {}
    for model, batch in rows.items():
        if encoder is not None and encoder.name == model:
            by = encoder
        else:
            try:
                by = get_encoder(model)
            except ModelUnavailable:  # only a next generation's (partition_check)
                continue
        matrix = by.encode([chunks[r].text for r in batch])
        encoded |= {(r, model): vector for r, vector in zip(batch, matrix, strict=True)}
    return encoded


def _pg_store(chunks: list[Chunk]) -> None:
    by_partition: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_partition.setdefault(chunk.partition, []).append(chunk)
    for partition, rows in by_partition.items():
        matrix = vectors_decode([cast(bytes, chunk.vector) for chunk in rows])
        index = store.pg_index(partition, matrix.shape[1])
        index.add(np.asarray([chunk.pk for chunk in rows], np.int64), matrix)


def _message(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def _chunks_wait(ids: list[int], error: Exception) -> None:
    """A transient error: the attempt is given back and the chunks stay pending
    (the task's retries and reconcile try them again). Best effort: the database
    may be what failed."""
    with contextlib.suppress(*TRANSIENT):
        Chunk.objects.filter(pk__in=ids, attempts__gt=0).update(
            attempts=F("attempts") - 1, last_error=_message(error)
        )
    logger.warning("embedding %d chunks must wait: %s", len(ids), _message(error))


def _chunks_failed_by(ids: list[int], error: Exception) -> None:
    """An error of the chunks' own: it counts, and fails them at the cap."""
    message = _message(error)
    Chunk.objects.filter(pk__in=ids).update(last_error=message)
    cap = settings.EMBEDDINGS_MAX_ATTEMPTS
    exhausted = Chunk.objects.filter(pk__in=ids, attempts__gte=cap)
    _chunks_fail(list(exhausted.values_list("pk", flat=True)), message)
    logger.warning("embedding %d chunks failed: %s", len(ids), message)


def _chunks_fail(ids: list[int], message: str) -> None:
    """Fail the chunks, each to be tried again later than its last failure."""
    if not ids:
        return
    now = timezone.now()
    base = settings.EMBEDDINGS_RETRY_SECONDS
    for failures in set(
        Chunk.objects.filter(pk__in=ids).values_list("failures", flat=True)
    ):
        wait = min(base * 2**failures, RETRY_MAX_SECONDS)
        Chunk.objects.filter(pk__in=ids, failures=failures).update(
            status=Chunk.Status.FAILED,
            failures=failures + 1,
            retry_at=now + timedelta(seconds=wait),
            last_error=message,
        )


def feed_add(changes: Iterable[tuple[str, int | None]]) -> None:
    """Tell every web host's replica that these (partition, chunk id) changed; a
    chunk id of None: the whole partition. Call in the change's transaction."""
    Change.objects.bulk_create(
        [Change(partition=p, chunk_id=chunk_id) for p, chunk_id in changes],
        batch_size=1000,
    )


# --- index ----------------------------------------------------------------------------


def index_sync(partition: str, *, verify: bool = False) -> store.Manifest | None:
    """Apply added and removed chunks of a partition to its index and publish it.

    With ``verify`` (reconcile's, and a reader's repair request) every published
    file is checked against the manifest first: the vectors are always, as they
    are read. Damage of any kind is logged and the partition rebuilt from the
    database, the truth, with a version above every one on disk.
    """
    model = partition_check(partition)  # one this process cannot load is left
    with store.writer_lock(partition):
        published = _published(partition, model, verify=verify)
        if published is None:
            return _index_build(partition, model=model)
        manifest, index, _ = published
        return _index_update(partition, manifest, index, model=model)


def _published(
    partition: str, model: str, *, verify: bool = False
) -> tuple[store.Manifest, store.Dense, store.Sources | None] | None:
    """The published version to change, with its sources (None: none kept); None
    when it must be built anew: none, damaged (logged), of another model, or
    without its keyword index. Call with the writer lock held."""
    if left := store.temp_files_remove(partition):
        logger.warning("index %s: removed %d leftover temp files", partition, left)
    try:
        manifest, index = store.load_published(partition)
        if manifest is None or index is None:
            return None
        if verify:
            _verify(partition, manifest)
        sources = None
        if manifest.sources:
            path = store.partition_dir(partition) / manifest.sources
            sources = store.Sources.load(path, manifest.sources_checksum)
    except IndexCorrupt as error:
        logger.error("index %s is damaged (%s): rebuilding it", partition, error)
        return None
    if manifest.model != model or not _has_keywords(partition):
        return None
    return manifest, index, sources


def _verify(partition: str, manifest: store.Manifest) -> None:
    """IndexCorrupt unless the keyword index is as published (the vectors and the
    sources are checked as they are read)."""
    keywords = store.keywords_of(partition)
    if manifest.keywords_checksum:
        if keywords.checksum() != manifest.keywords_checksum:
            raise IndexCorrupt("the keyword index's files have changed")
    elif len(keywords) != manifest.count:
        raise IndexCorrupt("the keyword index does not hold every chunk")


def _has_keywords(partition: str) -> bool:
    try:
        return store.keywords_published(partition) is not None
    except IndexCorrupt:
        return False


def _index_update(
    partition: str, manifest: store.Manifest, index: store.Dense, *, model: str
) -> store.Manifest:
    sources = list(
        _embedded(partition, model).values_list("pk", "source_type", "source_id")
    )
    stored = {pk for pk, _, _ in sources}
    indexed = set(index.ids().tolist())
    removed, added = sorted(indexed - stored), sorted(stored - indexed)
    if not removed and not added and manifest.sources:
        return manifest
    ids, matrix, texts, _ = _rows_of(
        Chunk.objects.filter(pk__in=added), index.dimension
    )
    if index.outgrown(len(stored)):
        # Crossed the size threshold, or outgrew the lists it was trained on:
        # build the right kind from the database (keywords take the difference).
        # Only the chunks read above: one embedded since goes in with the next
        # sync, into both legs.
        every, rows = _vectors_of(_embedded(partition, model), index.dimension)
        kept = np.isin(every, np.fromiter(stored, np.int64, len(stored)))
        index = store.dense_build(partition, rows[kept], every[kept])
    else:
        index.remove(np.asarray(removed, dtype=np.int64))
        index.add(ids, matrix)
    added_texts = list(zip(ids.tolist(), texts, strict=True))
    return _publish(
        partition, manifest, index, store.Sources.of(sources), removed, added_texts
    )


def _publish(
    partition: str,
    manifest: store.Manifest,
    index: store.Dense,
    sources: store.Sources,
    removed: list[int],
    added: list[tuple[int, str]],
) -> store.Manifest:
    """The keyword leg changed as the dense one was, then both published as the
    version after ``manifest``; built anew if the two legs disagree."""
    keywords = store.keywords_of(partition)
    keywords.apply(removed=removed, added=added)
    if len(keywords) != len(index):
        logger.error("index %s: the keyword index lost count: rebuilding", partition)
        return _index_build(partition, model=manifest.model)
    return store.publish(
        partition,
        index,
        model=manifest.model,
        previous=manifest.version,
        sources=sources,
        keywords_checksum=keywords.checksum(),
    )


def index_apply(partition: str, chunk_ids: set[int]) -> store.Manifest:
    """Bring those chunks of the partition's index in step with the database (the
    change feed's entries, ``embeddings.replica``): each is added as stored now,
    or removed if it is no longer embedded. Reads only those chunks; a partition
    with no usable published version is built from the database."""
    model = partition_check(partition)
    with store.writer_lock(partition):
        published = _published(partition, model)
        if published is None:
            return _index_build(partition, model=model)
        manifest, index, sources = published
        if sources is None:  # none kept beside it to change: build them all
            return _index_build(partition, model=model)
        wanted = _embedded(partition, model).filter(pk__in=chunk_ids)
        ids, matrix, texts, rows = _rows_of(wanted, index.dimension)
        removed = sorted(chunk_ids - set(ids.tolist()))
        index.remove(np.asarray(removed, dtype=np.int64))
        index.add(ids, matrix)
        if index.outgrown(len(index)):
            return _index_build(partition, model=model)
        added = list(zip(ids.tolist(), texts, strict=True))
        changed = sources.changed(chunk_ids, rows)
        return _publish(partition, manifest, index, changed, removed, added)


def index_rebuild(partition: str) -> store.Manifest:
    """Build the partition's index anew from the stored vectors."""
    model = partition_check(partition)
    with store.writer_lock(partition):
        store.temp_files_remove(partition)
        return _index_build(partition, model=model)


def _index_build(partition: str, *, model: str) -> store.Manifest:
    """Both legs from the database, whatever is on disk, as the next version."""
    dimension = get_encoder(model).dimension
    ids, matrix, texts, sources = _rows_of(_embedded(partition, model), dimension)
    index = store.dense_build(partition, matrix, ids)  # flat or ivf, by size
    keywords = store.keywords_of(partition)
    keywords.apply(added=list(zip(ids.tolist(), texts, strict=True)), rebuild=True)
    return store.publish(
        partition,
        index,
        model=model,
        previous=store.newest_version(partition),
        sources=store.Sources.of(sources),
        keywords_checksum=keywords.checksum(),
    )


def _embedded(partition: str, model: str) -> Any:
    return Chunk.objects.filter(
        partition=partition, status=Chunk.Status.EMBEDDED, model_name=model
    )


def _vectors_of(chunks: Any, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of chunks, in id order, without their texts."""
    rows = list(chunks.order_by("pk").values_list("pk", "vector"))
    ids = np.fromiter((pk for pk, _ in rows), dtype=np.int64, count=len(rows))
    return ids, vectors_decode([blob for _, blob in rows], dimension)


def _rows_of(
    chunks: Any, dimension: int
) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[int, str, int]]]:
    """Ids, vectors, texts and (id, source type, source id)s of chunks, in id order."""
    rows = list(
        chunks.order_by("pk").values_list(
            "pk", "vector", "text", "source_type", "source_id"
        )
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    matrix = vectors_decode([row[1] for row in rows], dimension)
    texts = [row[2] for row in rows]
    return ids, matrix, texts, [(row[0], row[3], row[4]) for row in rows]


def stored_partitions() -> list[str]:
    return list(Chunk.objects.values_list("partition", flat=True).distinct().order_by())


def partition_drop(partition: str) -> None:
    """Forget a partition: its chunks and its published index."""
    with transaction.atomic():
        Chunk.objects.filter(partition=partition).delete()
        feed_add([(partition, None)])
    store.remove_partition(partition)


def orphans_remove() -> list[str]:
    """Remove the indexes on disk whose partition has no chunks; the partitions
    that have."""
    wanted = set(stored_partitions())
    for orphan in set(store.partitions()) - wanted:
        store.remove_partition(orphan)
    return sorted(wanted)


def index_rebuild_all() -> list[store.Manifest]:
    """Rebuild every partition's index; drop indexes whose partition has no chunks."""
    return [index_rebuild(partition) for partition in orphans_remove()]


def pending_ids(*, partition: str | None = None) -> list[int]:
    pending = Chunk.objects.filter(status=Chunk.Status.PENDING)
    if partition is not None:
        pending = pending.filter(partition=partition)
    return list(pending.order_by("pk").values_list("pk", flat=True))


def chunks_due(*, older_than_s: float = 0) -> list[int]:
    """Chunks to queue again: pending ones nothing has touched for ``older_than_s``
    (a lost message, a killed worker, a broker restarted empty), and failed ones
    whose ``retry_at`` has come. Each is marked touched, so that it is queued once
    per wait, not at every reconcile while a long queue drains."""
    now = timezone.now()
    due = Chunk.objects.filter(status=Chunk.Status.FAILED, retry_at__lte=now)
    retried = list(due.values_list("pk", flat=True))
    # Its failures stay counted: it is encoded alone, and waits longer if it fails.
    due.update(status=Chunk.Status.PENDING, attempts=0, updated_at=now)
    stalled = Chunk.objects.filter(
        status=Chunk.Status.PENDING,
        updated_at__lte=now - timedelta(seconds=older_than_s),
    ).exclude(pk__in=retried)
    ids = list(stalled.values_list("pk", flat=True))
    stalled.update(updated_at=now)
    return sorted(ids + retried)


def reconcile(*, older_than_s: float = 0) -> tuple[int, int]:
    """Queue again what was left undone and re-check every partition's index.

    Returns (chunks queued, partitions checked). Lost messages, a killed worker,
    a restarted broker or a provider away all leave rows pending or failed; this
    is how they heal.
    """
    from embeddings.tasks import embed_chunks, sync_index

    ids = chunks_due(older_than_s=older_than_s)
    batch = settings.EMBEDDINGS_TASK_BATCH
    for start in range(0, len(ids), batch):
        enqueue(embed_chunks, ids[start : start + batch])
    stored = orphans_remove()
    for partition in stored:
        enqueue(sync_index, partition, True)  # every file checked, damage rebuilt
    return len(ids), len(stored)
