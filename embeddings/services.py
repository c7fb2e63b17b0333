"""Writes: chunk sources, embed chunks, keep each partition's index in step."""

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import models, transaction
from django.db.models import F

from embeddings import keywords, vectors
from embeddings.chunking import chunk_text, content_hash
from embeddings.encoders import Encoder, LocalEncoder, get_encoder
from embeddings.models import Chunk
from embeddings.provenance import partition_check, provenance_check
from embeddings.signals import chunks_indexed, partition_embedded
from embeddings.sources import Embeddable, registered_models, source_type

logger = logging.getLogger(__name__)


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
    ).only("pk", "source_id", "content_hash", "field", "position", "partition"):
        existing.setdefault(chunk.source_id, {}).setdefault(
            chunk.content_hash, []
        ).append(chunk)
    chunker = _chunker(cast(Sequence[Embeddable], instances))
    created: list[Chunk] = []
    moved: list[Chunk] = []
    stale: list[Chunk] = []
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
                if (chunk.field, chunk.position, chunk.partition) == place:
                    continue
                if chunk.partition != partition:  # moved to another collection
                    reindex |= {chunk.partition, partition}
                moved.append(chunk)
            chunk.field, chunk.position, chunk.partition = place
        stale.extend(chunk for chunks in by_hash.values() for chunk in chunks)
    reindex.update(chunk.partition for chunk in stale)
    Chunk.objects.filter(pk__in=[chunk.pk for chunk in stale]).delete()
    Chunk.objects.bulk_update(moved, ["field", "position", "partition"], batch_size=500)
    Chunk.objects.bulk_create(created, batch_size=500)
    _on_commit_sync(reindex)
    _on_commit_embed([chunk.pk for chunk in created])


def source_remove(instance: models.Model) -> None:
    chunks = Chunk.objects.filter(
        source_type=source_type(instance), source_id=instance.pk
    )
    touched = set(chunks.values_list("partition", flat=True).distinct())
    chunks.delete()
    _on_commit_sync(touched)


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
        ids = chunk_ids[start : start + batch]
        transaction.on_commit(partial(embed_chunks.delay, ids))


def _on_commit_sync(partitions: Iterable[str]) -> None:
    from embeddings.tasks import sync_index

    if getattr(_held, "on", False):
        return

    for partition in sorted(set(partitions)):
        transaction.on_commit(partial(sync_index.delay, partition))


# --- embedding --------------------------------------------------------------------


def chunks_index(chunk_ids: list[int]) -> None:
    """Embed the pending chunks among ``chunk_ids`` and publish them."""
    for partition, ids in sorted(chunks_embed(chunk_ids).items()):
        index_sync(partition)
        chunks_indexed.send(sender=Chunk, partition=partition, chunk_ids=ids)
        partition_embedded.send(
            sender=Chunk,
            partition=partition,
            model=get_encoder().name,
            dimension=get_encoder().dimension,
        )


def chunks_embed(
    chunk_ids: list[int], *, encoder: Encoder | None = None
) -> dict[str, list[int]]:
    """Embed the pending chunks among ``chunk_ids`` (with ``encoder``, default the
    process's); return their ids by partition.

    Safe to run twice: only pending rows are read and written, and a chunk's text
    never changes under its id.
    """
    encoder = encoder or get_encoder()
    pending = Chunk.objects.filter(pk__in=chunk_ids, status=Chunk.Status.PENDING)
    # Out of attempts without a recorded failure: the worker died on it each time.
    pending.filter(attempts__gte=settings.EMBEDDINGS_MAX_ATTEMPTS).update(
        status=Chunk.Status.FAILED
    )
    pending.update(attempts=F("attempts") + 1)
    chunks = list(pending.only("pk", "text", "partition", "attempts"))
    if not chunks:
        return {}
    # Similar lengths in one batch waste less on padding.
    chunks.sort(key=lambda chunk: len(chunk.text))
    try:
        matrix = encoder.encode([chunk.text for chunk in chunks])
        provenance_check(
            {chunk.partition for chunk in chunks},
            model=encoder.name,
            dimension=matrix.shape[1],
        )
    except Exception as error:
        _record_failure(chunks, error)
        raise
    for chunk, vector in zip(chunks, matrix, strict=True):
        chunk.vector = vector.astype(np.float32).tobytes()
        chunk.model_name = encoder.name
        chunk.status = Chunk.Status.EMBEDDED
        chunk.last_error = ""
    Chunk.objects.bulk_update(
        chunks, ["vector", "model_name", "status", "last_error"], batch_size=500
    )
    by_partition: dict[str, list[int]] = {}
    for chunk in chunks:
        by_partition.setdefault(chunk.partition, []).append(chunk.pk)
    return by_partition


