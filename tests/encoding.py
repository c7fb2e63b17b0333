"""How closely two encodings of the same text agree, by backend."""

from django.conf import settings

from embeddings import encoders
from embeddings.encoders import Encoder


def batch_tolerance(backend: str = "") -> float:
    """How far a cosine may move when its texts are encoded with others: not at all
    where ONNX Runtime runs each text alone (int8 included); bf16 rounds a little
    differently as a batch's width changes (README, "Encoder backends")."""
    backend = backend or settings.EMBEDDINGS_BACKEND
    return {"openvino": 1e-4}.get(backend, 1e-5)


def encoder_use(encoder: Encoder) -> None:
    """Make ``encoder`` this process's encoder (as EMBEDDINGS_BACKEND would)."""
    encoders._encoder = encoder
    encoders._others.clear()
    encoders.encode_query.cache_clear()
