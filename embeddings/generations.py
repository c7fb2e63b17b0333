"""A model change without downtime: a partition re-embedded as a new generation
beside the vectors it serves, then switched in one transaction.

``start`` records the partition's ``Generation`` (the model to re-embed with);
``fill`` encodes, batch by batch, the embedded chunks that have no next vector
yet (workers give the chunks they embed meanwhile both vectors, when they can
load the model); ``switch`` makes the next vectors the vectors, in one
transaction, once every embedded chunk has one, with a whole-partition entry of
the change feed. Until then every search is answered from the old generation,
whole; after it each host rebuilds the partition from the new vectors and swaps
it in with its manifest, which names the model the query is encoded with: the
switch is atomic on every host, with no window of refusals and no partial index.
``abort`` forgets the next vectors. A run killed part-way resumes where it was:
only chunks without a next vector are encoded.

The chunks are kept as they are (cut to the window of the model they were cut
for); a model with another window re-cuts them as their sources are saved again.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from embeddings.encoders import get_encoder
from embeddings.index import store
from embeddings.models import Chunk, Generation, vector_bytes, vectors_decode
from embeddings.signals import partition_embedded


class GenerationError(Exception):
    """A generation that cannot be started, or is gone (aborted)."""


def start(partition: str, model: str) -> Generation:
    """Begin (or resume, for the same model) re-embedding ``partition`` with
    ``model``; ``ModelUnavailable`` unless this process can load it."""
    get_encoder(model)
    if not Chunk.objects.filter(partition=partition).exists():
        raise GenerationError(f"There is no partition {partition!r} with content.")
    generation, _ = Generation.objects.get_or_create(
        partition=partition, defaults={"model": model}
    )
    if generation.model != model:
        raise GenerationError(
            f"{partition} is being re-embedded with {generation.model} already: "
            "let it finish, or abort it (rebuild_index --abort)"
        )
    return generation


def _embedded(partition: str) -> Any:
    return Chunk.objects.filter(partition=partition, status=Chunk.Status.EMBEDDED)


def left(partition: str) -> int:
    """Embedded chunks of the partition still without a next vector."""
    return _embedded(partition).filter(next_vector=None).count()


def fill(partition: str, *, limit: int) -> int:
    """Encode up to ``limit`` chunks that have no next vector yet; return how many
    were stored (0: none left)."""
    generation = _current(partition)
    encoder = get_encoder(generation.model)
    todo = list(
        _embedded(partition)
        .filter(next_vector=None)
        .order_by("pk")
        .values_list("pk", "text")[:limit]
    )
    if not todo:
        return 0
    matrix = encoder.encode([text for _, text in todo])
    with transaction.atomic():
        _current(partition, lock=True, model=generation.model)
        Chunk.objects.bulk_update(
            [
                Chunk(pk=pk, next_vector=vector_bytes(vector))
                for (pk, _), vector in zip(todo, matrix, strict=True)
            ],
            ["next_vector"],
            batch_size=500,
        )
        Generation.objects.filter(pk=generation.pk).update(updated_at=timezone.now())
    return len(todo)


def switch(partition: str) -> bool:
    """Make the next vectors the partition's vectors, if every embedded chunk has
    one (False: some came in without, to fill first)."""
    from embeddings.services import feed_add, index_sync_on_commit

    with transaction.atomic():
        generation = _current(partition, lock=True)
        embedded = _embedded(partition)
        if embedded.filter(next_vector=None).exists():
            return False
        dimension = get_encoder(generation.model).dimension
        if settings.VECTOR_BACKEND == "pgvector":  # every host's vectors, at commit
            rows = list(embedded.values_list("pk", "next_vector"))
            ids = np.fromiter((pk for pk, _ in rows), np.int64, len(rows))
            matrix = vectors_decode([blob for _, blob in rows], dimension)
            store.dense_build(partition, matrix, ids)
        embedded.update(
            vector=F("next_vector"), model_name=generation.model, next_vector=None
        )
        feed_add([(partition, None)])  # every host's replica: rebuild it
        index_sync_on_commit([partition])  # the workers' index (the embedded default)
        generation.delete()
        partition_embedded.send(
            sender=Chunk,
            partition=partition,
            model=generation.model,
            dimension=dimension,
        )
    return True


def abort(partition: str) -> bool:
    """Forget the partition's next generation; False if it had none."""
    with transaction.atomic():
        deleted, _ = Generation.objects.filter(partition=partition).delete()
        Chunk.objects.filter(partition=partition).exclude(next_vector=None).update(
            next_vector=None
        )
    return bool(deleted)


def run(
    partition: str,
    model: str,
    *,
    batch: int | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> int:
    """Re-embed the partition with ``model`` and switch to it; return the chunks
    encoded. ``progress`` is told each batch's size."""
    start(partition, model)
    batch = batch or settings.EMBEDDINGS_TASK_BATCH
    encoded = 0
    while True:
        while done := fill(partition, limit=batch):
            encoded += done
            progress(done)
        if switch(partition):
            return encoded


def _current(
    partition: str, *, lock: bool = False, model: str | None = None
) -> Generation:
    generations = Generation.objects.filter(partition=partition)
    if lock:
        generations = generations.select_for_update()
    generation = generations.first()
    if generation is None or (model is not None and generation.model != model):
        raise GenerationError(f"{partition} is no longer being re-embedded (aborted)")
    return generation
