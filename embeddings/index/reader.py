"""A process's read-only view of every partition's published version (``reader``):
loaded when first asked for, swapped when the writer publishes another, searched
by both legs. It never raises for a damaged file: it serves what checks out (an
older kept version, or the partition without its damaged part), says what is
wrong in ``problems`` (health, metrics), logs it once and asks for a repair.
"""

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings

from embeddings.index import store
from embeddings.index.base import Hits, IndexCorrupt, KeywordHits
from embeddings.index.keywords import TantivyKeywords
from embeddings.index.store import Dense, Manifest, Sources, partition_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """One published version of a partition: its vectors, their chunks' sources and
    its keyword index."""

    manifest: Manifest
    vectors: Dense
    keywords: TantivyKeywords | None
    sources: Sources | None = None  # None: look every hit's source up in the database


class IndexReader:
    """A process's read-only view of every partition, swapped when republished."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple[int, int], Loaded | None]] = {}
        self._lock = threading.Lock()
        self.problems: dict[str, str] = {}

    def get(self, partition: str) -> Loaded | None:
        try:
            stat = os.stat(_manifest_path(settings.INDEX_DIR, partition))
            key = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            key = (0, 0)  # none published, or the manifest lost: kept versions
        cached = self._loaded.get(partition)
        if cached and cached[0] == key:
            return cached[1]
        with self._lock:
            loaded, problem = self._load(partition)
            self._loaded[partition] = (key, loaded)
            if problem:
                self.problems[partition] = problem
            else:
                self.problems.pop(partition, None)
                _repairs_asked.discard(partition)
        if problem:
            repair_request(partition)
        return loaded

    def _load(self, partition: str) -> tuple[Loaded | None, str]:
        """The published version, or the newest kept one that checks out; and what
        is wrong, if anything."""
        problem = ""
        try:
            manifest, index = store.load_published(partition, mapped=True)
        except IndexCorrupt as error:
            manifest, index, problem = None, None, str(error)
        if manifest is None:
            kept = store.kept_manifests(partition)
            if not kept and not problem:
                return None, ""  # nothing published yet
            manifest, index = self._load_kept(partition, kept)
            problem = problem or "the manifest is missing"
            if manifest is None:
                self._report(partition, f"{problem}; no kept version checks out")
                return None, problem
            self._report(partition, f"{problem}; serving version {manifest.version}")
        assert index is not None  # loaded with its manifest
        problems = [problem] if problem else []
        try:
            found = store.keywords_published(partition)
        except IndexCorrupt as error:
            found = None
            problems.append(str(error))
            self._report(partition, problems[-1])
        sources = None  # without it hits are looked up in the database: slower
        if manifest.sources:
            try:
                path = partition_dir(partition) / manifest.sources
                sources = Sources.load(path, manifest.sources_checksum)
            except IndexCorrupt as error:
                problems.append(str(error))
                self._report(partition, problems[-1])
        return Loaded(manifest, index, found, sources), "; ".join(problems)

    def _load_kept(
        self, partition: str, kept: list[Manifest]
    ) -> tuple[Manifest | None, Dense | None]:
        for manifest in kept:
            try:
                return manifest, store.load_version(partition, manifest, mapped=True)
            except (IndexCorrupt, FileNotFoundError) as error:
                self._report(partition, f"kept version {manifest.version}: {error}")
        return None, None

    def _report(self, partition: str, text: str) -> None:
        logger.error("index %s: %s", partition, text)

    def keyword_failed(self, partition: str, error: Exception) -> None:
        """A search of the partition's keyword index failed: serve it without
        that leg until it is repaired."""
        with self._lock:
            cached = self._loaded.get(partition)
            if cached is None or cached[1] is None or cached[1].keywords is None:
                return
            problem = f"the keyword index cannot be searched ({error})"
            self._report(partition, problem)
            self._loaded[partition] = (cached[0], replace(cached[1], keywords=None))
            self.problems[partition] = problem
        repair_request(partition)

    def search(self, vector: np.ndarray, *, partitions: list[str], k: int) -> Hits:
        """The ``k`` nearest ids over the partitions, as (id, cosine), best first."""
        hits: Hits = []
        for partition in partitions:
            hits.extend(self.neighbours(vector.reshape(1, -1), partition, k)[0])
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def neighbours(self, matrix: np.ndarray, partition: str, k: int) -> list[Hits]:
        """Each row's ``k`` nearest in one partition, with one batched search."""
        loaded = self.get(partition)
        if loaded is None:
            return [[] for _ in range(len(matrix))]
        return loaded.vectors.search(matrix, k)

    def match(
        self, text: str, *, partitions: list[str], k: int, also: Sequence[str] = ()
    ) -> KeywordHits:
        """The ``k`` best keyword matches over the partitions, as (id, BM25,
        coverage), ordered by coverage, which compares across partitions; the
        terms of ``also`` (synonyms) match too."""
        hits: KeywordHits = []
        for partition in partitions:
            loaded = self.get(partition)
            if loaded is not None and loaded.keywords is not None:
                try:
                    hits.extend(loaded.keywords.search(text, k=k, also=also))
                except (ValueError, OSError) as error:  # a damaged segment
                    self.keyword_failed(partition, error)
        hits.sort(key=lambda hit: -hit[2])
        return hits[:k]

    def size(self, partition: str) -> int:
        """Vectors this process serves of the partition."""
        loaded = self.get(partition)
        return len(loaded.vectors) if loaded else 0

    def clear(self) -> None:
        self._loaded.clear()
        self.problems.clear()


@functools.lru_cache(maxsize=4096)
def _manifest_path(index_dir: str, partition: str) -> str:
    """Where a partition's manifest is, looked at by every search (``index_dir``,
    the setting that ``partition_dir`` reads, keys the cache: tests change it)."""
    return str(partition_dir(partition) / store.MANIFEST)


_repairs_asked: set[str] = set()


def repair_request(partition: str) -> None:
    """Ask the index's writer to check the partition and rebuild what is damaged,
    once per process and partition: this host's follower of the change feed, or
    else a worker (reconcile checks every partition anyway)."""
    if partition in _repairs_asked:
        return
    _repairs_asked.add(partition)
    if settings.INDEX_FOLLOW:
        from embeddings.replica import repair_ask

        with contextlib.suppress(OSError):
            repair_ask(partition)
        return
    from embeddings.queueing import enqueue
    from embeddings.tasks import sync_index

    with contextlib.suppress(Exception):  # best effort: reconcile will
        enqueue(sync_index, partition, True)


reader = IndexReader()
