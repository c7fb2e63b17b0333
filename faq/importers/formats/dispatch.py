"""The way in: pick the format, apply the limits, and let only ImportRefused out."""

import logging

from faq.importers.formats import (
    archive,
    delimited,
    detect,
    html,
    jsondata,
    markdown,
    pdf,
    plaintext,
    word,
)
from faq.importers.formats.base import Context, Limits, Parsed, refused, size
from faq.importers.formats.deadline import deadline
from faq.importers.formats.encoding import decode_text
from faq.importers.rows import ImportRefused, Progress

logger = logging.getLogger(__name__)


def parse_file(
    name: str, data: bytes, *, progress: Progress = iter, limits: Limits | None = None
) -> Parsed:
    """The valid rows and the row errors of one file, or ImportRefused for the file.

    No other exception leaves, whatever the bytes: a file that breaks a parser
    is refused with a plain message (and the traceback goes to the log).
    """
    ctx = Context(limits=limits or Limits(), progress=progress)
    with deadline(name, ctx.limits.parse_seconds):
        try:
            return parse_any(name, data, ctx)
        except ImportRefused:
            raise
        except RecursionError:
            raise refused(name, "is nested too deeply to read") from None
        except MemoryError:
            raise refused(name, "needs too much memory to read") from None
        except Exception:
            logger.exception("reading %s failed", name)
            raise refused(name, "could not be read: it may be damaged") from None


def parse_any(name: str, data: bytes, ctx: Context) -> Parsed:
    """Parse one file (or archive member) by its content and name."""
    limit = ctx.limits.max_file_bytes
    if len(data) > limit:
        raise refused(
            name, f"is {size(len(data))}, more than the limit of {size(limit)}"
        )
    if not data.strip():
        raise refused(name, "is empty")
    family = detect.by_content_and_name(name, data)
    if family == "pdf":
        return pdf.parse(name, data, ctx)
    if family == "docx":
        return word.parse(name, data, ctx)
    if family == "zip":
        return archive.parse(name, data, ctx, parse_member=parse_any)
    if family == "jsonl":
        rows, errors = jsondata.parse_lines(name, data, ctx)
    else:
        rows, errors = _parse_text(name, decode_text(name, data), family, ctx)
    if not rows and not errors:
        raise refused(name, "holds no FAQs or documents")
    return rows, errors


def _parse_text(name: str, text: str, family: str | None, ctx: Context) -> Parsed:
    if not text.strip():
        raise refused(name, "is empty")
    family = family or detect.sniff(text)
    if family in ("csv", "tsv"):
        return delimited.parse(name, text, ctx, flavour=family)
    if family == "json":
        return jsondata.parse_json(name, text, ctx)
    if family == "markdown":
        return markdown.parse(name, text, ctx)
    if family == "html":
        return html.parse(name, text, ctx)
    return plaintext.parse(name, text)
