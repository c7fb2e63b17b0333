"""ZIP archives: each member is parsed as a file of its own, in memory only.

Nothing is ever written to disk, so member paths cannot escape anywhere; a path
that tries to (``../``, ``/etc``) still marks the archive as hostile. Zip bombs
are stopped twice: by the sizes the archive declares, and by the bytes actually
unpacked, in case it lies.
"""

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

from faq.importers.formats.base import (
    ArchiveRefused,
    Context,
    Limits,
    Parsed,
    check_row_count,
    reason_of,
    refused,
    size,
)
from faq.importers.rows import ImportRefused, Row, RowError

ParseMember = Callable[[str, bytes, Context], Parsed]
SKIPPED_NAMES = {"Thumbs.db", "desktop.ini"}
RATIO_FLOOR_BYTES = 1_000_000  # small text files compress well and are harmless
CHUNK_BYTES = 65_536
# What zipfile raises on damaged archives (a bad offset is a ValueError).
UNREADABLE = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    NotImplementedError,
    ValueError,
)


def parse(name: str, data: bytes, ctx: Context, *, parse_member: ParseMember) -> Parsed:
    """The rows of every member; a member that cannot be read is a row error."""
    if ctx.zip_depth > ctx.limits.max_zip_nesting:
        raise ArchiveRefused(
            f"{name}: holds archives nested more than "
            f"{ctx.limits.max_zip_nesting} level deep"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except UNREADABLE as error:
        raise refused(name, f"is not a readable ZIP archive ({error})") from None
    with archive:
        members = _members(name, archive, ctx)
        inner = replace(ctx, zip_depth=ctx.zip_depth + 1)
        rows: list[Row] = []
        errors: list[RowError] = []
        for info in ctx.track(members, "unpacking"):
            found, problems = _member(name, archive, info, inner, parse_member)
            rows += found
            errors += problems
            check_row_count(name, len(rows) + len(errors), ctx.limits)
    if not rows and not errors:
        raise refused(name, "holds no files that can be imported")
    return rows, errors


def _members(
    name: str, archive: zipfile.ZipFile, ctx: Context
) -> list[zipfile.ZipInfo]:
    """The members worth reading, once the archive's own numbers look safe."""
    entries = archive.infolist()
    check_members(name, entries, ctx.limits)
    return [info for info in entries if not _skipped(info)]


def check_members(name: str, entries: list[zipfile.ZipInfo], limits: Limits) -> None:
    """Refuse a ZIP (or a package such as .docx) by the numbers it declares: too
    many members, an unsafe path, a bomb's compression ratio, too much in all."""
    if len(entries) > limits.max_zip_members:
        raise ArchiveRefused(
            f"{name}: holds {len(entries)} files, more than the limit of "
            f"{limits.max_zip_members}"
        )
    for info in entries:
        _check_member(name, info, limits.max_zip_ratio)
    declared = sum(info.file_size for info in entries)
    if declared > limits.max_zip_total_bytes:
        raise ArchiveRefused(
            f"{name}: would unpack to {size(declared)}, more than the limit of "
            f"{size(limits.max_zip_total_bytes)}"
        )


def _skipped(info: zipfile.ZipInfo) -> bool:
    """Folders, macOS resource forks, hidden files and Windows thumbnails."""
    parts = PurePosixPath(info.filename).parts
    return (
        info.is_dir()
        or info.filename.startswith("__MACOSX/")
        or any(part.startswith(".") and part != ".." for part in parts)
        or (bool(parts) and parts[-1] in SKIPPED_NAMES)
    )


def _check_member(name: str, info: zipfile.ZipInfo, max_ratio: int) -> None:
    path = info.filename.replace("\\", "/")
    if path.startswith("/") or ".." in path.split("/") or ":" in path.split("/")[0]:
        raise ArchiveRefused(
            f"{name}: holds a file with an unsafe path ({_printable(info.filename)!r})"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # bzip2 and LZMA unpack a whole compressed block at once: 100 MB from a
        # hundred bytes, in memory, before any size is checked.
        raise ArchiveRefused(
            f"{name}: {_printable(info.filename)} is compressed with method "
            f"{info.compress_type}; only stored or deflated files are unpacked"
        )
    compressed = max(info.compress_size, 1)
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > max_ratio * compressed:
        raise ArchiveRefused(
            f"{name}: {_printable(info.filename)} is compressed "
            f"{info.file_size // compressed}:1, more than {max_ratio}:1 "
            "(a zip bomb?)"
        )


def _member(
    name: str,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    ctx: Context,
    parse_member: ParseMember,
) -> Parsed:
    source = f"{name}/{_printable(info.filename)}"
    try:
        data = _unpack(name, archive, info, ctx)
        return parse_member(source, data, ctx)
    except ArchiveRefused:
        raise
    except ImportRefused as error:
        return [], [RowError(1, reason_of(error, source), source)]


def _unpack(
    name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Context
) -> bytes:
    """The member's bytes, read in chunks that stop at the limits whatever it claims."""
    source = f"{name}/{_printable(info.filename)}"
    limit = ctx.limits.max_file_bytes
    if info.flag_bits & 0x1:
        raise refused(source, "is password-protected")
    if info.file_size > limit:
        raise refused(
            source, f"is {size(info.file_size)}, more than the limit of {size(limit)}"
        )
    chunks: list[bytes] = []
    read = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                read += len(chunk)
                _count(name, source, read, info, ctx)
                chunks.append(chunk)
    except UNREADABLE as error:
        raise refused(source, f"is damaged and cannot be unpacked ({error})") from None
    ctx.unpacked.total += read
    return b"".join(chunks)


def _count(
    name: str, source: str, read: int, info: zipfile.ZipInfo, ctx: Context
) -> None:
    limits = ctx.limits
    if read > min(info.file_size, limits.max_file_bytes):
        raise ArchiveRefused(
            f"{source}: unpacks to more than it declares (a zip bomb?)"
        )
    if ctx.unpacked.total + read > limits.max_zip_total_bytes:
        raise ArchiveRefused(
            f"{name}: unpacks to more than the limit of "
            f"{size(limits.max_zip_total_bytes)}"
        )


def _printable(path: str) -> str:
    """A member name safe to show: control characters could rewrite a terminal."""
    return "".join(c if c.isprintable() else "?" for c in path)