def _record_failure(chunks: list[Chunk], error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"[:2000]
    cap = settings.EMBEDDINGS_MAX_ATTEMPTS
    ids = [chunk.pk for chunk in chunks]
    Chunk.objects.filter(pk__in=ids).update(last_error=message)
    Chunk.objects.filter(pk__in=ids, attempts__gte=cap).update(
        status=Chunk.Status.FAILED
    )
    logger.warning("embedding %d chunks failed: %s", len(ids), message)


# --- index ----------------------------------------------------------------------------


def index_sync(partition: str) -> vectors.Manifest | None:
    """Apply added and removed chunks of a partition to its index and publish it."""
    model = get_encoder().name
    partition_check(partition)  # another model's index is left as it is
    with vectors.writer_lock(partition):
        manifest, index = vectors.load_published(partition)
        stale = manifest is None or manifest.model != model
        if index is None or stale or keywords.open_index(partition) is None:
            return _index_build(partition, model=model, previous=manifest)
        assert manifest is not None
        sources = list(
            _embedded(partition, model).values_list("pk", "source_type", "source_id")
        )
        stored = {pk for pk, _, _ in sources}
        indexed = set(vectors.index_ids(index).tolist())
        removed, added = indexed - stored, sorted(stored - indexed)
        if not removed and not added and manifest.sources:
            return manifest
        ids, matrix, texts, _ = _rows_of(Chunk.objects.filter(pk__in=added), index.d)
        if vectors.index_outgrown(index, len(stored)):
            # Crossed the size threshold, or outgrew the lists it was trained on:
            # build the right kind from the database (keywords take the difference).
            # Only the chunks read above: one embedded since goes in with the next
            # sync, into both legs.
            every, rows = _vectors_of(_embedded(partition, model), index.d)
            kept = np.isin(every, np.fromiter(stored, np.int64, len(stored)))
            index = vectors.index_build(rows[kept], every[kept])
        else:
            if removed:  # flat and ivf both remove for real: no tombstones
                index.remove_ids(np.fromiter(removed, dtype=np.int64))
            index.add_with_ids(matrix, ids)
        keywords.apply(
            partition, removed=removed, added=zip(ids.tolist(), texts, strict=True)
        )
        return vectors.publish(
            partition,
            index,
            model=model,
            previous=manifest.version,
            sources=vectors.Sources.of(sources),
        )


def index_rebuild(partition: str) -> vectors.Manifest:
    """Build the partition's index anew from the stored vectors."""
    model = get_encoder().name
    partition_check(partition)
    with vectors.writer_lock(partition):
        return _index_build(
            partition, model=model, previous=vectors.read_manifest(partition)
        )


def _index_build(
    partition: str, *, model: str, previous: vectors.Manifest | None
) -> vectors.Manifest:
    dimension = get_encoder().dimension
    ids, matrix, texts, sources = _rows_of(_embedded(partition, model), dimension)
    index = vectors.index_build(matrix, ids)  # flat or ivf, by size
    keywords.apply(partition, added=zip(ids.tolist(), texts, strict=True), rebuild=True)
    return vectors.publish(
        partition,
        index,
        model=model,
        previous=previous.version if previous else 0,
        sources=vectors.Sources.of(sources),
    )


def _embedded(partition: str, model: str) -> Any:
    return Chunk.objects.filter(
        partition=partition, status=Chunk.Status.EMBEDDED, model_name=model
    )


def _vectors_of(chunks: Any, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of chunks, in id order, without their texts."""
    rows = list(chunks.order_by("pk").values_list("pk", "vector"))
    ids = np.fromiter((pk for pk, _ in rows), dtype=np.int64, count=len(rows))
    matrix = np.empty((len(rows), dimension), dtype=np.float32)
    for i, (_, blob) in enumerate(rows):
        matrix[i] = np.frombuffer(blob, dtype=np.float32)
    return ids, matrix


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
    matrix = np.empty((len(rows), dimension), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i] = np.frombuffer(row[1], dtype=np.float32)
    texts = [row[2] for row in rows]
    return ids, matrix, texts, [(row[0], row[3], row[4]) for row in rows]


def stored_partitions() -> list[str]:
    return list(Chunk.objects.values_list("partition", flat=True).distinct().order_by())


def partition_drop(partition: str) -> None:
    """Forget a partition: its chunks and its published index."""
    Chunk.objects.filter(partition=partition).delete()
    vectors.remove_partition(partition)


def index_rebuild_all() -> list[vectors.Manifest]:
    """Rebuild every partition's index; drop indexes whose partition has no chunks."""
    wanted = set(stored_partitions())
    for orphan in set(vectors.partitions()) - wanted:
        vectors.remove_partition(orphan)
    return [index_rebuild(partition) for partition in sorted(wanted)]


def reembed_all(*, partition: str | None = None) -> int:
    """Re-chunk every source (of one partition, if given) and mark its chunks
    pending (after a model change)."""
    chunks = Chunk.objects.all()
    if partition is not None:
        chunks = chunks.filter(partition=partition)
    for model in registered_models():
        sources = model._default_manager.all()
        if partition is not None:
            of_model = chunks.filter(source_type=source_type(model))
            sources = sources.filter(pk__in=of_model.values("source_id"))
        with transaction.atomic():
            sources_sync(list(sources))
    return chunks.update(
        status=Chunk.Status.PENDING,
        vector=None,
        model_name="",
        attempts=0,
        last_error="",
    )


def pending_ids(*, older_than_s: float = 0, partition: str | None = None) -> list[int]:
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    pending = Chunk.objects.filter(status=Chunk.Status.PENDING, updated_at__lte=cutoff)
    if partition is not None:
        pending = pending.filter(partition=partition)
    return list(pending.order_by("pk").values_list("pk", flat=True))


def reconcile(*, older_than_s: float = 0) -> tuple[int, int]:
    """Re-queue chunks left pending and re-check every partition's index.

    Returns (chunks queued, partitions checked). Lost messages, a killed worker
    or a restarted broker all leave rows pending; this is how they heal.
    """
    from embeddings.tasks import embed_chunks, sync_index

    ids = pending_ids(older_than_s=older_than_s)
    batch = settings.EMBEDDINGS_TASK_BATCH
    for start in range(0, len(ids), batch):
        embed_chunks.delay(ids[start : start + batch])
    stored = set(stored_partitions())
    for orphan in set(vectors.partitions()) - stored:
        vectors.remove_partition(orphan)
    for partition in sorted(stored):
        sync_index.delay(partition)
    return len(ids), len(stored)
