"""Snippets: the passage of a chunk that answers the query, with its words marked.

Highlighting escapes every piece of stored text first and only then adds <mark>
tags around the words that share a stem with the query: nothing stored is ever
marked safe as it is.
"""

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from embeddings.keywords import query_terms

SNIPPET_CHARS = 320
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")


def best_passage(text: str, query: str, *, title: str = "") -> str:
    """The window of sentences in ``text`` that answers the query best.

    ``text`` is the chunk that the dense or keyword leg already chose as the
    source's best by meaning; within it, the window with the most query stems
    wins, the one that opens with them first, then the earliest.
    """
    if title and text.startswith(title) and text != title:
        text = text[len(title) :].lstrip()  # chunks lead with their title for context
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return ""
    terms = set(query_terms(query))
    matches = [terms & set(query_terms(sentence)) for sentence in sentences]
    best, best_score = 0, (-1, -1)
    for start in range(len(sentences)):
        end = start + _window_length(sentences, start)
        # Most query words in the window, then most in its first sentence: the
        # passage should open with what answers, not merely contain it.
        score = (len(set().union(*matches[start:end])), len(matches[start]))
        if score > best_score:
            best, best_score = start, score
    return _trim(_window(sentences, best), leading=best > 0)


def _window_length(sentences: list[str], start: int) -> int:
    """How many sentences from ``start`` fit in a snippet (at least one)."""
    size, count = len(sentences[start]), 1
    for sentence in sentences[start + 1 :]:
        size += 1 + len(sentence)
        if size > SNIPPET_CHARS:
            break
        count += 1
    return count


def _window(sentences: list[str], start: int) -> str:
    return " ".join(sentences[start : start + _window_length(sentences, start)])


def _trim(text: str, *, leading: bool) -> str:
    prefix = "… " if leading else ""
    if len(text) <= SNIPPET_CHARS:
        return prefix + text
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return prefix + text[: cut if cut > 0 else SNIPPET_CHARS] + " …"


def highlight(text: str, terms: list[str] | set[str]) -> SafeString:
    """``text`` escaped, with the words whose stem is one of ``terms`` in <mark>."""
    wanted = set(terms)
    pieces: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        pieces.append(escape(text[last : match.start()]))
        word = escape(match.group())
        stems = query_terms(match.group())
        pieces.append(f"<mark>{word}</mark>" if stems and stems[0] in wanted else word)
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))  # every piece above was escaped
