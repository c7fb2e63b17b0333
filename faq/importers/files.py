"""Import from a path on disk (the shell's way in)."""

from pathlib import Path

from faq.importers.formats import Limits, parse_file
from faq.importers.rows import ImportRefused, Progress
from faq.importers.writer import ImportReport, import_rows
from faq.models import Collection


def import_path(
    path: Path,
    *,
    collection: Collection,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress = iter,
) -> ImportReport:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImportRefused(f"cannot open {path}: {error.strerror}") from None
    rows, errors = parse_file(
        path.name, data, progress=progress, limits=Limits.for_shell()
    )
    return import_rows(
        rows,
        collection=collection,
        errors=errors,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
    )
