"""Which model a partition's vectors came from, and refusing to mix models.

Cosines between vectors of two models mean nothing, so a partition holds vectors
of one model and dimension. The stored vectors are the truth (each chunk row
keeps its model name; the dimension is its length); a process whose encoder is
another model may neither add to a partition nor rebuild its index until the
partition is re-embedded. Apps that own partitions (a collection) record the
same on the ``partition_embedded`` signal.
"""

from typing import cast

from embeddings.models import Chunk


class ModelMismatch(Exception):
    """A partition's vectors came from another model than this process's."""

    def __init__(
        self, *, partition: str, stored: tuple[str, int], current: tuple[str, int]
    ) -> None:
        self.partition, self.stored, self.current = partition, stored, current
        super().__init__(
            f"{partition} holds vectors of {stored[0]} ({stored[1]} dimensions), but "
            f"this process embeds with {current[0]} ({current[1]} dimensions); "
            "vectors of two models cannot be compared. Re-embed it with the new "
            f"model: manage.py rebuild_index --reembed --partition {partition}"
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


def provenance_check(partitions: set[str], *, model: str, dimension: int) -> None:
    """Raise ``ModelMismatch`` unless every partition is empty or of this model."""
    for partition in sorted(partitions):
        stored = partition_provenance(partition)
        if stored is not None and stored != (model, dimension):
            raise ModelMismatch(
                partition=partition, stored=stored, current=(model, dimension)
            )


def partition_check(partition: str) -> None:
    """``provenance_check`` of one partition against this process's encoder."""
    from embeddings.encoders import get_encoder

    encoder = get_encoder()
    provenance_check({partition}, model=encoder.name, dimension=encoder.dimension)
