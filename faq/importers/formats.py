"""File formats: bytes in, rows and row errors out, or the whole file refused."""

import json
from typing import Any

from faq.importers.rows import ImportRefused, Progress, Row, RowError, parse_row

MAX_LINE_BYTES = 1_000_000


def parse_file(
    name: str, data: bytes, *, progress: Progress = iter
) -> tuple[list[Row], list[RowError]]:
    """Parse one file by its extension; ImportRefused when it cannot be read at all."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in ("jsonl", "ndjson"):
        raise ImportRefused(
            f"{name}: only JSON Lines (.jsonl) files can be imported yet"
        )
    return parse_jsonl(name, data.splitlines(), progress=progress)


def parse_jsonl(
    name: str, lines: list[bytes], *, progress: Progress = iter
) -> tuple[list[Row], list[RowError]]:
    rows: list[Row] = []
    errors: list[RowError] = []
    for number, raw in enumerate(progress(lines, desc="reading"), start=1):
        if not raw.strip():
            continue
        try:
            rows.append(parse_row(number, _json_object(raw), source=name))
        except ValueError as error:
            errors.append(RowError(number, str(error), name))
    return rows, errors


def _json_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        reason = getattr(error, "msg", "nested too deep")
        raise ValueError(f"not valid JSON ({reason})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    return obj
