"""Write checked rows: create or update items in one transaction, or nothing."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from embeddings.services import sources_sync
from faq.importers.rows import Row, RowError, natural_key
from faq.models import ITEMS, Collection, Item


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


Progress = Callable[[int], None]


@dataclass
class Plan:
    """What importing rows of one kind would do, before anything is written."""

    model: type[Item]
    created: list[Item] = field(default_factory=list)
    changed: list[Item] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


def import_rows(
    rows: list[Row],
    *,
    collection: Collection,
    errors: list[RowError] | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    on_written: Progress | None = None,
) -> ImportReport:
    """Create or update items from rows; on any error (unless skipped) write nothing.

    ``dry_run`` counts what would change and writes nothing; ``on_written`` hears
    how many items are written so far (the transaction hides them until commit).
    """
    report = ImportReport(rows=len(rows) + len(errors or []), errors=list(errors or []))
    unique = _without_repeats(rows, report)
    if report.errors and not skip_invalid:
        return report
    plans = [
        _plan(model, [r for r in unique if r.kind == kind], collection, report)
        for kind, model in ITEMS.items()
    ]
    if dry_run:
        return report
    with transaction.atomic():
        written = 0
        for plan in plans:
            for batch in _batches(plan.created, WRITE_BATCH):
                plan.model._default_manager.bulk_create(batch)
                written = _synced(batch, written, on_written)
            for batch in _batches(plan.changed, WRITE_BATCH):
                plan.model._default_manager.bulk_update(batch, plan.fields)
                written = _synced(batch, written, on_written)
    report.written = True
    return report


WRITE_BATCH = 500


def _batches(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _synced(batch: list[Item], written: int, on_written: Progress | None) -> int:
    sources_sync(batch)
    written += len(batch)
    if on_written:
        on_written(written)
    return written


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


def _plan(
    model: type[Item], rows: list[Row], collection: Collection, report: ImportReport
) -> Plan:
    plan = Plan(model)
    if not rows:
        return plan
    by_key: dict[tuple[str, str, str], Item] = {}
    for item in model._default_manager.filter(collection=collection):
        texts = {f: getattr(item, f, "") for f in ("question", "title", "body")}
        by_key.setdefault(natural_key(model.kind, texts), item)
        if item.external_id:
            by_key[natural_key(model.kind, {"external_id": item.external_id})] = item
    for row in rows:
        found = by_key.get(row.key)
        if found is None:
            plan.created.append(model(collection=collection, **row.data))
        elif any(getattr(found, k) != v for k, v in row.data.items()):
            for k, v in row.data.items():
                setattr(found, k, v)
            found.updated_at = timezone.now()
            plan.changed.append(found)
        else:
            report.unchanged += 1
    plan.fields = sorted({k for row in rows for k in row.data} | {"updated_at"})
    report.created += len(plan.created)
    report.updated += len(plan.changed)
    return plan
