"""The FAISS vector index: one per partition, published atomically, read by many.

Layout under ``INDEX_DIR``::

    <partition>/manifest.json         model, dimension, count, checksum, version, file
    <partition>/vectors-00000042.faiss  the index the manifest names
    <partition>/.lock                 held by the one writer

A writer reads the published index from disk, changes its private copy, writes
a new numbered file (temp file, fsync, ``os.replace``) and then replaces the
manifest the same way. Readers notice the manifest change and load the new file;
nobody ever mutates an index that somebody else is searching.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

MANIFEST = "manifest.json"
KEEP_VERSIONS = 3
_PARTITION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


class IndexCorrupt(Exception):
    """A published file does not match its manifest."""


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    checksum: str
    version: int
    file: str
    created: float

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def limit_threads(threads: int = 1) -> None:
    import faiss

    faiss.omp_set_num_threads(threads)


def index_dir() -> Path:
    return Path(settings.INDEX_DIR)


def partition_dir(partition: str) -> Path:
    if not _PARTITION_RE.match(partition):
        raise ValueError(f"bad partition name {partition!r}")
    return index_dir() / partition


def partitions() -> list[str]:
    root = index_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())


def read_manifest(partition: str) -> Manifest | None:
    try:
        data = json.loads((partition_dir(partition) / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    return Manifest(**data)


def new_index(dimension: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def index_ids(index: Any) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map).astype(np.int64)


def load_published(partition: str) -> tuple[Manifest | None, Any | None]:
    """The published manifest and a private copy of its index (or Nones)."""
    import faiss

    for _ in range(5):
        manifest = read_manifest(partition)
        if manifest is None:
            return None, None
        path = partition_dir(partition) / manifest.file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            time.sleep(0.05)  # a newer version replaced it meanwhile: read again
            continue
        if hashlib.sha256(data).hexdigest() != manifest.checksum:
            raise IndexCorrupt(f"{path} does not match its manifest checksum")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return manifest, index
    raise IndexCorrupt(f"{partition}: the published file kept disappearing")


@contextlib.contextmanager
def writer_lock(partition: str) -> Iterator[None]:
    """One writer per partition at a time, across processes on this machine."""
    directory = partition_dir(partition)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def publish(partition: str, index: Any, *, model: str, previous: int) -> Manifest:
    """Write ``index`` as the next version. Call with the writer lock held."""
    import faiss

    directory = partition_dir(partition)
    version = previous + 1
    data = faiss.serialize_index(index).tobytes()
    name = f"vectors-{version:08d}.faiss"
    _write_atomic(directory / name, data)
    manifest = Manifest(
        model=model,
        dimension=index.d,
        count=index.ntotal,
        checksum=hashlib.sha256(data).hexdigest(),
        version=version,
        file=name,
        created=time.time(),
    )
    _write_atomic(directory / MANIFEST, json.dumps(manifest.as_dict()).encode())
    _fsync_dir(directory)
    for old in directory.glob("vectors-*.faiss"):
        if int(old.stem.split("-")[1]) <= version - KEEP_VERSIONS:
            old.unlink(missing_ok=True)
    return manifest


def remove_partition(partition: str) -> None:
    directory = partition_dir(partition)
    with writer_lock(partition):
        (directory / MANIFEST).unlink(missing_ok=True)
        for old in directory.glob("vectors-*.faiss"):
            old.unlink()
        shutil.rmtree(directory / "keywords", ignore_errors=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Loaded:
    """One published version of a partition: its vectors and its keyword index."""

    manifest: Manifest
    vectors: Any
    keywords: Any | None


class IndexReader:
    """A process's read-only view of every partition, swapped when republished."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple[int, int], Loaded]] = {}
        self._lock = threading.Lock()

    def get(self, partition: str) -> Loaded | None:
        try:
            stat = (partition_dir(partition) / MANIFEST).stat()
        except FileNotFoundError:
            self._loaded.pop(partition, None)
            return None
        key = (stat.st_mtime_ns, stat.st_ino)
        cached = self._loaded.get(partition)
        if cached and cached[0] == key:
            return cached[1]
        with self._lock:
            manifest, index = load_published(partition)
            if manifest is None:
                return None
            from embeddings import keywords

            loaded = Loaded(manifest, index, keywords.open_index(partition))
            self._loaded[partition] = (key, loaded)
            return loaded

    def search(
        self, vector: np.ndarray, *, partitions: list[str], k: int
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest ids over the partitions, as (id, cosine), best first."""
        query = vector.reshape(1, -1)
        hits: list[tuple[int, float]] = []
        for partition in partitions:
            loaded = self.get(partition)
            if loaded is None or loaded.vectors.ntotal == 0:
                continue
            scores, ids = loaded.vectors.search(query, min(k, loaded.vectors.ntotal))
            hits.extend(
                (int(i), float(s))
                for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0
            )
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def match(
        self, text: str, *, partitions: list[str], k: int
    ) -> list[tuple[int, float, float]]:
        """The ``k`` best keyword matches over the partitions, as (id, BM25, coverage),
        ordered by coverage, which compares across partitions."""
        from embeddings import keywords

        hits: list[tuple[int, float, float]] = []
        for partition in partitions:
            loaded = self.get(partition)
            if loaded is not None and loaded.keywords is not None:
                hits.extend(keywords.search(loaded.keywords, text, k=k))
        hits.sort(key=lambda hit: -hit[2])
        return hits[:k]

    def clear(self) -> None:
        self._loaded.clear()


reader = IndexReader()
