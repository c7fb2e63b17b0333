"""JSON: a list of objects, or JSON Lines (ours or the BEIR corpus.jsonl layout).

Every object goes through ``parse_row``. Nesting is limited and numbers too long
for Python's int-digit limit are reported, not raised, so that hostile JSON ends
in a clear message about its own line.
"""

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from faq.importers.formats.base import (
    Context,
    Parsed,
    check_row_count,
    refused,
)
from faq.importers.rows import Row, RowError, parse_row

MAX_LINE_BYTES = 1_000_000
WHITESPACE = re.compile(r"[ \t\n\r]*")


class HugeNumber:
    """Stands for an integer with more digits than Python converts (see
    ``sys.get_int_max_str_digits``), so that the row can say so."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _integer(digits: str) -> int | HugeNumber:
    limit = sys.get_int_max_str_digits()
    count = len(digits.lstrip("-"))
    return HugeNumber(count) if limit and count > limit else int(digits)


DECODER = json.JSONDecoder(parse_int=_integer)


def parse_lines(name: str, data: bytes, ctx: Context) -> Parsed:
    """One JSON object per line; each bad line is a row error on its own."""
    rows: list[Row] = []
    errors: list[RowError] = []
    lines = data.splitlines()
    for number, raw in enumerate(ctx.track(lines, "reading"), start=1):
        if not raw.strip():
            continue
        check_row_count(name, len(rows) + len(errors) + 1, ctx.limits)
        try:
            obj = _line_object(raw, ctx.limits.max_json_depth)
            rows.append(parse_row(number, obj, source=name))
        except ValueError as error:
            errors.append(RowError(number, str(error), name))
    return rows, errors


def parse_json(name: str, text: str, ctx: Context) -> Parsed:
    """A JSON list of objects; a text of one object per line is read as JSON Lines."""
    start = _skip(text, 0)
    if text.startswith("{", start):
        if _more_objects_follow(text, start):
            return parse_lines(name, text.encode("utf-8"), ctx)
        raise refused(
            name,
            "is one JSON object, not a list: put the FAQs and documents in a list "
            "[{...}, {...}]",
        )
    if not text.startswith("[", start):
        raise refused(name, "is not a JSON list of objects (it does not start with [)")
    rows: list[Row] = []
    errors: list[RowError] = []
    items = _list_items(name, text, start, ctx.limits.max_json_depth)
    for line, obj in ctx.track(items, "reading"):
        check_row_count(name, len(rows) + len(errors) + 1, ctx.limits)
        try:
            rows.append(
                parse_row(line, _checked(obj, ctx.limits.max_json_depth), source=name)
            )
        except ValueError as error:
            errors.append(RowError(line, str(error), name))
    return rows, errors


def _more_objects_follow(text: str, start: int) -> bool:
    try:
        _, end = DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return False
    return text.startswith("{", _skip(text, end))


def _list_items(
    name: str, text: str, start: int, max_depth: int
) -> Iterator[tuple[int, Any]]:
    """Each item of the list with the line it starts on.

    Decoding item by item (instead of ``json.loads`` on the whole text) is what
    tells each object's line; newlines are counted once, as the position moves on.
    """
    line, counted = 1, 0
    pos = _skip(text, start + 1)
    if text.startswith("]", pos):
        _end_of_list(name, text, pos)
        return
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, end = DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            raise refused(
                name, f"line {error.lineno}: not valid JSON ({error.msg})"
            ) from None
        except RecursionError:
            raise refused(
                name, f"line {line}: nested deeper than {max_depth} levels"
            ) from None
        yield line, obj
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("]", pos):
            _end_of_list(name, text, pos)
            return
        elif pos == len(text):
            raise refused(name, "ends before its list is closed: is it complete?")
        else:
            after = text.count("\n", 0, pos) + 1
            raise refused(
                name, f"line {after}: not valid JSON (expected , or ] after an item)"
            )


def _end_of_list(name: str, text: str, pos: int) -> None:
    rest = _skip(text, pos + 1)
    if rest != len(text):
        line = text.count("\n", 0, rest) + 1
        raise refused(name, f"line {line}: text after the end of the list")


def _skip(text: str, pos: int) -> int:
    """Where the next non-whitespace character is (the pattern always matches)."""
    return WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]


def _line_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        obj = DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError) as error:
        reason = getattr(error, "msg", "nested too deep")
        raise ValueError(f"not valid JSON ({reason})") from None
    return _checked(obj, max_depth)


def _checked(obj: Any, max_depth: int) -> dict[str, Any]:
    """The object, once it is known to be one, shallow enough, with usable numbers."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, HugeNumber):
            raise ValueError(
                f"has a number with {value.digits} digits "
                f"(at most {sys.get_int_max_str_digits()} can be read)"
            )
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return obj
