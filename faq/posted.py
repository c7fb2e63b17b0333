"""Texts posted to be compared or grouped: checked, held to a budget of model work,
and each distinct text encoded once.

An anonymous request may cost the model at most ``PUBLIC_MAX_TOKENS`` word pieces
(``budget``); more is refused with 413 and a pointer to the jobs API, where a key
holder's texts are encoded by a worker with ``progress`` reported as it goes.
"""

from collections.abc import Callable, Sequence

import numpy as np

from embeddings.encoders import get_encoder
from faq.exceptions import ApplicationError, TooLarge

PROGRESS_STEP = 256  # texts encoded between two progress reports


def posted_check(
    texts: Sequence[str], *, names: Sequence[str], max_length: int
) -> None:
    for name, text in zip(names, texts, strict=True):
        if not text.strip():
            raise ApplicationError(f"{name} is empty.")
        if len(text) > max_length:
            raise ApplicationError(f"{name} is longer than {max_length} characters.")


def posted_encode(
    texts: Sequence[str],
    *,
    budget: int | None,
    job: str,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The texts' vectors, in order, each distinct text encoded once; refused with
    413 when the model would read more than ``budget`` word pieces (None: no cap).
    ``job`` names the jobs endpoint that takes larger requests. A remote encoder
    away raises ``EncoderUnavailable``: a 503 in a request, a retry in a job."""
    distinct = list(dict.fromkeys(texts))
    encoder = get_encoder()
    if budget is not None:
        reads = encoder.content_tokens
        cost = sum(min(len(ids), reads) for ids in encoder.token_ids(distinct))
        if cost > budget:
            raise TooLarge(
                f"These texts are {cost} word pieces for the model to read; a "
                f"request without an API key may ask for at most {budget} "
                f"(PUBLIC_MAX_TOKENS). Send fewer or shorter texts, or send them "
                f"as a job with an API key: POST /api/jobs/{job}."
            )
    encoded = _encode_stepwise(distinct, progress)
    row = {text: i for i, text in enumerate(distinct)}
    return encoded[[row[text] for text in texts]]


def _encode_stepwise(
    texts: list[str], progress: Callable[[float], None] | None
) -> np.ndarray:
    encoder = get_encoder()
    if progress is None or len(texts) <= PROGRESS_STEP:
        return encoder.encode(texts)
    parts = []
    for start in range(0, len(texts), PROGRESS_STEP):
        parts.append(encoder.encode(texts[start : start + PROGRESS_STEP]))
        progress(min(start + PROGRESS_STEP, len(texts)) / len(texts))
    return np.vstack(parts)
