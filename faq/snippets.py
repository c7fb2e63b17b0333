"""Snippets: the passage of a chunk that answers the query, with its words marked.

Highlighting escapes every piece of stored text first and only then adds <mark>
tags around the words that share a stem with the query: nothing stored is ever
marked safe as it is.
"""

import functools
import html
import re

from django.utils.safestring import SafeString, mark_safe

from embeddings.index.keywords import query_terms

SNIPPET_CHARS = 320
# Words too common to be worth marking or choosing a passage by. BM25 keeps them
# (with a low idf, as its baselines do); a reader's eye should not.
FUNCTION_WORDS = """a about after all also am an and any are as at be been before being
but by can could did do does doing for from had has have having he her here him his how
i if in into is it its me more most my no not of on or our out over she should so some
such than that the their them then there these they this those to too under up us very
was we were what when where which while who whom why will with would you your"""
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")
_MARKABLE = re.compile(r"&#?\w+;|\w+")  # in escaped text: an entity, or a word


def best_passage(text: str, query: str, *, title: str = "") -> str:
    """The window of sentences in ``text`` that answers the query best.

    ``text`` is the chunk that the dense or keyword leg already chose as the
    source's best by meaning; within it, the window with the most query stems
    wins, the one that opens with them first, then the earliest.
    """
    if title and text.startswith(title) and text != title:
        text = text[len(title) :].lstrip()  # chunks lead with their title for context
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) <= 1:  # nothing to choose between
        return _trim(sentences[0], leading=False) if sentences else ""
    terms = _query_stems(query)
    matches = [terms & _stems(sentence) for sentence in sentences]
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
    """``text`` escaped, with the words whose stem is one of ``terms`` in <mark>
    (function words such as "how" or "my" are left unmarked)."""
    wanted = _telling(terms)
    # Escaping only turns & < > " ' into entities: the words are those of text.
    escaped = html.escape(text)
    marked = {word for word in set(_WORD.findall(text)) if _stem(word) in wanted}
    if not marked:
        return mark_safe(escaped)

    def mark(match: re.Match[str]) -> str:
        word = match.group()  # an entity is never one of text's words
        return f"<mark>{word}</mark>" if word in marked else word

    return mark_safe(_MARKABLE.sub(mark, escaped))


def _stems(text: str) -> set[str]:
    return {stem for word in _WORD.findall(text) if (stem := _stem(word))}


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str | None:
    """A word's stem as the keyword index has it (None for a stop word): words
    repeat across snippets, so each is analysed once."""
    stems = query_terms(word)
    return stems[0] if stems else None


def _telling(terms: list[str] | set[str]) -> set[str]:
    return set(terms) - _function_stems()


@functools.lru_cache(maxsize=1024)
def _query_stems(query: str) -> frozenset[str]:
    """The query's stems worth choosing a passage by: each of a search's results
    asks for them."""
    return frozenset(_telling(query_terms(query)))


@functools.cache
def _function_stems() -> frozenset[str]:
    return frozenset(query_terms(FUNCTION_WORDS))
