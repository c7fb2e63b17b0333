"""Markdown: one document per file, or FAQs when the file is a list of questions.

A file whose sections are all ``## heading?`` (questions: they end with "?"),
with at most a ``# Title`` before the first, becomes one FAQ per section, the
title as their category. Anything else is one document: title from the first
``# heading`` (else the file name), body the readable text without markup.
"""

from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

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
    level: int = 0  # 1 to 6 for headings
    group: int = -1  # blocks of one list or table are joined by single newlines


@cache
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark")
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
    )


def parse(name: str, text: str, ctx: Context) -> Parsed:
    """FAQs or one document from markdown text."""
    blocks = _blocks(_parser().parse(text))
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


def _blocks(tokens: list[Token]) -> list[Block]:
    """The readable blocks, in order; markup, raw HTML and front matter are dropped."""
    blocks: list[Block] = []
    cells: list[str] = []
    group, depth, line = -1, 0, 1
    for index, token in enumerate(tokens):
        if token.map:
            line = token.map[0] + 1
        if token.type in ("bullet_list_open", "ordered_list_open", "table_open"):
            if depth == 0:
                group = index
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close", "table_close"):
            depth -= 1
            group = group if depth else -1
        elif token.type == "tr_open":
            cells = []
        elif token.type == "tr_close":
            blocks.append(Block(" | ".join(c for c in cells if c), line, group=group))
        elif token.type == "inline" and tokens[index - 1].type in (
            "th_open",
            "td_open",
        ):
            cells.append(inline_text(token))
        elif token.type == "inline":
            level = _heading_level(tokens[index - 1])
            blocks.append(Block(inline_text(token), line, level, group))
        elif token.type in ("fence", "code_block"):
            blocks.append(Block(token.content.strip("\n"), line, group=group))
    return blocks


def _heading_level(opener: Token) -> int:
    if opener.type == "heading_open":
        return int(opener.tag[1:])
    return 0


def inline_text(token: Token) -> str:
    """An inline run's words: emphasis, links and inline HTML shed, alt text kept."""
    pieces: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):
            pieces.append(child.content)
        elif child.type == "softbreak":
            pieces.append(" ")
        elif child.type == "hardbreak":
            pieces.append("\n")
    return "".join(pieces).strip()
