"""Which model a partition's vectors came from, and refusing to mix models.

Cosines between vectors of two models mean nothing, so a partition holds vectors
of one model and dimension. The stored vectors are the truth (each chunk row
keeps its model name; the dimension is its length): a partition is embedded,
indexed and searched with its own model, which need not be the process's
(``EMBEDDINGS_MODELS``), and an empty partition takes the process's. A process
that cannot load a partition's model may neither add to it nor rebuild its
index. Apps that own partitions (a collection) record the model on the
``partition_embedded`` signal.
"""

from typing import cast

from embeddings.encoders import ModelUnavailable, get_encoder
from embeddings.models import Chunk


class ModelMismatch(Exception):
    """A partition's vectors came from a model this process cannot load."""

    def __init__(
        self, *, partition: str, stored: tuple[str, int], current: tuple[str, int]
    ) -> None:
        self.partition, self.stored, self.current = partition, stored, current
        super().__init__(
            f"{partition} holds vectors of {stored[0]} ({stored[1]} dimensions), "
            f"which this process does not load (it embeds with {current[0]}, "
            f"{current[1]} dimensions), and vectors of two models cannot be compared. "
            f"Name {stored[0]} in EMBEDDINGS_MODELS to go on with it, or re-embed the "
            f"partition: manage.py rebuild_index --reembed --partition {partition}"
        )


def partition_provenance(partition: str) -> tuple[str, int] | None:
    """The model and dimension of a partition's stored vectors; None: it has none."""
    row = (
        Chunk.objects.filter(partition=partition, status=Chunk.Status.EMBEDDED)
        .values_list("model_name", "vector")
        .first()
    )
    if row is None:
        return None
    model, vector = row
    return model, len(cast(bytes, vector)) // 4


def partition_model(partition: str) -> str:
    """The model a partition is embedded and searched with: its vectors', else
    (none yet) this process's."""
    stored = partition_provenance(partition)
    return get_encoder().name if stored is None else stored[0]


def partition_check(partition: str) -> str:
    """The partition's model, ``ModelMismatch`` unless this process can load it
    and it makes vectors of the stored dimension."""
    stored = partition_provenance(partition)
    if stored is None:
        return get_encoder().name
    try:
        encoder = get_encoder(stored[0])
    except ModelUnavailable:
        encoder = None
    if encoder is None or encoder.dimension != stored[1]:
        own = get_encoder()
        raise ModelMismatch(
            partition=partition, stored=stored, current=(own.name, own.dimension)
        )
    return stored[0]
