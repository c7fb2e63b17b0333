"""Write checked rows: create or update items in one transaction, or nothing."""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from embeddings.services import sources_sync
from faq.importers.rows import Row, RowError, natural_key
from faq.models import Collection, Document, Faq, Item

MODELS: dict[str, type[Item]] = {"faq": Faq, "document": Document}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [error.as_dict() for error in self.errors],
            "written": self.written,
        }


def import_rows(
    rows: list[Row],
    *,
    collection: Collection,
    errors: list[RowError] | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
) -> ImportReport:
    """Create or update items from rows; on any error (unless skipped) write nothing."""
    report = ImportReport(rows=len(rows) + len(errors or []), errors=list(errors or []))
    unique = _without_repeats(rows, report)
    if report.errors and not skip_invalid:
        return report
    with transaction.atomic():
        for kind, model in MODELS.items():
            _upsert(model, [r for r in unique if r.kind == kind], collection, report)
        if dry_run:
            transaction.set_rollback(True)
        else:
            report.written = True
    return report


def _without_repeats(rows: list[Row], report: ImportReport) -> list[Row]:
    """A second row for the same item is an error, not a silent overwrite."""
    seen: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        if row.key in seen:
            first = seen[row.key]
            where = f"line {first.line}" if first.source == row.source else first.where
            message = f"repeats {where} ({row.key[1]})"
            report.errors.append(RowError(row.line, message, row.source))
        else:
            seen[row.key] = row
    report.errors.sort(key=lambda e: (e.source, e.line))
    return list(seen.values())


def _upsert(
    model: type[Item], rows: list[Row], collection: Collection, report: ImportReport
) -> None:
    if not rows:
        return
    by_key: dict[tuple[str, str, str], Item] = {}
    for item in model._default_manager.filter(collection=collection):
        texts = {f: getattr(item, f, "") for f in ("question", "title", "body")}
        by_key.setdefault(natural_key(model.kind, texts), item)
        if item.external_id:
            by_key[natural_key(model.kind, {"external_id": item.external_id})] = item
    created: list[Item] = []
    changed: list[Item] = []
    for row in rows:
        found = by_key.get(row.key)
        if found is None:
            created.append(model(collection=collection, **row.data))
        elif any(getattr(found, k) != v for k, v in row.data.items()):
            for k, v in row.data.items():
                setattr(found, k, v)
            found.updated_at = timezone.now()
            changed.append(found)
        else:
            report.unchanged += 1
    model._default_manager.bulk_create(created, batch_size=500)
    fields = sorted({k for row in rows for k in row.data} | {"updated_at"})
    model._default_manager.bulk_update(changed, fields, batch_size=500)
    sources_sync(created + changed)
    report.created += len(created)
    report.updated += len(changed)
