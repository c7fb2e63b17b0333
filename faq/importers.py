"""Import help content from files: check every row, report every problem, write all
or nothing.

Formats: JSON Lines, one object a line, either our own rows (``kind`` ``faq``
with ``question``/``answer``, or ``document`` with ``title``/``body``) or the BEIR
``corpus.jsonl`` layout (``_id``, ``title``, ``text``), which becomes documents.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from embeddings.services import sources_sync
from faq.models import Collection, Document, Faq, Item

Progress = Callable[..., Iterable[Any]]
MAX_LINE_BYTES = 1_000_000
LIMITS = {
    "question": 1000,
    "title": 500,
    "category": 100,
    "external_id": 200,
    "url": 500,
}
FIELDS = {
    "faq": ("question", "answer", "category", "external_id", "url", "published"),
    "document": ("title", "body", "category", "external_id", "url", "published"),
}
ALIASES = {
    "_id": "external_id",
    "id": "external_id",
    "text": "body",
    "source_url": "url",
}
MODELS: dict[str, type[Item]] = {"faq": Faq, "document": Document}


@dataclass(frozen=True)
class Row:
    line: int
    kind: str
    data: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return natural_key(self.kind, self.data)


def natural_key(kind: str, fields: dict[str, Any]) -> tuple[str, str, str]:
    """What finds the item a row updates: external id, else question, title or body."""
    for name in ("external_id", "question", "title", "body"):
        if fields.get(name):
            return (kind, name, fields[name])
    return (kind, "", "")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


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
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
            "written": self.written,
        }


class ImportRefused(Exception):
    """The file cannot be read at all (not a row problem)."""


def parse_jsonl(
    path: Path, *, progress: Progress = iter
) -> tuple[list[Row], list[RowError]]:
    rows: list[Row] = []
    errors: list[RowError] = []
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ImportRefused(f"cannot open {path}: {error.strerror}") from None
    with handle:
        for number, raw in enumerate(progress(handle, desc="reading"), start=1):
            if not raw.strip():
                continue
            try:
                rows.append(parse_row(number, _decode(raw)))
            except ValueError as error:
                errors.append(RowError(number, str(error)))
    return rows, errors


def _decode(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(
            f"not valid JSON ({getattr(error, 'msg', 'nested too deep')})"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    return obj


def parse_row(line: int, obj: dict[str, Any]) -> Row:
    """Check one object and map it to a model's fields; ValueError says why not."""
    obj = {ALIASES.get(k, k): v for k, v in obj.items()}
    kind = obj.pop("kind", None) or ("faq" if "question" in obj else "document")
    if kind not in FIELDS:
        raise ValueError(f"kind must be 'faq' or 'document', not {kind!r}")
    data: dict[str, Any] = {}
    for name in FIELDS[kind]:
        value = obj.get(name)
        if value is None:
            continue
        if name == "published":
            if not isinstance(value, bool):
                raise ValueError("published must be true or false")
            data[name] = value
            continue
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and name == "external_id"
        ):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        value = value.strip()
        if len(value) > LIMITS.get(name, 1_000_000):
            raise ValueError(
                f"{name} is longer than {LIMITS.get(name, 1_000_000)} characters"
            )
        data[name] = value
    if kind == "faq" and not (data.get("question") and data.get("answer")):
        raise ValueError("a FAQ needs a question and an answer")
    if kind == "document" and not (data.get("title") or data.get("body")):
        raise ValueError("a document needs a title or a body")
    if data.get("url"):
        try:
            URLValidator()(data["url"])
        except ValidationError:
            raise ValueError(f"url is not a valid URL: {data['url'][:80]!r}") from None
    if kind == "document":
        data.setdefault("title", "")
        data.setdefault("body", "")
    return Row(line, kind, data)


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
    seen: dict[tuple[str, str, str], int] = {}
    unique_rows = []
    for row in rows:
        if row.key in seen:
            report.errors.append(
                RowError(row.line, f"repeats line {seen[row.key]} ({row.key[1]})")
            )
        else:
            seen[row.key] = row.line
            unique_rows.append(row)
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not skip_invalid:
        return report
    with transaction.atomic():
        for kind, model in MODELS.items():
            _upsert(
                model, [r for r in unique_rows if r.kind == kind], collection, report
            )
        if dry_run:
            transaction.set_rollback(True)
        else:
            report.written = True
    return report


def _upsert(
    model: type[Item], rows: list[Row], collection: Collection, report: ImportReport
) -> None:
    if not rows:
        return
    by_key: dict[tuple[str, str, str], Item] = {}
    for item in model._default_manager.filter(collection=collection):
        texts = {
            name: getattr(item, name, "") for name in ("question", "title", "body")
        }
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
            changed.append(found)
        else:
            report.unchanged += 1
    model._default_manager.bulk_create(created, batch_size=500)
    fields = sorted({k for row in rows for k in row.data} | {"updated_at"})
    for item in changed:
        item.updated_at = timezone.now()
    model._default_manager.bulk_update(changed, fields, batch_size=500)
    sources_sync(created + changed)
    report.created += len(created)
    report.updated += len(changed)


def import_file(
    path: Path,
    *,
    collection: Collection,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress = iter,
) -> ImportReport:
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise ImportRefused(
            f"{path.name}: only JSON Lines (.jsonl) files can be imported yet"
        )
    rows, errors = parse_jsonl(path, progress=progress)
    return import_rows(
        rows,
        collection=collection,
        errors=errors,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
    )
