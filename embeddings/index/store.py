"""The partition store: each partition's published versions on disk, written by one
writer, read by many.

Layout under ``INDEX_DIR``::

    <partition>/manifest.json           the published version: a copy of its own
    <partition>/manifest-00000042.json  model, dimension, count, checksums, files
    <partition>/vectors-00000042.faiss  the dense leg that manifest names (``dense``)
    <partition>/sources-00000042.npz    the source of each of its chunk ids
    <partition>/keywords/               the keyword leg (``keywords``)
    <partition>/.lock                   held by the one writer

A writer reads the published index from disk, changes its private copy, writes
a new numbered file (temp file, fsync, ``os.replace``) and then the manifests the
same way. Readers notice the manifest change and load the new file (a flat one
mapped, not copied: the processes of a machine share its pages); nobody ever
mutates an index that somebody else is searching.

Every file is checked against its manifest's checksum when it is loaded. The
last ``KEEP_VERSIONS`` versions stay on disk, each with its own manifest, so a
reader that finds the published version damaged (or its manifest unreadable)
serves the newest older version that checks out, logs it and asks the writer to
repair the partition (``reader``); the writer, finding damage, rebuilds the
partition from the database (``services.index_sync``). A damaged sources file or
keyword index costs a partition only speed (hits looked up in the database) or
its keyword leg until then.

Beside each version lies which source (type and id) every chunk in it belongs
to, so that a search groups its hits by source without asking the database, as
vector stores keep a payload with each vector. A chunk's source never changes
under its id. Ids it lacks (an older version, or rows added while a rebuild read
them) are looked up in the database instead.
"""

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from django.conf import settings

from embeddings.index.base import IndexCorrupt
from embeddings.index.dense import FLAT, FaissIndex
from embeddings.index.keywords import TantivyKeywords
from embeddings.index.pgvector import KIND as PGVECTOR
from embeddings.index.pgvector import PgVectorIndex, ensure, partition_clear

Dense = FaissIndex | PgVectorIndex

T = TypeVar("T")
MANIFEST = "manifest.json"
KEEP_VERSIONS = 3
_PARTITION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_VERSION_RE = re.compile(r"^(?:vectors|sources|manifest)-(\d+)\.(?:faiss|npz|json)$")


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    checksum: str
    version: int
    file: str
    created: float
    kind: str = FLAT  # manifests written before the ivf kind existed are flat
    sources: str = ""  # the file of the chunks' sources; "" before they were kept
    sources_checksum: str = ""  # "": not recorded (older manifests)
    keywords_checksum: str = ""  # of the keyword index's files as published

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def version_manifest(version: int) -> str:
    return f"manifest-{version:08d}.json"


def index_dir() -> Path:
    return Path(settings.INDEX_DIR)


def partition_dir(partition: str) -> Path:
    if not _PARTITION_RE.match(partition):
        raise ValueError(f"bad partition name {partition!r}")
    return index_dir() / partition


def partitions() -> list[str]:
    """Partitions with a published version (or a kept one, the manifest lost)."""
    root = index_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / MANIFEST).is_file() or next(p.glob("manifest-*.json"), None)
    )


def read_manifest(partition: str) -> Manifest | None:
    """The published manifest; None if none was ever published. IndexCorrupt when
    it cannot be read."""
    return _manifest_at(partition_dir(partition) / MANIFEST)


