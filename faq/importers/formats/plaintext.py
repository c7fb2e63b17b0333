"""Plain text: one document, titled by its first line when that reads as a title."""

from faq.importers.formats.base import Parsed, one_document, refused, stem

MAX_TITLE_CHARS = 120


def parse(name: str, text: str) -> Parsed:
    """One document; a short first line followed by more text is its title."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n", 1)
    first, rest = lines[0].strip(), (lines[1].strip() if len(lines) > 1 else "")
    if not first:
        raise refused(name, "has no readable text")
    if rest and len(first) <= MAX_TITLE_CHARS:
        return one_document(name, title=first, body=rest)
    return one_document(name, title=stem(name), body="\n".join(lines).strip())
