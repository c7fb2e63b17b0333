"""Word (.docx): one document, or FAQs when its sections are all questions.

Headings come from paragraph styles (Title and Heading 1 are level 1, Heading 2
level 2, and so on, styles based on them included) or from an outline level;
``sections`` then reads them as markdown's ``#`` and ``##``. Lists keep their
items together, a table row becomes ``cell | cell``, and headers, footers,
pictures and a table of contents are left out. Line numbers count paragraphs
(a table row counts as one).

A .docx is a ZIP package, so it is held to the archive limits before python-docx
sees it: zipfile never unpacks more than a member declares (it stops there and
fails the checksum), and Word writes only stored or deflated members, so the
declared sizes bound what unpacking can cost. Nothing is ever fetched or run:
linked pictures and templates stay links, macros refuse the file, and XML
parts that declare entities (which Word never writes) are refused before lxml
sees them.
"""

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from faq.importers.formats import sections
from faq.importers.formats.archive import UNREADABLE, check_members
from faq.importers.formats.base import (
    ArchiveRefused,
    Context,
    Limits,
    Parsed,
    refused,
    size,
    why,
)
from faq.importers.formats.sections import Block

if TYPE_CHECKING:
    from docx.document import Document
    from docx.styles.style import BaseStyle

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
P, TABLE, RUN, PPR, VAL = f"{W}p", f"{W}tbl", f"{W}r", f"{W}pPr", f"{W}val"
# What a run's text is made of; python-docx gives each its text (a tab: "\t").
RUN_TEXT = tuple(
    f"{W}{tag}" for tag in ("t", "tab", "br", "cr", "noBreakHyphen", "ptab")
)
# Elements that hold paragraphs and tables (content controls, custom XML)...
BLOCK_WRAPPERS = {f"{W}sdt", f"{W}sdtContent", f"{W}customXml"}
# ...and those that hold runs: links, tracked insertions, fields, smart tags.
RUN_WRAPPERS = BLOCK_WRAPPERS | {
    f"{W}hyperlink",
    f"{W}ins",
    f"{W}fldSimple",
    f"{W}smartTag",
}
WORD_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
}
MACRO_TYPES = {
    "application/vnd.ms-word.document.macroEnabled.main+xml",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
}
DTD_MARKS = tuple("<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le"))
HEADING_STYLE = re.compile(r"heading ([1-9])")
OUTLINE_LEVELS = {str(n): n + 1 for n in range(9)}  # 9, or anything else: body text
MAX_BASED_ON = 10  # styles based on styles; a hostile file may loop them


def parse(name: str, data: bytes, ctx: Context) -> Parsed:
    """FAQs or one document from a Word file; unsafe or damaged files are refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            _check_package(name, package, ctx)
    except UNREADABLE as error:
        raise refused(name, f"is not a readable Word document ({error})") from None
    return sections.parse(name, _blocks(_open(name, data)), ctx)


def _check_package(name: str, package: zipfile.ZipFile, ctx: Context) -> None:
    """Refuse a package by its declared numbers, and XML parts that declare a DTD."""
    parts = package.infolist()
    check_members(name, parts, ctx.limits)
    for info in parts:
        _check_part(name, info, ctx.limits)
    ctx.unpacked.total += sum(info.file_size for info in parts)
    if ctx.unpacked.total > ctx.limits.max_zip_total_bytes:
        raise ArchiveRefused(
            f"{name}: unpacks to more than the limit of "
            f"{size(ctx.limits.max_zip_total_bytes)}"
        )
    for info in parts:
        if _declares_dtd(package, info):
            raise refused(
                name,
                f"{info.filename} declares a DOCTYPE, which Word never writes "
                "(an XML entity attack?)",
            )


def _check_part(name: str, info: zipfile.ZipInfo, limits: Limits) -> None:
    if info.flag_bits & 0x1:
        raise refused(name, "is password-protected; save a copy without a password")
    if info.file_size > limits.max_file_bytes:
        raise refused(
            name,
            f"{info.filename} would unpack to {size(info.file_size)}, more than "
            f"the limit of {size(limits.max_file_bytes)}",
        )


def _declares_dtd(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if not info.filename.endswith((".xml", ".rels")):
        return False
    data = package.read(info)
    return any(mark in data for mark in DTD_MARKS)


def _open(name: str, data: bytes) -> "Document":
    from docx.package import Package  # a heavy import, needed only for Word

    try:
        part: Any = Package.open(io.BytesIO(data)).main_document_part
    except Exception as error:  # python-docx raises KeyError, lxml errors and more
        raise refused(name, f"is not a readable Word document ({why(error)})") from None
    if part.content_type in MACRO_TYPES:
        raise refused(
            name,
            "has macros, which are never run: save it as a .docx without them, "
            "then import that",
        )
    if part.content_type not in WORD_TYPES:
        raise refused(name, f"is not a Word document (it holds {part.content_type})")
    document: Document = part.document
    return document


class Style(NamedTuple):
    """What a paragraph's style (or its own formatting) makes of it."""

    level: int  # 1 to 9 for headings, 0 for body text
    listed: bool  # an item of a bulleted or numbered list
    toc: bool  # a line of a table of contents, which repeats the headings


