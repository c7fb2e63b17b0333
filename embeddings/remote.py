"""A remote OpenAI-compatible embeddings provider as an encoder backend.

``EMBEDDINGS_BACKEND=openai`` sends texts to ``POST {EMBEDDINGS_REMOTE_URL}/embeddings``
(OpenAI, OpenRouter, AI/ML API, a TEI server, another instance of this site) with
the official ``openai`` client. Its own retry loop already retries connection
errors, timeouts, 408, 409, 429 and 5xx with exponential backoff (0.5 s doubling to
at most 8 s, jittered) and honours ``Retry-After`` (``openai/_base_client.py``:
``_should_retry``, ``_calculate_retry_timeout``), so we use it rather than our own.

A provider has no tokenizer we can call, so chunking and token counts use the local
tokenizer of ``EMBEDDINGS_MODEL`` (the packaged MiniLM by default): exact when the
provider serves that model, a fair approximation otherwise.

When the provider still fails after its retries, texts are embedded by the local
``EMBEDDINGS_FALLBACK`` backend, but only if that is the same model: another
model's vectors cannot share an index with these. Without a usable fallback,
``EncoderUnavailable`` makes the Celery task retry later; the chunks stay pending,
never lost. After a failure the provider is skipped for ``EMBEDDINGS_REMOTE_COOLDOWN``
seconds (a small circuit breaker), so that each batch does not wait out the whole
retry cycle while it is down.
"""

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from embeddings.encoders import (
    BACKENDS,
    Encoder,
    EncoderUnavailable,
    LocalEncoder,
    make_encoder,
)

logger = logging.getLogger(__name__)

Inputs = list[Any]  # texts, or token-id lists
# Status codes the openai client retries (besides connection errors and timeouts).
RETRIED = {408, 409, 429}


