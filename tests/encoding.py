"""How closely two encodings of the same text agree, by backend."""

from django.conf import settings


def batch_tolerance() -> float:
    """How far a cosine may move when its texts are encoded in other batches: not
    at all for the exact backends; int8's activation scales are set per batch, which
    moves a text's vector by up to about 0.015 cosine (README, "Encoder backends")."""
    return 0.02 if settings.EMBEDDINGS_BACKEND == "onnx-int8" else 1e-5
