"""Text in headed sections (markdown, Word): FAQs when every section is a question,
else one document.

A file whose sections are all level-2 headings that end with "?" (questions),
with at most a level-1 title before the first, becomes one FAQ per section, the
title as their category. Anything else is one document: its title the first
level-1 heading (else the file name), its body the rest, other headings kept as
paragraphs of their own.
"""

from dataclasses import dataclass

from faq.importers.formats.base import (
    Context,
    Parsed,
    check_row_count,
    one_document,
    refused,
    stem,
)
from faq.importers.rows import Row, RowError, parse_row


@dataclass(frozen=True)
class Block:
    """One readable piece of the file: a heading, a paragraph, a code block..."""

    text: str
    line: int
    level: int = 0  # 1 to 9 for headings (markdown has 6)
    group: int = -1  # blocks of one list or table are joined by single newlines


def parse(name: str, blocks: list[Block], ctx: Context) -> Parsed:
    """FAQs or one document from a file's blocks."""
    if _is_faq_list(blocks):
        return _faqs(name, blocks, ctx)
    return _document(name, blocks)


def _document(name: str, blocks: list[Block]) -> Parsed:
    title = next((b for b in blocks if b.level == 1 and b.text), None)
    body = joined([b for b in blocks if b is not title])
    if not body:
        raise refused(name, "has no readable text")
    return one_document(name, title=title.text if title else stem(name), body=body)


def _is_faq_list(blocks: list[Block]) -> bool:
    questions = [b for b in blocks if b.level == 2]
    if not questions or not all(q.text.endswith("?") for q in questions):
        return False
    first = next(i for i, b in enumerate(blocks) if b.level == 2)
    before, after = blocks[:first], blocks[first:]
    return (
        len(before) <= 1
        and all(b.level == 1 for b in before)
        and not any(b.level == 1 for b in after)
    )


def _faqs(name: str, blocks: list[Block], ctx: Context) -> Parsed:
    category = blocks[0].text if blocks[0].level == 1 else ""
    sections: list[list[Block]] = []
    for block in blocks:
        if block.level == 2:
            sections.append([block])
        elif sections:
            sections[-1].append(block)
    rows: list[Row] = []
    errors: list[RowError] = []
    for question, *answer in sections:
        check_row_count(name, len(rows) + len(errors) + 1, ctx.limits)
        obj = {"question": question.text, "answer": joined(answer)}
        if category:
            obj["category"] = category
        try:
            rows.append(parse_row(question.line, obj, source=name))
        except ValueError as error:
            errors.append(RowError(question.line, str(error), name))
    return rows, errors


def joined(blocks: list[Block]) -> str:
    """Blocks as plain text: paragraphs apart, a list's or table's lines together."""
    parts: list[str] = []
    previous: Block | None = None
    for block in blocks:
        if not block.text:
            continue
        if previous is not None:
            together = block.group >= 0 and block.group == previous.group
            parts.append("\n" if together else "\n\n")
        parts.append(block.text)
        previous = block
    return "".join(parts).strip()
