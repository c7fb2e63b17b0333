"""Markdown: one document per file, or FAQs when the file is a list of questions.

``# heading`` is level 1 and ``## heading`` level 2 for ``sections``, which makes
FAQs of a file of ``## question?`` sections under at most a ``# Title``, else
one document; the text is read without markup.
"""

from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from faq.importers.formats import sections
from faq.importers.formats.base import Context, Parsed
from faq.importers.formats.sections import Block


@cache
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark")
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
    )


def parse(name: str, text: str, ctx: Context) -> Parsed:
    """FAQs or one document from markdown text."""
    return sections.parse(name, _blocks(_parser().parse(text)), ctx)


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
