"""The models ``/v1`` serves: the site's own encoder and any extra
sentence-transformers models named in ``EMBEDDINGS_API_MODELS``.

A model is known by its last path component (``all-MiniLM-L6-v2``), and also as
``sentence-transformers/<id>`` (the Hugging Face name clients already use) and by
its full configured name or path. Extra models are loaded on first use only.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from embeddings.encoders import Encoder, SentenceTransformerEncoder, get_encoder
from embeddings.v1.errors import ModelNotFound

OWNER = "sentence-transformers"


@dataclass(frozen=True)
class ServedModel:
    id: str
    name: str  # as configured: a name or a path
    own: bool  # the site's own encoder (EMBEDDINGS_MODEL, EMBEDDINGS_BACKEND)

    @property
    def aliases(self) -> set[str]:
        return {self.id, f"{OWNER}/{self.id}", self.name}

    @property
    def created(self) -> int:
        """When the weights were installed (OpenAI's ``created``), 0 if unknown."""
        path = getattr(self.encoder(), "path", "") if self.own else self.name
        exists = bool(path) and Path(path).exists()
        return int(Path(path).stat().st_mtime) if exists else 0

    def encoder(self) -> Encoder:
        return get_encoder() if self.own else _extra_encoder(self.name)


def model_id(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def served_models() -> list[ServedModel]:
    own = get_encoder().name
    models = [ServedModel(id=model_id(own), name=own, own=True)]
    for entry in settings.EMBEDDINGS_API_MODELS:
        served_as, _, path = entry.rpartition("=")
        model = ServedModel(id=served_as or model_id(path), name=path, own=False)
        if model.id not in {m.id for m in models}:
            models.append(model)
    return models


def served_model_get(name: str) -> ServedModel:
    """The model a request names, in any case (as the Hugging Face hub takes
    names); 404 ``model_not_found`` as OpenAI answers."""
    for model in served_models():
        if name.lower() in {alias.lower() for alias in model.aliases}:
            return model
    raise ModelNotFound(name)


_extras: dict[str, Encoder] = {}
_extras_lock = threading.Lock()


def _extra_encoder(path: str) -> Encoder:
    with _extras_lock:
        if path not in _extras:
            _extras[path] = SentenceTransformerEncoder(path)
        return _extras[path]
