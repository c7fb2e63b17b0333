"""Rebuild every vector index from stored vectors, or re-embed everything first."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from embeddings import services
from embeddings.progress import progress


class Command(BaseCommand):
    help = "Rebuild the vector indexes from the database (--reembed: encode again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reembed",
            action="store_true",
            help="re-chunk and re-encode all content first (after a model change)",
        )

    def handle(self, *args: Any, reembed: bool, **options: Any) -> None:
        if reembed:
            count = services.reembed_all()
            ids = services.pending_ids()
            batch = settings.EMBEDDINGS_TASK_BATCH
            batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
            for chunk_ids in progress(batches, desc="embedding"):
                services.chunks_embed(chunk_ids)
            self.stdout.write(f"re-embedded {count} chunks")
        manifests = services.index_rebuild_all()
        total = sum(m.count for m in manifests)
        self.stdout.write(f"rebuilt {len(manifests)} indexes with {total} vectors")
