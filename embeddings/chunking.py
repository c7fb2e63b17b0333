"""Split text into chunks that fit the model's window.

MiniLM reads at most 256 word pieces; anything after that is never seen. A long
text becomes several overlapping windows, each cut on a word boundary, each led
by the passage's prefix (a document's title, a FAQ's question) for context.
The first window is exactly what the model would read of the whole text.
"""

import hashlib

from embeddings.encoders import Encoder

MIN_WINDOW = 32


def chunk_text(
    text: str, *, encoder: Encoder, prefix: str = "", overlap: int = 32
) -> list[str]:
    text, prefix = text.strip(), prefix.strip()
    if not text:
        return [prefix] if prefix else []
    budget = max(encoder.content_tokens - encoder.count_tokens(prefix), MIN_WINDOW)
    overlap = min(overlap, budget // 2)
    spans = encoder.token_spans(text)
    if len(spans) <= budget:
        return [_join(prefix, text)]
    chunks = []
    start = 0
    while True:
        end = min(start + budget, len(spans))
        if end < len(spans):
            end = _word_start(spans, end, floor=start + 1)
        chunks.append(_join(prefix, text[spans[start][0] : spans[end - 1][1]]))
        if end == len(spans):
            return chunks
        start = _word_start(spans, max(end - overlap, start + 1), floor=start + 1)


def _word_start(spans: list[tuple[int, int]], i: int, *, floor: int) -> int:
    """Move ``i`` back to the first piece of its word, never below ``floor``.

    A word starts where there is a gap (a space) before its first piece.
    """
    j = i
    while j > floor and spans[j][0] <= spans[j - 1][1]:
        j -= 1
    if j == floor and spans[j][0] <= spans[j - 1][1]:
        return i  # a single word longer than the window is cut where it must be
    return j


def _join(prefix: str, text: str) -> str:
    return f"{prefix} {text}" if prefix else text


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
