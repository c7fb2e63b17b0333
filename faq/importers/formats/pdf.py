"""PDF: one document, its pages' text joined by form feeds so pages can be told
apart later (page n is ``body.split("\\f")[n - 1]``)."""

import io
from typing import TYPE_CHECKING

from faq.importers.formats.base import (
    Context,
    Parsed,
    one_document,
    refused,
    stem,
    why,
)

if TYPE_CHECKING:
    from pypdf import PdfReader

MAX_TITLE_CHARS = 120
PAGE_BREAK = "\f"


def parse(name: str, data: bytes, ctx: Context) -> Parsed:
    """One document from a PDF; encrypted, damaged or textless PDFs are refused."""
    reader = _open(name, data)
    count = len(reader.pages)
    if count > ctx.limits.max_pdf_pages:
        raise refused(
            name,
            f"has {count} pages, more than the limit of {ctx.limits.max_pdf_pages}",
        )
    pages = [_page_text(name, reader, n) for n in ctx.track(range(count), "pages")]
    if not any(pages):
        raise refused(
            name, "has no text that can be extracted (a scan? run it through OCR first)"
        )
    body = PAGE_BREAK.join(pages)
    return one_document(name, title=_title(name, reader, pages), body=body)


def _open(name: str, data: bytes) -> "PdfReader":
    """A reader whose pages can be counted, or the reason the PDF cannot be read."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and not _decrypted(reader)
        if not locked:
            len(reader.pages)
    except Exception as error:  # pypdf raises its own errors and plain ones alike
        raise refused(name, f"is damaged or truncated ({why(error)})") from None
    if locked:
        raise refused(name, "is password-protected; save a copy without a password")
    return reader


def _decrypted(reader: "PdfReader") -> bool:
    """Some PDFs are encrypted with an empty password only to restrict printing."""
    from pypdf.errors import PyPdfError

    try:
        return bool(reader.decrypt(""))
    except PyPdfError:  # a wrong password, or AES without the cryptography package
        return False


def _page_text(name: str, reader: "PdfReader", index: int) -> str:
    try:
        return (reader.pages[index].extract_text() or "").strip()
    except Exception as error:  # pypdf raises many kinds on damaged content streams
        raise refused(
            name, f"page {index + 1} is damaged and cannot be read ({why(error)})"
        ) from None


def _title(name: str, reader: "PdfReader", pages: list[str]) -> str:
    """The metadata title, else the first line when short, else the file name."""
    try:
        title = str((reader.metadata and reader.metadata.title) or "").strip()
    except Exception:  # damaged metadata is no reason to refuse the text
        title = ""
    if title:
        return title
    first = next(
        line.strip() for page in pages for line in page.splitlines() if line.strip()
    )
    return first if len(first) <= MAX_TITLE_CHARS else stem(name)
