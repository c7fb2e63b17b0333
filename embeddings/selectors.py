"""Reads: nearest chunks to a query, index and chunk health."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import numpy as np
from django.db import connection
from django.db.models import Count, QuerySet

from embeddings.encoders import encode_query
from embeddings.index import store
from embeddings.index.base import Hits
from embeddings.index.reader import Loaded, reader
from embeddings.models import Chunk, vectors_decode
from embeddings.provenance import partition_model


class ChunkHit(NamedTuple):  # a tuple: a search makes hundreds
    chunk_id: int
    source_type: str
    source_id: int
    cosine: float | None  # to the query, whichever leg found it; None: not asked
    bm25: float | None = None  # None: the keyword leg did not find it
    coverage: float = 0.0  # BM25 over the query's summed idf (see index.keywords)


LEGS = ("dense", "keyword")


def chunks_search(
    query: str,
    *,
    partitions: list[str],
    k: int,
    legs: tuple[str, ...] = LEGS,
    synonyms: Sequence[str] = (),
    cosines: bool = True,
) -> dict[str, list[ChunkHit]]:
    """Each leg's ``k`` best chunks for ``query``, best first (the keyword leg
    matching the ``synonyms`` too).

    Every hit carries its cosine to the query, keyword hits included, so that
    similarity thresholds mean the same in every mode; the keyword leg alone
    without ``cosines`` does not embed the query, and its hits' cosines are None.
    """
    if k <= 0 or not partitions:
        return {leg: [] for leg in legs}
    served = {p: loaded for p in partitions if (loaded := reader.get(p)) is not None}
    vectors = query_vectors(query, served) if cosines or "dense" in legs else None
    dense: Hits = []
    if vectors is not None and "dense" in legs:  # each version searched with the
        for partition, loaded in served.items():  # query as its model makes it
            dense.extend(loaded.vectors.search(vectors[partition].reshape(1, -1), k)[0])
        dense = sorted(dense, key=lambda hit: -hit[1])[:k]
    matched = (
        reader.match(query, partitions=partitions, k=k, also=synonyms)
        if "keyword" in legs
        else []
    )
    cosine: dict[int, float | None] = dict(dense)
    keyword = {chunk_id: (bm25, coverage) for chunk_id, bm25, coverage in matched}
    sources = _sources([*cosine, *keyword], partitions)
    cosine |= _cosines(
        served, vectors, [i for i in keyword if i not in cosine], sources
    )
    order = {"dense": [i for i, _ in dense], "keyword": [i for i, _, _ in matched]}

    def hit(chunk_id: int) -> ChunkHit:
        _, kind, source_id = sources[chunk_id]
        bm25, coverage = keyword.get(chunk_id, (None, 0.0))
        return ChunkHit(chunk_id, kind, source_id, cosine[chunk_id], bm25, coverage)

    return {
        leg: [hit(i) for i in order[leg] if i in sources and i in cosine]
        for leg in legs
    }


def query_vectors(query: str, served: dict[str, Loaded]) -> dict[str, np.ndarray]:
    """The query's vector for each partition's served version, by that version's
    model: a FAISS one's manifest names it (so it is swapped with the index); with
    pgvector the stored vectors', which every host reads."""
    vectors = {}
    for partition, loaded in served.items():
        model = loaded.manifest.model
        if loaded.vectors.kind == store.PGVECTOR:
            model = partition_model(partition)
        vectors[partition] = encode_query(query, model)
    return vectors


def _sources(
    chunk_ids: list[int], partitions: list[str]
) -> dict[int, tuple[str, str, int]]:
    """(partition, source type, source id) of each chunk that still exists: from
    the sources kept beside each partition's vectors, else from the database."""
    found: dict[int, tuple[str, str, int]] = {}
    for partition in partitions:
        loaded = reader.get(partition)
        if loaded is not None and loaded.sources is not None:
            found |= {
                chunk_id: (partition, *source)
                for chunk_id, source in loaded.sources.find(chunk_ids).items()
            }
    if missing := [i for i in chunk_ids if i not in found]:
        rows = Chunk.objects.filter(pk__in=missing).values_list(
            "pk", "partition", "source_type", "source_id"
        )
        found |= {pk: (partition, kind, id_) for pk, partition, kind, id_ in rows}
    return found


