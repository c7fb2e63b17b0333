"""Reads: nearest chunks to a query, index and chunk health."""

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from django.db.models import Count, OuterRef, Subquery

from embeddings import vectors
from embeddings.encoders import encode_query, get_encoder
from embeddings.models import Chunk


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    source_type: str
    source_id: int
    field: str
    position: int
    cosine: float  # to the query, whichever leg found the chunk
    bm25: float | None = None  # None: the keyword leg did not find it
    coverage: float = 0.0  # BM25 over the query's summed idf (see keywords.search)


LEGS = ("dense", "keyword")
# What a hit needs of its chunk row, in ChunkHit's order; partition last.
ROW_FIELDS = ("source_type", "source_id", "field", "position", "partition")


def chunks_search(
    query: str, *, partitions: list[str], k: int, legs: tuple[str, ...] = LEGS
) -> dict[str, list[ChunkHit]]:
    """Each leg's ``k`` best chunks for ``query``, best first.

    Every hit carries its cosine to the query, keyword hits included, so that
    similarity thresholds mean the same in every mode.
    """
    if k <= 0 or not partitions:
        return {leg: [] for leg in legs}
    vector = encode_query(query)
    dense = (
        vectors.reader.search(vector, partitions=partitions, k=k)
        if "dense" in legs
        else []
    )
    matched = (
        vectors.reader.match(query, partitions=partitions, k=k)
        if "keyword" in legs
        else []
    )
    cosine = dict(dense)
    keyword = {chunk_id: (bm25, coverage) for chunk_id, bm25, coverage in matched}
    rows = {
        pk: rest
        for pk, *rest in Chunk.objects.filter(pk__in=[*cosine, *keyword]).values_list(
            "pk", *ROW_FIELDS
        )
    }
    missing = [(i, rows[i][-1]) for i in keyword if i in rows and i not in cosine]
    cosine |= _cosines(vector, missing)
    order = {"dense": [i for i, _ in dense], "keyword": [i for i, _, _ in matched]}
    return {
        leg: [
            _hit(chunk_id, row, cosine[chunk_id], keyword.get(chunk_id))
            for chunk_id in order[leg]
            if (row := rows.get(chunk_id)) is not None and chunk_id in cosine
        ]
        for leg in legs
    }


def _hit(
    chunk_id: int, row: list[Any], cosine: float, keyword: tuple[float, float] | None
) -> ChunkHit:
    source_type, source_id, field, position, _ = row
    bm25, coverage = keyword or (None, 0.0)
    return ChunkHit(
        chunk_id, source_type, source_id, field, position, cosine, bm25, coverage
    )


def _cosines(vector: np.ndarray, chunks: list[tuple[int, str]]) -> dict[int, float]:
    """Cosines of (chunk id, partition)s the dense leg did not return, from the
    vectors in their partition's index."""
    found = {}
    by_partition: dict[str, list[int]] = {}
    for chunk_id, partition in chunks:
        by_partition.setdefault(partition, []).append(chunk_id)
    for partition, ids in by_partition.items():
        loaded = vectors.reader.get(partition)
        if loaded is None:
            continue
        for chunk_id in ids:
            try:
                found[chunk_id] = float(loaded.vectors.reconstruct(chunk_id) @ vector)
            except RuntimeError:
                continue  # not in this version of the index yet
    return found


def chunk_text_of_source(chunk_ids: list[int], *, source_type: str) -> Subquery:
    """For annotating a source's queryset: the text of its chunk among ``chunk_ids``
    (at most one per source), so that the sources and the chunks they are shown by
    load in one query."""
    return Subquery(
        Chunk.objects.filter(
            pk__in=chunk_ids, source_type=source_type, source_id=OuterRef("pk")
        ).values("text")[:1]
    )


def partition_size(partition: str) -> int:
    loaded = vectors.reader.get(partition)
    return loaded.vectors.ntotal if loaded else 0


def index_status() -> dict[str, object]:
    """What the health endpoint reports of the vector side."""
    manifests = [m for p in vectors.partitions() if (m := vectors.read_manifest(p))]
    counts = dict(
        Chunk.objects.values_list("status").annotate(n=Count("pk")).order_by()
    )
    return {
        "model": get_encoder().name,
        "dimension": get_encoder().dimension,
        "partitions": len(manifests),
        "vectors": sum(m.count for m in manifests),
        "version": max((m.version for m in manifests), default=0),
        "chunks": {status: counts.get(status, 0) for status in Chunk.Status.values},
    }


def chunks_neighbours(
    chunk_ids: list[int], *, partition: str, k: int, min_score: float
) -> list[tuple[int, int, float]]:
    """(chunk, other chunk, cosine) for the ``k`` nearest others at least ``min_score``
    alike, found with one batched index search rather than a loop over all pairs."""
    loaded = vectors.reader.get(partition)
    rows = list(
        Chunk.objects.filter(pk__in=chunk_ids, partition=partition, status="embedded")
        .order_by("pk")
        .values_list("pk", "vector")
    )
    if loaded is None or not rows:
        return []
    index = loaded.vectors
    matrix = np.vstack(
        [np.frombuffer(cast(bytes, blob), np.float32) for _, blob in rows]
    )
    scores, ids = vectors.index_search(index, matrix, min(k + 1, index.ntotal))
    return [
        (pk, int(other), float(score))
        for (pk, _), row_ids, row_scores in zip(rows, ids, scores, strict=True)
        for other, score in zip(row_ids, row_scores, strict=True)
        if other >= 0 and other != pk and score >= min_score
    ]
