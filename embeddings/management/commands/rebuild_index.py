"""Rebuild vector indexes from stored vectors, or re-embed first (a new model)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings import services
from embeddings.encoders import EncoderUnavailable
from embeddings.models import Chunk
from embeddings.progress import progress
from embeddings.provenance import ModelMismatch, partition_provenance
from embeddings.signals import partition_embedded


class Command(BaseCommand):
    help = "Rebuild the vector indexes from the database (--reembed: encode again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reembed",
            action="store_true",
            help="re-chunk and re-encode the content first (after a model change)",
        )
        parser.add_argument(
            "--partition",
            help="only this partition (a collection's is collection-<id>; a refusal "
            "to mix models names it)",
        )

    def handle(
        self, *args: Any, reembed: bool, partition: str | None, **options: Any
    ) -> None:
        stored = services.stored_partitions()
        if partition is not None and partition not in stored:
            raise CommandError(f"There is no partition {partition!r} with content.")
        try:
            if reembed:
                self.reembed(partition)
            if partition is None:
                manifests = services.index_rebuild_all()
            else:
                manifests = [services.index_rebuild(partition)]
        except ModelMismatch as error:
            raise CommandError(str(error)) from None
        for name in [partition] if partition else stored:
            provenance = partition_provenance(name)
            if provenance is not None:  # tell the owner (a collection) the model
                model, dimension = provenance
                partition_embedded.send(
                    sender=Chunk, partition=name, model=model, dimension=dimension
                )
        total = sum(m.count for m in manifests)
        self.stdout.write(f"rebuilt {len(manifests)} indexes with {total} vectors")

    def reembed(self, partition: str | None) -> None:
        count = services.reembed_all(partition=partition)
        ids = services.pending_ids(partition=partition)
        batch = settings.EMBEDDINGS_TASK_BATCH
        batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        try:
            for chunk_ids in progress(batches, desc="embedding"):
                services.chunks_embed(chunk_ids)
        except EncoderUnavailable as error:
            left = len(services.pending_ids(partition=partition))
            raise CommandError(
                f"{error}. {left} chunks are left pending: run this again, or let "
                "the worker embed them when the provider is back (reconcile)."
            ) from None
        self.stdout.write(f"re-embedded {count} chunks")
