"""Export a collection in the formats import reads, so the two round-trip."""

import csv
import io
import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse

from faq.models import Collection, Document, Faq

FAQ_COLUMNS = ["external_id", "question", "answer", "category", "url", "published"]
DOCUMENT_COLUMNS = ["external_id", "title", "body", "category", "url", "published"]
# A cell starting with one of these runs as a formula in a spreadsheet
# (OWASP "CSV injection"); a leading apostrophe makes it text. Import strips it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_jsonl(collection: Collection) -> Iterator[str]:
    for faq in Faq.objects.filter(collection=collection).order_by("pk").iterator():
        yield _line({"kind": "faq", **{c: getattr(faq, c) for c in FAQ_COLUMNS}})
    for doc in Document.objects.filter(collection=collection).order_by("pk").iterator():
        yield _line(
            {"kind": "document", **{c: getattr(doc, c) for c in DOCUMENT_COLUMNS}}
        )


def _line(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def export_csv(collection: Collection, *, kind: str) -> Iterator[str]:
    """One kind per CSV: FAQs and documents have different columns."""
    model, columns = (
        (Faq, FAQ_COLUMNS) if kind == "faq" else (Document, DOCUMENT_COLUMNS)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for item in model._default_manager.filter(collection=collection).order_by("pk"):
        writer.writerow([csv_cell(getattr(item, c)) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if _runs_as_formula(text) else text


def csv_uncell(text: str) -> str:
    """Undo :func:`csv_cell`'s escaping when a CSV is imported."""
    return text[1:] if text.startswith("'") and _runs_as_formula(text[1:]) else text


def _runs_as_formula(text: str) -> bool:
    # Text that already starts with an escaping apostrophe is escaped once more,
    # so that unescaping gives back exactly what was stored.
    if text.startswith("'"):
        return _runs_as_formula(text[1:])
    return text.startswith(FORMULA_STARTS)


def export_response(
    collection: Collection, *, format: str, kind: str
) -> StreamingHttpResponse:
    if format == "csv":
        lines, name, mime = (
            export_csv(collection, kind=kind),
            f"{kind}s.csv",
            "text/csv",
        )
    else:
        lines, name = export_jsonl(collection), "content.jsonl"
        mime = "application/x-ndjson"
    response = StreamingHttpResponse(lines, content_type=f"{mime}; charset=utf-8")
    filename = f"{collection.slug}-{name}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
