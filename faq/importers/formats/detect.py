"""Which format a file is in: its first bytes first, then its name, then its text."""

import io
import re
import zipfile
from pathlib import PurePosixPath

from faq.importers.formats.archive import UNREADABLE
from faq.importers.formats.base import refused

PDF_MAGIC = b"%PDF"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # an archive, an empty archive
# An OLE compound file: an old .doc/.xls/.ppt, or a new one encrypted whole.
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # a stream's name
WORD_SUFFIXES = ("docx", "docm", "dotx", "dotm")
WORD_PARTS = {"[content_types].xml", "word/document.xml"}
EXTENSIONS = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "md": "markdown",
    "markdown": "markdown",
    "mdown": "markdown",
    "mkd": "markdown",
    "txt": "text",
    "text": "text",
    "htm": "html",
    "html": "html",
    "xhtml": "html",
    "pdf": "pdf",
    "zip": "zip",
}
# Files that are zips inside, named for what they hold: say what to do instead.
ZIP_BASED = {
    "xlsx": "an Excel workbook; save it as CSV",
    "pptx": "a PowerPoint presentation; save it as PDF",
    "odt": "an OpenDocument text; save it as PDF or HTML",
    "ods": "an OpenDocument spreadsheet; save it as CSV",
    "odp": "an OpenDocument presentation; save it as PDF",
    "epub": "an e-book; save it as PDF or HTML",
}
HTML_START = re.compile(
    r"<(!doctype\s+html|html|head|body|article|main|div|p|h[1-6])\b", re.IGNORECASE
)
MARKDOWN_SIGNS = re.compile(r"^(#{1,6} \S|```|\* \S|- \S|\d+\. \S)", re.MULTILINE)
SNIFF_CHARS = 65_536


def extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower().removeprefix(".")


def by_content_and_name(name: str, data: bytes) -> str | None:
    """The format from magic bytes and extension; None: sniff the decoded text."""
    suffix = extension(name)
    if data.startswith(PDF_MAGIC) or (suffix == "pdf" and PDF_MAGIC in data[:1024]):
        return "pdf"
    if data.startswith(CFB_MAGIC) and ENCRYPTED_PACKAGE in data:
        raise refused(
            name, "is a password-protected Office file; save a copy without a password"
        )
    if data.startswith(ZIP_MAGICS):
        if suffix in WORD_SUFFIXES or _is_word_package(data):
            return "docx"
        if suffix in ZIP_BASED:
            raise refused(name, f"is {ZIP_BASED[suffix]}, then import that")
        if suffix in ("zip", "") or suffix not in EXTENSIONS:
            return "zip"
        raise refused(name, f"is a ZIP archive, not a .{suffix} file")
    if suffix == "pdf":
        raise refused(name, "is not a PDF (it does not start with %PDF)")
    if suffix == "zip":
        raise refused(name, "is not a ZIP archive (it does not start with PK)")
    if suffix in WORD_SUFFIXES and not data.startswith(CFB_MAGIC):
        raise refused(name, "is not a Word document (it does not start with PK)")
    return EXTENSIONS.get(suffix)


def _is_word_package(data: bytes) -> bool:
    """A ZIP that holds a Word document's parts, whatever its name says."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = {name.lower() for name in package.namelist()}
    except UNREADABLE:
        return False
    return WORD_PARTS.issubset(names)


def sniff(text: str) -> str:
    """The format of text whose name does not tell: JSON, HTML, markdown or text."""
    head = text[:SNIFF_CHARS].lstrip()
    if head.startswith(("[", "{")):
        return "json"
    if head.startswith("<") and HTML_START.search(head[:2048]):
        return "html"
    if MARKDOWN_SIGNS.search(head):
        return "markdown"
    return "text"
