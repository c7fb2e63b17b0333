"""One row of an import: checked and mapped to a model's fields, or refused."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from faq.fields import web_url

Progress = Callable[..., Iterable[Any]]

FIELD_LIMITS = {
    "question": 1000,
    "title": 500,
    "category": 100,
    "external_id": 200,
    "url": 500,
    "answer": 100_000,
    "body": 2_000_000,
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


class ImportRefused(Exception):
    """A whole file (or upload) cannot be read: not a problem of one row."""


@dataclass(frozen=True)
class Row:
    line: int
    kind: str
    data: dict[str, Any]
    source: str = ""  # the file it came from, for reports

    @property
    def key(self) -> tuple[str, str, str]:
        return natural_key(self.kind, self.data)

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}" if self.source else f"line {self.line}"


@dataclass(frozen=True)
class RowError:
    line: int
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}line {self.line}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "message": self.message}


def natural_key(kind: str, fields: dict[str, Any]) -> tuple[str, str, str]:
    """What finds the item a row updates: external id, else question, title or body."""
    for name in ("external_id", "question", "title", "body"):
        if fields.get(name):
            return (kind, name, fields[name])
    return (kind, "", "")


def parse_row(line: int, obj: dict[str, Any], *, source: str = "") -> Row:
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
        data[name] = _check(name, value)
    if kind == "faq" and not (data.get("question") and data.get("answer")):
        raise ValueError("a FAQ needs a question and an answer")
    if kind == "document" and not (data.get("title") or data.get("body")):
        raise ValueError("a document needs a title or a body")
    if data.get("url"):
        try:
            web_url(data["url"])
        except ValidationError:
            raise ValueError(f"url is not a valid URL: {data['url'][:80]!r}") from None
    if kind == "document":
        data.setdefault("title", "")
        data.setdefault("body", "")
    return Row(line, kind, data, source)


def _check(name: str, value: Any) -> Any:
    if name == "published":
        if isinstance(value, bool):
            return value
        raise ValueError("published must be true or false")
    if name == "external_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    value = value.strip()
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    if len(value) > FIELD_LIMITS[name]:
        raise ValueError(f"{name} is longer than {FIELD_LIMITS[name]} characters")
    return value
