"""What every format shares: the limits, the state of one parse, and refusals."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TypeVar

from faq.importers.rows import ImportRefused, Progress, Row, RowError, parse_row

T = TypeVar("T")
Parsed = tuple[list[Row], list[RowError]]
MB = 1024 * 1024  # as the upload form counts them


@dataclass(frozen=True)
class Limits:
    """How much one file may ask of the importer; the defaults suit an upload."""

    max_file_bytes: int = 20 * MB
    max_rows: int = 100_000
    max_pdf_pages: int = 500
    max_zip_members: int = 1000
    max_zip_total_bytes: int = 200 * MB
    max_zip_ratio: int = 100
    max_zip_nesting: int = 1  # a zip may hold zips, but those may not hold more
    max_json_depth: int = 32
    max_html_bytes: int = 5 * MB  # main-text extraction slows down more than linearly
    parse_seconds: float = 60

    @classmethod
    def for_shell(cls) -> "Limits":
        """Whoever runs a command owns the machine: big corpora may take their time."""
        return cls(
            max_file_bytes=4096 * MB,
            max_rows=50_000_000,
            max_pdf_pages=20_000,
            max_zip_total_bytes=8192 * MB,
            max_html_bytes=50 * MB,
            parse_seconds=3600,
        )


@dataclass
class Unpacked:
    """Bytes unpacked so far from an archive and the archives inside it."""

    total: int = 0


@dataclass(frozen=True)
class Context:
    """One parse: its limits, its progress bar, and how deep inside zips it is."""

    limits: Limits = field(default_factory=Limits)
    progress: Progress = iter
    zip_depth: int = 0
    unpacked: Unpacked = field(default_factory=Unpacked)

    def track(self, items: Iterable[T], desc: str) -> Iterable[T]:
        """Items through the progress bar (``iter``, the default, takes no label)."""
        if self.progress is iter:
            return items
        return self.progress(items, desc=desc)


class ArchiveRefused(ImportRefused):
    """An archive is unsafe to open at all: it refuses the outermost file too."""


def refused(name: str, reason: str) -> ImportRefused:
    """The whole file cannot be used; the message names the file first."""
    return ImportRefused(f"{name}: {reason}")


def reason_of(error: ImportRefused, name: str) -> str:
    """A refusal's message without the file name, to report it as one row."""
    return str(error).removeprefix(f"{name}: ")


def check_row_count(name: str, count: int, limits: Limits) -> None:
    """Stop early: a file with too many rows is refused before it fills memory."""
    if count > limits.max_rows:
        raise refused(name, f"has more than {limits.max_rows} rows (the limit)")


def stem(name: str) -> str:
    """A title for a file without one: its name, without folders or extension."""
    return PurePosixPath(name).stem or name


def why(error: Exception) -> str:
    """A library's reason for failing, short enough to show."""
    return str(error)[:200] or type(error).__name__


def size(n: int) -> str:
    """Bytes as people read them, in the units the upload form uses."""
    for unit, scale in (("GB", 1024 * MB), ("MB", MB), ("kB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def one_document(name: str, *, title: str, body: str) -> Parsed:
    """A file that is one document: its row, or the reason it is not one."""
    obj = {"kind": "document", "title": title, "body": body}
    try:
        return [parse_row(1, obj, source=name)], []
    except ValueError as error:
        return [], [RowError(1, str(error), name)]
