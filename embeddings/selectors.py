"""Reads: nearest chunks to a query, index and chunk health."""

from dataclasses import dataclass

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
