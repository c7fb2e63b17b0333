"""Rebuild vector indexes from stored vectors, or re-embed first (a new model)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from embeddings import generations, services
from embeddings.encoders import EncoderUnavailable, ModelUnavailable, get_encoder
from embeddings.models import Chunk
from embeddings.progress import counter
from embeddings.provenance import ModelMismatch, partition_provenance
from embeddings.signals import partition_embedded


class Command(BaseCommand):
    help = (
        "Rebuild the vector indexes from the database; --reembed encodes the content "
        "again (with --model, another model) while search goes on serving the old "
        "vectors, and switches to the new ones when they are complete."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reembed",
            action="store_true",
            help="encode the content again, as a new generation beside the vectors "
            "served (after a model or backend change); run again to resume",
        )
        parser.add_argument(
            "--model",
            help="with --reembed: the model to re-embed with (default "
            "EMBEDDINGS_MODEL; another must be in EMBEDDINGS_MODELS of every host)",
        )
        parser.add_argument(
            "--abort",
            action="store_true",
            help="forget the re-embeds in progress: search keeps the vectors it has",
        )
        parser.add_argument(
            "--partition",
            help="only this partition (a collection's is collection-<id>; a refusal "
            "to mix models names it)",
        )

    def handle(
        self,
        *args: Any,
        reembed: bool,
        model: str | None,
        abort: bool,
        partition: str | None,
        **options: Any,
    ) -> None:
        if model and not reembed:
            raise CommandError("--model goes with --reembed.")
        stored = services.stored_partitions()
        if partition is not None and partition not in stored:
            raise CommandError(f"There is no partition {partition!r} with content.")
        names = [partition] if partition else stored
        if abort:
            aborted = [name for name in names if generations.abort(name)]
            self.stdout.write(f"aborted {len(aborted)} re-embeds: {', '.join(aborted)}")
            return
        try:
            if reembed:
                for name in names:
                    self.reembed(name, model or get_encoder().name)
            if partition is None:
                manifests = services.index_rebuild_all()
            else:
                manifests = [services.index_rebuild(partition)]
        except (ModelMismatch, ModelUnavailable, generations.GenerationError) as error:
            raise CommandError(str(error)) from None
        for name in names:
            provenance = partition_provenance(name)
            if provenance is not None:  # tell the owner (a collection) the model
                partition_embedded.send(
                    sender=Chunk,
                    partition=name,
                    model=provenance[0],
                    dimension=provenance[1],
                )
        total = sum(m.count for m in manifests)
        self.stdout.write(f"rebuilt {len(manifests)} indexes with {total} vectors")

    def reembed(self, partition: str, model: str) -> None:
        generations.start(partition, model)
        bar = counter(total=generations.left(partition), desc=partition)
        try:
            count = generations.run(partition, model, progress=bar.update)
            # What was waiting to be embedded is, now with the partition's model.
            services.chunks_embed(services.pending_ids(partition=partition))
        except EncoderUnavailable as error:
            raise CommandError(
                f"{error}. Run this again when the provider is back: it resumes "
                "where it stopped, and search serves the old vectors meanwhile."
            ) from None
        self.stdout.write(f"{partition}: re-embedded {count} chunks with {model}")