def _blocks(document: "Document") -> list[Block]:
    """The readable blocks, in order: paragraphs with their levels, table rows."""
    from docx.enum.style import WD_STYLE_TYPE

    @cache
    def style_of(style_id: str | None) -> Style:
        return _style(document.part.get_style(style_id, WD_STYLE_TYPE.PARAGRAPH))

    blocks: list[Block] = []
    line, group = 0, -1
    for element in _body(document.element.body):
        if element.tag == TABLE:
            rows = element.tr_lst
            for n, row in enumerate(rows, start=1):
                blocks.append(Block(_row_text(row), line + n, group=line + 1))
            line, group = line + len(rows), -1
            continue
        line += 1
        kind = _paragraph(element, style_of)
        group = (line if group < 0 else group) if kind.listed else -1
        text = _text(element).strip()
        if text and not kind.toc:
            blocks.append(Block(text, line, kind.level, group))
    return blocks


def _body(element: Any) -> Iterator[Any]:
    """The paragraphs and tables inside, in order, content controls opened."""
    for child in element:
        if child.tag in (P, TABLE):
            yield child
        elif child.tag in BLOCK_WRAPPERS:
            yield from _body(child)


def _paragraph(p: Any, style_of: Callable[[str | None], Style]) -> Style:
    """The paragraph's style, overridden by its own outline level and numbering."""
    ppr = p.find(PPR)
    style_id = None if ppr is None else ppr.find(f"{W}pStyle")
    style = style_of(None if style_id is None else style_id.get(VAL))
    own = _outline_level(ppr)
    level = style.level if own is None else own
    listed = (style.listed or _numbered(ppr)) and not level
    return Style(level, listed, style.toc)


def _style(style: "BaseStyle") -> Style:
    """A style's heading level and list-ness, from it or the styles it is based on."""
    level: int | None = None
    listed = False
    current: Any = style  # a paragraph style: BaseStyle lacks base_style
    for _ in range(MAX_BASED_ON):
        if current is None:
            break
        name = (current.name or "").lower()
        if level is None:
            level = _named_level(name)
        if level is None:
            level = _outline_level(current.element.pPr)
        listed = listed or name.startswith("list") or _numbered(current.element.pPr)
        current = current.base_style
    toc = (style.name or "").lower().startswith("toc")
    return Style(level or 0, listed, toc)


def _named_level(name: str) -> int | None:
    if name == "title":
        return 1
    heading = HEADING_STYLE.fullmatch(name)
    return int(heading.group(1)) if heading else None


def _outline_level(ppr: Any) -> int | None:
    """An outline level set on a paragraph or style: 1 to 9, 0 for body text."""
    found = None if ppr is None else ppr.find(f"{W}outlineLvl")
    if found is None:
        return None
    return OUTLINE_LEVELS.get(found.get(VAL, ""), 0)


def _numbered(ppr: Any) -> bool:
    return ppr is not None and ppr.find(f"{W}numPr") is not None


def _text(element: Any) -> str:
    """A paragraph's words, in links, insertions and fields too; deleted text and
    text boxes are left out."""
    return "".join(
        "".join(map(str, child.iterchildren(*RUN_TEXT)))
        if child.tag == RUN
        else _text(child)
        for child in element
        if child.tag == RUN or child.tag in RUN_WRAPPERS
    )


def _row_text(row: Any) -> str:
    cells = (
        " ".join(text for p in cell.p_lst if (text := _text(p).strip()))
        for cell in row.tc_lst
    )
    return " | ".join(cell for cell in cells if cell)