def _manifest_at(path: Path) -> Manifest | None:
    try:
        return Manifest(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:  # bad JSON, bytes, fields
        raise IndexCorrupt(f"{path} cannot be read: {error}") from error


def kept_manifests(partition: str) -> list[Manifest]:
    """The manifests kept beside each version on disk, newest first; unreadable
    ones are left out."""
    found = []
    for path in partition_dir(partition).glob("manifest-*.json"):
        with contextlib.suppress(IndexCorrupt):
            if (manifest := _manifest_at(path)) is not None:
                found.append(manifest)
    return sorted(found, key=lambda m: -m.version)


def newest_version(partition: str) -> int:
    """The highest version number of any file on disk (0: none): a rebuild after
    damage numbers its version above everything, so readers see it as new."""
    numbers = [
        int(match.group(1))
        for path in partition_dir(partition).glob("*-*.*")
        if (match := _VERSION_RE.match(path.name))
    ]
    return max(numbers, default=0)


@dataclass(frozen=True)
class Sources:
    """The source (type, id) of each chunk id in one version of an index."""

    ids: np.ndarray  # chunk ids, sorted
    types: np.ndarray  # each chunk's source type, as an index into ``labels``
    source_ids: np.ndarray
    labels: np.ndarray  # the source types, as strings

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str, int]]) -> "Sources":
        """From (chunk id, source type, source id) rows, in any order."""
        ordered = sorted(rows)
        labels = sorted({kind for _, kind, _ in ordered})
        code = {label: i for i, label in enumerate(labels)}
        n = len(ordered)
        return cls(
            ids=np.fromiter((row[0] for row in ordered), np.int64, n),
            types=np.fromiter((code[row[1]] for row in ordered), np.int32, n),
            source_ids=np.fromiter((row[2] for row in ordered), np.int64, n),
            labels=np.asarray(labels, dtype=str),
        )

    def find(self, chunk_ids: list[int]) -> dict[int, tuple[str, int]]:
        """(source type, source id) of those of ``chunk_ids`` it holds."""
        if not chunk_ids or not len(self.ids):
            return {}
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        labels = self.labels.tolist()
        types, source_ids = self.types[at].tolist(), self.source_ids[at].tolist()
        return {
            chunk_ids[i]: (labels[types[i]], source_ids[i])
            for i in np.flatnonzero(self.ids[at] == wanted).tolist()
        }

    def changed(
        self, ids: Iterable[int], rows: Iterable[tuple[int, str, int]]
    ) -> "Sources":
        """These sources without ``ids``, with ``rows`` (chunk id, source type,
        source id) added."""
        gone = np.fromiter(ids, dtype=np.int64)
        kept = ~np.isin(self.ids, gone)
        labels = self.labels.tolist()
        old = zip(
            self.ids[kept].tolist(),
            [labels[t] for t in self.types[kept].tolist()],
            self.source_ids[kept].tolist(),
            strict=True,
        )
        return Sources.of([*old, *rows])

    def save(self, f: BinaryIO) -> None:
        np.savez(f, **self.__dict__)

    @classmethod
    def load(cls, path: Path, checksum: str = "") -> "Sources":
        """Read a sources file, checked against ``checksum`` when there is one;
        IndexCorrupt when it cannot be."""
        try:
            data = path.read_bytes()
            if checksum and hashlib.sha256(data).hexdigest() != checksum:
                raise IndexCorrupt(f"{path} does not match its manifest checksum")
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                return cls(**{name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise IndexCorrupt(f"{path} cannot be read: {error}") from error


def load_published(
    partition: str, *, mapped: bool = False
) -> tuple[Manifest | None, Dense | None]:
    """The published manifest and its index (or Nones): a private copy, which the
    writer changes, or with ``mapped`` one only to search, whose flat vectors are
    the file's pages mapped rather than copied."""
    missing = ""
    for _ in range(5):
        manifest = read_manifest(partition)
        if manifest is None:
            return None, None
        try:
            return manifest, load_version(partition, manifest, mapped=mapped)
        except FileNotFoundError:
            missing = manifest.file
            time.sleep(0.05)  # a newer version replaced it meanwhile: read again
    raise IndexCorrupt(f"{partition}: the published file {missing} is missing")


def load_version(partition: str, manifest: Manifest, *, mapped: bool = False) -> Dense:
    """The vectors of one version, checked against its manifest; with pgvector,
    the partition's rows of the shared table."""
    if manifest.kind == PGVECTOR:
        return pg_index(partition, manifest.dimension)
    path = partition_dir(partition) / manifest.file
    return FaissIndex.read(
        path, manifest.checksum, mapped=mapped and manifest.kind == FLAT
    )


def dense_build(partition: str, matrix: np.ndarray, ids: np.ndarray) -> Dense:
    """The partition's dense leg holding exactly these rows: a new FAISS index (flat
    or ivf, by size), or with ``VECTOR_BACKEND=pgvector`` its rows of the table."""
    if settings.VECTOR_BACKEND != PGVECTOR:
        return FaissIndex.build(matrix, ids)
    from django.db import transaction

    index = pg_index(partition, matrix.shape[1])
    with transaction.atomic():  # other hosts search the old rows until it commits
        index.clear()
        index.add(ids, matrix)
    return index


_ensured: set[int] = set()


def pg_index(partition: str, dimension: int) -> PgVectorIndex:
    """The partition's vectors in PostgreSQL (``VECTOR_BACKEND=pgvector``), through
    this thread's database connection."""
    from django.db import connection

    if dimension not in _ensured:
        ensure(connection, dimension)
        _ensured.add(dimension)
    return PgVectorIndex(connection, partition, dimension)


def keywords_of(partition: str) -> TantivyKeywords:
    """The partition's keyword leg, to write (the writer lock held) or count."""
    return TantivyKeywords(partition_dir(partition) / "keywords")


def keywords_published(partition: str) -> TantivyKeywords | None:
    """The partition's keyword leg as published, to search; None if it has none
    yet, IndexCorrupt when its files cannot be opened."""
    return TantivyKeywords.open(partition_dir(partition) / "keywords")


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


def publish(
    partition: str,
    index: Dense,
    *,
    model: str,
    previous: int,
    sources: Sources | None = None,
    keywords_checksum: str = "",
) -> Manifest:
    """Write ``index`` (and its chunks' ``sources``) as the next version, with the
    checksum of the keyword index it was published with. Call with the writer
    lock held."""
    directory = partition_dir(partition)
    directory.mkdir(parents=True, exist_ok=True)
    version = previous + 1
    name, checksum = "", ""  # pgvector: the vectors are the database's
    if isinstance(index, FaissIndex):
        name = f"vectors-{version:08d}.faiss"
        checksum = _write_atomic(directory / name, index.write)
    sources_name, sources_checksum = "", ""
    if sources is not None:
        sources_name = f"sources-{version:08d}.npz"
        buffer = io.BytesIO()
        sources.save(buffer)
        sources_checksum = hashlib.sha256(buffer.getbuffer()).hexdigest()
        _write_atomic(directory / sources_name, lambda f: f.write(buffer.getbuffer()))
    manifest = Manifest(
        model=model,
        dimension=index.dimension,
        count=len(index),
        checksum=checksum,
        version=version,
        file=name,
        created=time.time(),
        kind=index.kind,
        sources=sources_name,
        sources_checksum=sources_checksum,
        keywords_checksum=keywords_checksum,
    )
    text = json.dumps(manifest.as_dict()).encode()
    _write_atomic(directory / version_manifest(version), lambda f: f.write(text))
    _write_atomic(directory / MANIFEST, lambda f: f.write(text))
    _fsync_dir(directory)
    for old in _version_files(directory):
        if int(old.stem.split("-")[1]) <= version - KEEP_VERSIONS:
            old.unlink(missing_ok=True)
    return manifest


def _version_files(directory: Path) -> list[Path]:
    return [
        path
        for pattern in ("vectors-*.faiss", "sources-*.npz", "manifest-*.json")
        for path in directory.glob(pattern)
    ]


def temp_files_remove(partition: str) -> int:
    """Remove what a writer that died mid-write left (its temp files). Call with
    the writer lock held: then no other writer is writing one."""
    left = list(partition_dir(partition).glob(".*.tmp"))
    for path in left:
        path.unlink(missing_ok=True)
    return len(left)


def remove_partition(partition: str) -> None:
    directory = partition_dir(partition)
    with writer_lock(partition):
        (directory / MANIFEST).unlink(missing_ok=True)
        for old in _version_files(directory):
            old.unlink()
        shutil.rmtree(directory / "keywords", ignore_errors=True)
        if settings.VECTOR_BACKEND == PGVECTOR:
            from django.db import connection

            partition_clear(connection, partition)


def _write_atomic(path: Path, fill: Callable[[BinaryIO], T]) -> T:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        filled = fill(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return filled


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
