"""CSV and TSV: a header row names the columns, each record after it is one row.

Line numbers are physical lines, so a quoted cell spanning lines moves the count
on as a spreadsheet user would see it.
"""

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from faq.exports import csv_uncell
from faq.importers.formats.base import Context, Parsed, check_row_count, refused
from faq.importers.rows import FIELD_LIMITS, FIELDS, Row, RowError, parse_row

if TYPE_CHECKING:
    from _csv import Reader

COLUMNS = {
    "question": "question",
    "answer": "answer",
    "category": "category",
    "id": "external_id",
    "external_id": "external_id",
    "url": "url",
    "title": "title",
    "body": "body",
    "text": "body",
    "published": "published",
}
BOOLEANS = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
DELIMITERS = {"csv": (",", ";", "\t"), "tsv": ("\t", ",", ";")}
MAX_CELL_CHARS = max(FIELD_LIMITS.values())
SHOWN_COLUMNS = 12

# The csv module refuses cells over 131072 characters by default, a limit set for
# the whole process; raise it (never lower it) to the longest field a row may hold.
csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARS + 1))


def parse(name: str, text: str, ctx: Context, *, flavour: str = "csv") -> Parsed:
    """Rows from delimited text; the delimiter is the one whose header makes sense."""
    delimiter = _delimiter(text, DELIMITERS[flavour])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = _records(name, reader)
    header_line, header = next(records, (1, []))
    kind, fields = _fields(name, header)
    rows: list[Row] = []
    errors: list[RowError] = []
    for line, cells in ctx.track(records, "reading"):
        check_row_count(name, len(rows) + len(errors) + 1, ctx.limits)
        try:
            obj = _object(kind, fields, cells, width=len(header))
            rows.append(parse_row(line, obj, source=name))
        except ValueError as error:
            errors.append(RowError(line, str(error), name))
    if not rows and not errors:
        raise refused(name, f"has a header on line {header_line} but no rows")
    return rows, errors


def _records(name: str, reader: "Reader") -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the line each starts on."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise refused(name, f"line {start}: {_csv_problem(error)}") from None
        if any(cell.strip() for cell in cells):
            yield start, cells


def _csv_problem(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {MAX_CELL_CHARS} characters"
    return f"not valid CSV ({error})"


def _delimiter(text: str, preferred: tuple[str, ...]) -> str:
    """The delimiter that splits the first line into known columns, else the most."""
    first = next((line for line in io.StringIO(text) if line.strip()), "")

    def score(delimiter: str) -> tuple[bool, int, int]:
        try:
            header = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error:
            return (False, 0, 0)
        known = {COLUMNS[n] for n in _names(header) if n in COLUMNS}
        return (_kind_of(known) is not None, len(known), len(header))

    return max(preferred, key=score)  # max keeps the first of equals


def _names(header: list[str]) -> list[str]:
    return [cell.strip().lower() for cell in header]


def _kind_of(known: set[str]) -> str | None:
    if {"question", "answer"} <= known:
        return "faq"
    if {"title", "body"} <= known:
        return "document"
    return None


def _fields(name: str, header: list[str]) -> tuple[str, dict[int, str]]:
    """The kind of row and which field each column holds; refuses other headers."""
    names = _names(header)
    fields = {i: COLUMNS[n] for i, n in enumerate(names) if n in COLUMNS}
    kind = _kind_of(set(fields.values()))
    if kind is None:
        found = ", ".join(n[:40] for n in names[:SHOWN_COLUMNS] if n) or "no names"
        raise refused(
            name,
            "the header must name the columns question and answer (FAQs), or "
            f"title and body or text (documents); found {found}",
        )
    fields = {i: f for i, f in fields.items() if f in FIELDS[kind]}
    taken = list(fields.values())
    twice = sorted({f for f in taken if taken.count(f) > 1})
    if twice:
        raise refused(name, f"the header has more than one column for {twice[0]}")
    return kind, fields


def _object(
    kind: str, fields: dict[int, str], cells: list[str], *, width: int
) -> dict[str, str | bool]:
    """The row as parse_row takes it; blank cells are left out, as in JSON."""
    if any(cell.strip() for cell in cells[width:]):
        raise ValueError(
            f"has {len(cells)} cells but the header has {width} "
            "(a delimiter inside a cell that is not quoted?)"
        )
    obj: dict[str, str | bool] = {"kind": kind}
    for i, field in fields.items():
        if i < len(cells) and cells[i].strip():
            obj[field] = _value(field, cells[i])
    return obj


def _value(field: str, cell: str) -> str | bool:
    """A cell's value: true/false read, our export's formula escaping undone, and
    line breaks inside a cell made plain newlines (spreadsheets write CRLF)."""
    if field == "published":
        return BOOLEANS.get(cell.strip().lower(), cell)
    return csv_uncell(cell).replace("\r\n", "\n").replace("\r", "\n")
