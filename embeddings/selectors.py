"""Reads: nearest chunks to a query, index and chunk health."""

from dataclasses import dataclass
from typing import cast

import numpy as np
from django.db.models import Count

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
    text: str
    score: float


def chunks_nearest(query: str, *, partitions: list[str], k: int) -> list[ChunkHit]:
    """The ``k`` chunks closest in meaning to ``query``, best first, cosine scores."""
    if k <= 0 or not partitions:
        return []
    hits = vectors.reader.search(encode_query(query), partitions=partitions, k=k)
    rows = Chunk.objects.in_bulk([chunk_id for chunk_id, _ in hits])
    return [
        ChunkHit(
            chunk_id=chunk_id,
            source_type=row.source_type,
            source_id=row.source_id,
            field=row.field,
            position=row.position,
            text=row.text,
            score=score,
        )
        for chunk_id, score in hits
        if (row := rows.get(chunk_id)) is not None
    ]


def partition_size(partition: str) -> int:
    loaded = vectors.reader.get(partition)
    return loaded[1].ntotal if loaded else 0


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
    index = loaded[1]
    matrix = np.vstack(
        [np.frombuffer(cast(bytes, blob), np.float32) for _, blob in rows]
    )
    scores, ids = index.search(matrix, min(k + 1, index.ntotal))
    return [
        (pk, int(other), float(score))
        for (pk, _), row_ids, row_scores in zip(rows, ids, scores, strict=True)
        for other, score in zip(row_ids, row_scores, strict=True)
        if other >= 0 and other != pk and score >= min_score
    ]