class RemoteEncoder(Encoder):
    """Embeds through an OpenAI-compatible ``/embeddings`` endpoint."""

    def __init__(self) -> None:
        url, model = settings.EMBEDDINGS_REMOTE_URL, settings.EMBEDDINGS_REMOTE_MODEL
        if not url or not model:
            raise ImproperlyConfigured(
                "EMBEDDINGS_BACKEND=openai needs EMBEDDINGS_REMOTE_URL (for example "
                "https://api.openai.com/v1) and EMBEDDINGS_REMOTE_MODEL"
            )
        fallback = settings.EMBEDDINGS_FALLBACK
        if fallback and (fallback not in BACKENDS or fallback == "openai"):
            local = ", ".join(b for b in BACKENDS if b != "openai")
            raise ImproperlyConfigured(
                f"EMBEDDINGS_FALLBACK={fallback!r}: choose a local backend ({local}) "
                "or leave it empty"
            )
        self.name, self.url = model, url
        self.retries = settings.EMBEDDINGS_REMOTE_RETRIES
        # The local model's tokenizer and window, for chunking (no weights loaded).
        self._local = LocalEncoder()
        self.max_tokens = self._local.max_tokens
        self._dimension: int | None = settings.EMBEDDINGS_REMOTE_DIMENSION or None
        self._fallback_backend = fallback
        self._fallback: Encoder | None = None
        self._client: Any = None
        self._failed_at = -float("inf")  # when the provider last failed every retry
        self._lock = threading.Lock()

    # --- the Encoder interface ------------------------------------------------

    @property
    def dimension(self) -> int:
        """Configured, else learned from the first answer (or the fallback)."""
        if self._dimension is None:
            fallback = self.fallback_encoder()
            if fallback is not None:
                self._dimension = fallback.dimension
            else:
                self.encode(["dimension"])
        assert self._dimension is not None
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self._dimension = value

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        lengths = [len(ids) for ids in self._local.token_ids(texts)]
        return self._embed(list(texts), lengths)

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Token arrays, the OpenAI way: meaningful only when the provider's model
        shares the local tokenizer (another instance of this site, TEI)."""
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = [list(row)[: self.content_tokens] for row in ids]
        return self._embed(rows, [len(row) for row in rows])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self._local.token_ids(texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._local.token_spans(text)

    # --- the provider, then the fallback ----------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.url,
                # Local providers (TEI) need no key, but the client insists on one.
                api_key=settings.EMBEDDINGS_REMOTE_KEY or "none",
                max_retries=self.retries,
                timeout=settings.EMBEDDINGS_REMOTE_TIMEOUT,
            )
        return self._client

    def _embed(self, inputs: Inputs, lengths: list[int]) -> np.ndarray:
        parts = [
            self._embed_batch([inputs[i] for i in batch])
            for batch in remote_batches(
                lengths,
                size=settings.EMBEDDINGS_REMOTE_BATCH,
                tokens=settings.EMBEDDINGS_REMOTE_BATCH_TOKENS,
            )
        ]
        return np.vstack(parts)

    def _embed_batch(self, inputs: Inputs) -> np.ndarray:
        cooldown = settings.EMBEDDINGS_REMOTE_COOLDOWN
        if time.monotonic() < self._failed_at + cooldown:
            reason = f"is skipped (it failed less than {cooldown:g} s ago)"
            return self._embed_locally(inputs, reason)
        try:
            return self._request(inputs)
        except Exception as error:
            from openai import APIError

            if not isinstance(error, APIError):
                raise
            self._failed_at = time.monotonic()
            attempts = self._attempts(error)
            reason = f"failed after {attempts} attempts ({_describe(error)})"
            return self._embed_locally(inputs, reason)

    def _request(self, inputs: Inputs) -> np.ndarray:
        raw = self.client.embeddings.with_raw_response.create(
            model=self.name, input=inputs, encoding_format="float"
        )
        if raw.retries_taken:
            logger.info(
                "embedding provider %s answered after %d retries",
                self.url,
                raw.retries_taken,
            )
        rows = sorted(raw.parse().data, key=lambda row: row.index)
        if len(rows) != len(inputs):
            raise EncoderUnavailable(
                f"embedding provider {self.url} answered {len(rows)} vectors "
                f"for {len(inputs)} inputs"
            )
        matrix = np.asarray([row.embedding for row in rows], dtype=np.float32)
        self._learn_dimension(matrix.shape[1])
        return normalised(matrix)

    def _learn_dimension(self, dimension: int) -> None:
        if self._dimension is None:
            self._dimension = dimension
        elif dimension != self._dimension:
            raise ImproperlyConfigured(
                f"embedding provider {self.url} answered {dimension}-dimensional "
                f"vectors for {self.name}, not {self._dimension}"
            )

    def _attempts(self, error: Exception) -> int:
        from openai import APIStatusError

        if isinstance(error, APIStatusError):
            status = error.status_code
            if status not in RETRIED and status < 500:
                return 1
        return self.retries + 1

    def _embed_locally(self, inputs: Inputs, reason: str) -> np.ndarray:
        fallback = self.fallback_encoder()
        if fallback is None:
            message = f"embedding provider {self.url} {reason}"
            if self._fallback_backend:
                message += (
                    f"; the fallback {self._fallback_backend!r} is not used: it is "
                    f"another model than {self.name}"
                )
            logger.warning("%s; %d inputs left for a later try", message, len(inputs))
            raise EncoderUnavailable(message)
        logger.warning(
            "embedding provider %s %s; embedding %d inputs with the local %s "
            "fallback (%s)",
            self.url,
            reason,
            len(inputs),
            self._fallback_backend,
            fallback.name,
        )
        if inputs and isinstance(inputs[0], str):
            matrix = fallback.encode(inputs)
        else:
            matrix = fallback.encode_ids(inputs)
        self._learn_dimension(matrix.shape[1])
        return matrix

    def fallback_encoder(self) -> Encoder | None:
        """The local fallback when one is configured and it is the same model."""
        if not self._fallback_backend:
            return None
        with self._lock:
            if self._fallback is None:
                self._fallback = make_encoder(self._fallback_backend)
        if not same_model(self._fallback.name, self.name):
            return None
        return self._fallback


def remote_batches(lengths: list[int], *, size: int, tokens: int) -> Iterator[range]:
    """Consecutive index ranges of at most ``size`` inputs and about ``tokens``
    tokens each (a single longer input goes alone), the provider's request limits."""
    start, total = 0, 0
    for i, length in enumerate(lengths):
        cost = length + 2  # [CLS] and [SEP], or the provider's own markers
        if i > start and (i - start >= size or total + cost > tokens):
            yield range(start, i)
            start, total = i, 0
        total += cost
    if start < len(lengths):
        yield range(start, len(lengths))


def normalised(matrix: np.ndarray) -> np.ndarray:
    """Unit rows: providers do not all normalise, and our index needs cosines."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def same_model(first: str, second: str) -> bool:
    """``sentence-transformers/all-MiniLM-L6-v2`` is ``all-MiniLM-L6-v2``."""
    return first.rsplit("/", 1)[-1].lower() == second.rsplit("/", 1)[-1].lower()


def _describe(error: Exception) -> str:
    from openai import APIStatusError

    if isinstance(error, APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        return f"HTTP {error.status_code}: {body.get('message', error.message)}"[:300]
    return f"{type(error).__name__}: {error}"[:300]
