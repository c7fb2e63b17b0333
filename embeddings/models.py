"""Chunks of registered sources, with their vectors. The database is the truth."""

from collections.abc import Sequence

import numpy as np
from django.db import models


def vector_bytes(vector: np.ndarray) -> bytes:
    """A vector as ``Chunk.vector`` stores it: float32, native (little-endian)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def vectors_decode(
    blobs: Sequence[bytes | memoryview], dimension: int | None = None
) -> np.ndarray:
    """Stored ``Chunk.vector`` values as one (n, dimension) float32 matrix; the
    dimension is the vectors' own (4 bytes a float) unless given (as it must be
    for no vectors)."""
    if dimension is None:
        dimension = len(blobs[0]) // 4 if blobs else 0
    matrix = np.empty((len(blobs), dimension), dtype=np.float32)
    for i, blob in enumerate(blobs):
        matrix[i] = np.frombuffer(blob, dtype=np.float32)
    return matrix


class Chunk(models.Model):
    """A piece of a source's text that fits the model's window, and its vector.

    A chunk's text never changes: new text makes a new chunk, so a chunk id names
    one vector for its whole life and the index can be kept in step by id alone.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        EMBEDDED = "embedded"
        FAILED = "failed"

    source_type = models.CharField(max_length=100)
    source_id = models.PositiveBigIntegerField()
    partition = models.CharField(max_length=100)
    field = models.CharField(max_length=50)
    position = models.PositiveIntegerField()
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    # Deliveries that began encoding it and never finished (the worker died) or
    # failed for a reason of its own; transient errors (the database, the broker,
    # a provider away) do not count. At EMBEDDINGS_MAX_ATTEMPTS it is failed.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Times it was failed; reconcile tries a failed chunk again at retry_at, later
    # each time, and a re-save of its source starts it afresh.
    failures = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    vector = models.BinaryField(null=True, editable=False)
    model_name = models.CharField(max_length=200, blank=True)
    # Its vector by the model of the partition's next generation, while there is
    # one (see Generation); searches never read it.
    next_vector = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["source_type", "source_id"]),
            models.Index(fields=["partition", "status"]),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["status", "retry_at"]),
            models.Index(fields=["status", "created_at"]),  # the oldest waiting
        ]

    def __str__(self) -> str:
        return f"{self.source_type}#{self.source_id}/{self.field}[{self.position}]"


class Change(models.Model):
    """One entry of the change feed: the chunk ``chunk_id`` of ``partition`` changed
    (embedded, deleted, moved), or with no chunk the whole partition did (dropped,
    re-embedded). Written in the transaction that made the change.

    Every web host keeps its own copy of the indexes current by reading the feed
    in id order (``embeddings.replica``): a sequence, not wall-clock times. An entry
    says only *which* chunk to look at again; the host reads the chunk's state as
    it is when it applies it, so applying an entry twice, or late, is harmless.
    """

    id = models.BigAutoField(primary_key=True)
    partition = models.CharField(max_length=100)
    chunk_id = models.BigIntegerField(null=True)  # None: the whole partition
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.pk}: {self.partition}/{self.chunk_id or '*'}"


class Generation(models.Model):
    """A partition being re-embedded with ``model``, beside its vectors: until
    every embedded chunk of it has a ``next_vector``, searches go on serving the
    vectors it has; then one transaction makes the next vectors the vectors
    (``embeddings.generations``). Deleting it (an abort) forgets the next ones."""

    partition = models.CharField(max_length=100, unique=True)
    model = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)  # the last batch stored

    def __str__(self) -> str:
        return f"{self.partition} -> {self.model}"
