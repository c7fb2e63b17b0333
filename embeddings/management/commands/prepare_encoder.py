"""Build the encoder's files now (the ONNX export) so no request waits for it."""

from typing import Any

from django.core.management.base import BaseCommand

from embeddings.encoders import BACKENDS, make_encoder


class Command(BaseCommand):
    help = "Export and cache the ONNX model of the configured (or given) backend."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--backend",
            choices=list(BACKENDS),
            default="",
            help="default: EMBEDDINGS_BACKEND",
        )

    def handle(self, *args: Any, backend: str, **options: Any) -> None:
        encoder = make_encoder(backend)
        self.stdout.write(f"{encoder.name}: {encoder.prepare()}")