def _cosines(
    served: dict[str, Loaded],
    vectors: dict[str, np.ndarray] | None,
    chunk_ids: list[int],
    sources: dict[int, tuple[str, str, int]],
) -> dict[int, float | None]:
    """Cosines of chunks the dense leg did not return, from the vectors in their
    partition's served version (None for each, without the query's ``vectors``)."""
    found: dict[int, float | None] = {}
    by_partition: dict[str, list[int]] = {}
    for chunk_id in chunk_ids:
        if chunk_id in sources:
            by_partition.setdefault(sources[chunk_id][0], []).append(chunk_id)
    for partition, ids in by_partition.items():
        if partition in served:  # those not in this version yet are left out
            stored = served[partition].vectors.vectors(ids)
            if vectors is None:
                found |= dict.fromkeys(stored)
                continue
            if stored:
                cosines = np.stack(list(stored.values())) @ vectors[partition]
                found |= dict(zip(stored, cosines.tolist(), strict=True))
    return found


def chunks_shown(chunk_ids: list[int], *, text: bool) -> dict[int, tuple[str, str]]:
    """(field, text) of the chunks results are shown by; text only if asked for.

    Plain SQL: on every search, the ORM took four times as long to build this
    query (0.24 ms) as the database took to answer it."""
    if not chunk_ids:
        return {}
    qn = connection.ops.quote_name
    columns = ("id", "field", "text") if text else ("id", "field")
    sql = (
        f"SELECT {', '.join(map(qn, columns))} FROM {qn(Chunk._meta.db_table)} "
        f"WHERE {qn('id')} IN ({', '.join(['%s'] * len(chunk_ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, chunk_ids)
        rows = cursor.fetchall()
    return {pk: (field, rest[0] if rest else "") for pk, field, *rest in rows}


def partition_size(partition: str) -> int:
    return reader.size(partition)


def status_counts(chunks: QuerySet[Chunk], *, by: str) -> dict[Any, dict[str, int]]:
    """The chunks counted by status, for each value of the field ``by``: one
    grouped query."""
    counts: dict[Any, dict[str, int]] = {}
    rows = chunks.values_list(by, "status").annotate(n=Count("pk")).order_by()
    for key, status, n in rows:
        counts.setdefault(key, {})[status] = n
    return counts


def oldest_waiting_since() -> datetime | None:
    """When the longest-waiting pending chunk was made (an index range scan)."""
    return (
        Chunk.objects.filter(status=Chunk.Status.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def embedded_since(when: datetime) -> int:
    """Chunks embedded since ``when`` (an index range scan)."""
    return Chunk.objects.filter(
        status=Chunk.Status.EMBEDDED, updated_at__gte=when
    ).count()


def last_embedded_at() -> datetime | None:
    return (
        Chunk.objects.filter(status=Chunk.Status.EMBEDDED)
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )


def unindexed_since(partition: str, published: float) -> datetime | None:
    """When the oldest chunk embedded after the partition's version was published
    was embedded: how far its index lags behind the database."""
    after = datetime.fromtimestamp(published, tz=UTC)
    return (
        Chunk.objects.filter(
            partition=partition, status=Chunk.Status.EMBEDDED, updated_at__gt=after
        )
        .order_by("updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )


def index_summary() -> dict[str, Any]:
    """What this process serves: partitions, vectors, the newest version and what
    is wrong with any partition (no table is read)."""
    served = {p: reader.get(p) for p in store.partitions()}
    return {
        "partitions": len(served),
        "vectors": sum(len(loaded.vectors) for loaded in served.values() if loaded),
        "version": max(
            (loaded.manifest.version for loaded in served.values() if loaded),
            default=0,
        ),
        "unloadable": sorted(p for p, loaded in served.items() if loaded is None),
        "problems": dict(reader.problems),
    }


def chunks_neighbours(
    chunk_ids: list[int], *, partition: str, k: int, min_score: float
) -> list[tuple[int, int, float]]:
    """(chunk, other chunk, cosine) for the ``k`` nearest others at least ``min_score``
    alike, found with one batched index search rather than a loop over all pairs."""
    rows = list(
        Chunk.objects.filter(pk__in=chunk_ids, partition=partition, status="embedded")
        .order_by("pk")
        .values_list("pk", "vector")
    )
    if not rows:
        return []
    matrix = vectors_decode([cast(bytes, blob) for _, blob in rows])
    found = reader.neighbours(matrix, partition, k + 1)
    return [
        (pk, other, score)
        for (pk, _), hits in zip(rows, found, strict=True)
        for other, score in hits
        if other != pk and score >= min_score
    ]
