"""Import help content from a file into a collection."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from embeddings.progress import progress
from faq.importers import ImportRefused, import_path
from faq.services import collection_get_or_create


class Command(BaseCommand):
    help = (
        "Import FAQs and documents from a file: CSV, TSV, JSON, JSON Lines, BEIR "
        "corpus.jsonl, Markdown, text, HTML, PDF, Word (.docx), or a ZIP of these."
    )
    # The system checks import every URL and API module (a second of start-up)
    # that an import never uses; `manage.py check` and the server still run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--collection", default="default", help="slug; made if missing"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check only, write nothing"
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows, report the rest",
        )

    def handle(self, *args: Any, path: Path, collection: str, **options: Any) -> None:
        target = collection_get_or_create(slug=collection)
        try:
            report = import_path(
                path,
                collection=target,
                dry_run=options["dry_run"],
                skip_invalid=options["skip_invalid"],
                progress=progress,
            )
        except ImportRefused as error:
            raise CommandError(str(error)) from None
        for problem in report.errors:
            self.stderr.write(str(problem))
        if report.errors and not options["skip_invalid"]:
            raise CommandError(
                f"{len(report.errors)} invalid rows: nothing was imported"
            )
        verb = "would import" if options["dry_run"] else "imported"
        self.stdout.write(
            f"{verb} {path.name} into {target.slug}: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.errors)} skipped"
        )
