"""Re-queue chunks left pending and re-check every index against the database."""

from typing import Any

from django.core.management.base import BaseCommand

from embeddings import services


class Command(BaseCommand):
    help = "Re-queue pending chunks for the workers and re-check every index."

    def handle(self, *args: Any, **options: Any) -> None:
        queued, checked = services.reconcile()
        self.stdout.write(f"queued {queued} pending chunks, checking {checked} indexes")
