"""How content models become embeddable, without this app importing them.

A model mixes in :class:`Embeddable` and is decorated with :func:`register`; its
saves and deletes then keep its chunks in step (the way django-modelsearch's
``index.Indexed`` works).
"""

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models
from django.db.models.signals import post_delete, post_save


@dataclass(frozen=True)
class Passage:
    """One field of a source. ``prefix`` is repeated at the head of each chunk."""

    field: str
    text: str
    prefix: str = ""


class Embeddable:
    """Mixin for models whose text should be searchable by meaning."""

    pk: Any

    def embedding_partition(self) -> str:
        """The index this source lives in (for example one per collection)."""
        raise NotImplementedError

    def embedding_passages(self) -> list[Passage]:
        raise NotImplementedError

    def embedding_enabled(self) -> bool:
        """False removes the source from the index (unpublished, say)."""
        return True


M = TypeVar("M", bound=type[models.Model])
_registry: dict[str, type[models.Model]] = {}


def source_type(instance_or_model: models.Model | type[models.Model]) -> str:
    return instance_or_model._meta.label_lower


def register(model: M) -> M:
    """Class decorator: keep this model's chunks in step with its saves."""
    from embeddings import services

    def on_save(sender: type, instance: models.Model, **kwargs: Any) -> None:
        if not kwargs.get("raw"):
            services.source_sync(instance)

    def on_delete(sender: type, instance: models.Model, **kwargs: Any) -> None:
        services.source_remove(instance)

    _registry[source_type(model)] = model
    post_save.connect(on_save, sender=model, weak=False)
    post_delete.connect(on_delete, sender=model, weak=False)
    return model


def registered_models() -> list[type[models.Model]]:
    return list(_registry.values())
