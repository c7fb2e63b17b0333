"""Measure retrieval quality on a BEIR-format dataset (corpus, queries, qrels)."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings.progress import progress
from faq.evaluation import evaluate
from faq.importers import ImportRefused
from faq.search import MODES


class Command(BaseCommand):
    help = "Import a BEIR dataset into a throwaway collection and score every query."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--mode",
            choices=[*MODES, "all"],
            default=MODES[0],
            help="all: every mode on one import of the corpus",
        )
        parser.add_argument(
            "--json", action="store_true", help="end with one JSON line"
        )
        parser.add_argument(
            "--max-chunks",
            type=int,
            help="index at most N chunks per passage (1: truncate, as MTEB scores)",
        )

    def handle(self, *args: Any, directory: Path, mode: str, **options: Any) -> None:
        if options["max_chunks"] is not None:
            if options["max_chunks"] < 0:
                raise CommandError("--max-chunks must be 0 (no limit) or more")
            settings.EMBEDDINGS_MAX_CHUNKS = options["max_chunks"]  # this process only
        modes = list(MODES) if mode == "all" else [mode]
        try:
            results = evaluate(directory, modes=modes, progress=progress)
        except ImportRefused as error:
            raise CommandError(str(error)) from None
        for result in results:
            for key, value in result.items():
                self.stdout.write(f"{key:>16}  {value}")
            self.stdout.write("")
        if options["json"]:
            for result in results:  # one object a line; the last is the last mode
                self.stdout.write(json.dumps(result))
