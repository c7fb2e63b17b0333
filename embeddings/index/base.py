"""What every index backend gives: the contract ``tests/embeddings/test_backends.py``
holds each implementation to, as ``django-modelsearch`` holds its backends to one
suite.

A partition (a collection's chunks, or an app's) has two legs, each kept in step
with the database by chunk id: the dense leg (its chunks' vectors, searched by
cosine) and the keyword leg (their texts, searched by BM25). Ids are the chunks'
primary keys; a chunk's text and vector never change under its id.
"""

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class IndexCorrupt(Exception):
    """A published file is missing, unreadable or does not match its manifest."""


Hits = list[tuple[int, float]]  # (chunk id, cosine), best first


class DenseIndex(Protocol):
    """One partition's vectors (unit length, so inner product is cosine)."""

    @property
    def dimension(self) -> int: ...

    @property
    def kind(self) -> str:
        """What the manifest records: ``flat``, ``ivf``, ``pgvector``."""
        ...

    def __len__(self) -> int: ...

    def outgrown(self, count: int) -> bool:
        """Whether the writer should build it anew to hold ``count`` vectors."""
        ...

    def ids(self) -> np.ndarray:
        """Every id it holds (int64, in no particular order)."""
        ...

    def add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        """Add rows under ``ids``; an id it holds already is replaced."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Remove ``ids``; ids it does not hold are ignored."""
        ...

    def search(self, matrix: np.ndarray, k: int) -> list[Hits]:
        """Each row's ``k`` nearest (fewer if it holds fewer), best first."""
        ...

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those of ``ids`` it holds."""
        ...


KeywordHits = list[tuple[int, float, float]]  # (chunk id, BM25, coverage), best first


class KeywordIndex(Protocol):
    """One partition's chunk texts, for BM25."""

    def __len__(self) -> int: ...

    def apply(
        self,
        *,
        removed: Sequence[int] = (),
        added: Sequence[tuple[int, str]] = (),
        rebuild: bool = False,
    ) -> None:
        """Remove and add chunks in one commit, all or nothing; an added id it
        holds already is replaced; ``rebuild`` starts from empty."""
        ...

    def search(self, text: str, *, k: int) -> KeywordHits:
        """The ``k`` best chunks for the query's terms. Coverage is BM25 over the
        sum of the query terms' idf: it compares across partitions and queries."""
        ...
